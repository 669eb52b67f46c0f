"""Structured logs: one JSON object a line on standard error, from every logger.

Every line has ``time`` (ISO 8601, UTC, milliseconds), ``level`` (``INFO``, ``WARNING``, …),
``logger`` (``refuge.access``, ``refuge.jobs``, ``uvicorn.error``, …), ``process`` (the worker
process id) and ``message``; a logged exception adds ``exc_info`` (its traceback as text).
The access log (``refuge.access``, message ``request``) adds one field each for
``request_id``, ``actor_id``, ``role``, ``method``, ``route`` (the route template, never the
path), ``status`` and ``duration_ms``. Other loggers add what they pass as ``extra`` (for
example ``request_id`` on ``refuge.errors``). No line carries a body, a query string, a token
or a person's attribute (tests/test_privacy.py plants canaries everywhere and reads every
record).

``refuge serve`` hands :func:`config` to uvicorn, which applies it in every worker process.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("time", "level", "logger", "process", "message")
ACCESS_FIELDS = ("request_id", "actor_id", "role", "method", "route", "status", "duration_ms")


class Formatter(JsonFormatter):
    """python-json-logger's formatter with Refuge's field names and UTC times."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "{levelname}{name}{process}{message}")
        kwargs.setdefault("style", "{")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: Any, message_dict: dict[str, Any]
    ) -> None:
        """Put ``time`` first, then the named fields and the record's extras."""
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)
        log_data.pop("color_message", None)  # uvicorn's terminal copy of the message


def config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for a server: JSON lines on standard error."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": Formatter}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "refuge": {"level": level},
            "uvicorn": {"level": "INFO"},
            "uvicorn.access": {"level": "WARNING"},  # Refuge's access log says more, and less
        },
    }
