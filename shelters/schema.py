"""Every ORM model of Refuge, gathered so that Alembic and the drift test see all tables.

A module that defines models on ``shelters.models.Base`` is imported here.
"""

from __future__ import annotations

# Models outside shelters.models: the audit chain, grants, rate windows.
from shelters import audit, funding, models, ratelimit

metadata = models.Base.metadata

__all__ = ["audit", "funding", "metadata", "models", "ratelimit"]
