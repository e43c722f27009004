"""Dialect-aware bulk statements (the same behaviour on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, table: sa.Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's database.

    Used where a unique constraint is the arbiter (a number once per campaign or list), so
    concurrent writers cannot both insert and no read-then-write race exists.
    """
    return insert_ignoring_conflicts_on(session.get_bind().dialect.name, table)


def insert_ignoring_conflicts_on(dialect: str, table: sa.Table) -> Any:
    """:func:`insert_ignoring_conflicts` for the database ``dialect`` names (a statement
    built once and kept, for a hot path)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def is_postgres(session: Session) -> bool:
    """Whether ``session`` runs on PostgreSQL (row locks) rather than SQLite (none: it
    serialises writers on its own)."""
    return session.get_bind().dialect.name == "postgresql"


def for_update(session: Session, stmt: sa.Select[Any]) -> sa.Select[Any]:
    """Row locks on PostgreSQL; SQLite serialises writers on its own (and has no FOR UPDATE)."""
    if is_postgres(session):
        return stmt.with_for_update()
    return stmt
