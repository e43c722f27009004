"""Writing one chunk of a list import: its entries and its rejected rows.

On PostgreSQL a chunk's entries go in as one statement with one parameter: the whole chunk
as one JSON document (encoded by ``json``'s C encoder in one call), taken apart by the server
(``INSERT ... SELECT FROM jsonb_array_elements(...) ON CONFLICT DO NOTHING RETURNING``). No
statement the size of the chunk is built or parsed, and no value is adapted one by one in
Python. SQLite (small chunks) takes a plain multi-row insert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.db.bulk import insert_ignoring_conflicts_on
from dialer.db.models import RecipientListEntry, RecipientListRejection

#: (E.164 number, metadata, assistant overrides, time zone, region)
Entry = tuple[str, Mapping[str, Any], Mapping[str, Any], str | None, str | None]
#: (row, number as given or None, reason)
Rejected = tuple[int, str | None, str]

_PG_ENTRIES = """
INSERT INTO recipient_list_entries
    (list_id, phone_number, metadata, assistant_overrides, time_zone, region)
SELECT %s, e->>0, e->1, e->2, e->>3, e->>4 FROM jsonb_array_elements(%s::jsonb) AS e
ON CONFLICT DO NOTHING
RETURNING phone_number
"""
_PG_REJECTIONS = """
INSERT INTO recipient_list_rejections (list_id, "row", phone_number, reason)
SELECT %s, (e->>0)::integer, e->>1, e->>2 FROM jsonb_array_elements(%s::jsonb) AS e
"""


def insert_entries(session: Session, list_id: str, entries: Sequence[Entry]) -> set[str]:
    """Insert the entries a list does not hold yet; the numbers inserted."""
    if not entries:
        return set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        params = (list_id, json.dumps(entries))
        return set(connection.exec_driver_sql(_PG_ENTRIES, params).scalars())
    table: Any = RecipientListEntry.__table__
    insert = insert_ignoring_conflicts_on(connection.dialect.name, table)
    rows = [
        {
            "list_id": list_id,
            "phone_number": number,
            "metadata": metadata,
            "assistant_overrides": overrides,
            "time_zone": zone,
            "region": region,
        }
        for number, metadata, overrides, zone, region in entries
    ]
    return set(connection.execute(insert.returning(table.c.phone_number), rows).scalars())


def insert_rejections(session: Session, list_id: str, rejected: Sequence[Rejected]) -> None:
    if not rejected:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_PG_REJECTIONS, (list_id, json.dumps(rejected)))
        return
    rows = [
        {"list_id": list_id, "row": row, "phone_number": given, "reason": reason}
        for row, given, reason in rejected
    ]
    connection.execute(sa.insert(RecipientListRejection), rows)
