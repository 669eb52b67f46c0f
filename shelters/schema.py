"""Every ORM model of Refuge, gathered so that Alembic and the drift test see all tables.

A module that defines models on ``shelters.models.Base`` is imported here.
"""

from __future__ import annotations

from shelters import models

metadata = models.Base.metadata

__all__ = ["metadata", "models"]
