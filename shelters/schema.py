"""Every ORM model of Refuge, gathered so that Alembic and the drift test see all tables.

A module that defines models on ``shelters.models.Base`` is imported here.
"""

from __future__ import annotations

import shelters.audit  # noqa: F401  (the audit chain's table)
import shelters.funding  # noqa: F401  (grants)
from shelters import models

metadata = models.Base.metadata

__all__ = ["metadata", "models"]
