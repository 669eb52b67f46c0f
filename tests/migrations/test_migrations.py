"""Alembic is the only way the schema is made, and it matches the models."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from migrations import alembic_config
from service.db import make_engine
from shelters.schema import metadata


def test_migrated_schema_has_no_drift_from_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"},
        )
        assert compare_metadata(context, metadata) == []


def test_downgrade_to_base_and_upgrade_again(fresh_database: str) -> None:
    engine = make_engine(fresh_database)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "head")
        assert {"units", "shelters", "users"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_database_refuses_a_unit_with_negative_availability(engine: Engine) -> None:
    with engine.connect() as conn, conn.begin():
        conn.exec_driver_sql(
            "INSERT INTO organizations (name, kind, created_at) "
            "VALUES ('Check org', 'ngo', CURRENT_TIMESTAMP)"
        )
        conn.exec_driver_sql(
            "INSERT INTO regions (code, name, lat, lon) VALUES ('check-region', 'C', 1, 1)"
        )
        org_id = conn.exec_driver_sql(
            "SELECT id FROM organizations WHERE name = 'Check org'"
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO shelters (organization_id, name, region_code, locality,"
                " security_level, wheelchair_accessible, services, languages, status, version,"
                " created_at, updated_at) VALUES (:org, 'S', 'check-region', 'L', 'standard',"
                " false, '[]', '[]', 'open', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"org": org_id},
        )
        shelter_id = conn.exec_driver_sql("SELECT max(id) FROM shelters").scalar_one()
        savepoint = conn.begin_nested()
        with pytest.raises(IntegrityError, match="available_non_negative"):
            conn.execute(
                text(
                    "INSERT INTO units (shelter_id, name, capacity, out_of_service,"
                    " external_occupied, occupied, held, admits, version, created_at, updated_at,"
                    " confirmed_at) VALUES (:shelter, 'U', 2, 1, 1, 0, 1, '[]', 1,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"shelter": shelter_id},
            )
        savepoint.rollback()
        conn.rollback()
