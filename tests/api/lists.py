"""Uploading a recipient list through the API and waiting for its background import."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from dialer.api.context import ApiContext

#: Longest a test waits for an import (the imports of the tests take well under a second).
IMPORT_TIMEOUT_S = 60.0


def wait_imported(client: TestClient, list_id: str, **kwargs: Any) -> dict[str, Any]:
    """The list once its import has ended (every import of the app is done)."""
    ctx: ApiContext = client.app.state.ctx  # type: ignore[attr-defined]
    assert ctx.imports.wait_idle(IMPORT_TIMEOUT_S), "an import did not end in time"
    body = client.get(f"/recipient_list/{list_id}", **kwargs)
    assert body.status_code == 200, body.text
    result: dict[str, Any] = body.json()
    assert result["state"] != "importing", result
    return result


def upload_csv(client: TestClient, text: str | bytes, name: str = "November") -> Any:
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/recipient_list",
        data={"name": name},
        files={"file": ("list.csv", io.BytesIO(data), "text/csv")},
    )


def import_csv(client: TestClient, text: str | bytes, name: str = "November") -> dict[str, Any]:
    """Upload ``text`` and wait for its import; the list as GET shows it then."""
    response = upload_csv(client, text, name)
    assert response.status_code == 202, response.text
    return wait_imported(client, response.json()["id"])


def import_json(client: TestClient, rows: list[dict[str, Any]], name: str = "L") -> str:
    """A list of ``rows`` (JSON), ready; its id."""
    response = client.post("/recipient_list", json={"name": name, "recipients": rows})
    assert response.status_code == 202, response.text
    listed = wait_imported(client, response.json()["id"])
    assert listed["state"] == "ready", listed
    return str(listed["id"])


def rejected_rows(client: TestClient, list_id: str) -> list[list[str]]:
    """The rejected rows' CSV download, parsed (header first)."""
    response = client.get(f"/recipient_list/{list_id}/rejected")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text)))
