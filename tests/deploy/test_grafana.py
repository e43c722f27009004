"""deploy/grafana: the dashboard is valid JSON Grafana can load, its panels query only the
metrics contract, it shows what operators need, and the provisioning finds it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.deploy.files import COMPOSE, DASHBOARD, GRAFANA_PROVISIONING, load_yaml
from tests.deploy.promql import FAMILIES, problems, series_in

GRID_WIDTH = 24


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels() -> list[dict[str, Any]]:
    return [panel for panel in _dashboard()["panels"] if panel["type"] != "row"]


def _expressions() -> list[str]:
    return [target["expr"] for panel in _panels() for target in panel["targets"]]


def test_top_level_fields() -> None:
    dashboard = _dashboard()
    for field in ("uid", "title", "panels", "schemaVersion", "templating", "time", "tags"):
        assert field in dashboard, field
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns ids


def test_panels_are_placed_on_the_grid_with_unique_ids() -> None:
    panels = _dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["w"] > 0
        assert grid["h"] > 0
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
    # No two panels overlap.
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize("panel", _panels(), ids=lambda panel: panel["title"])
def test_panel_queries_known_metrics(panel: dict[str, Any]) -> None:
    assert panel["title"]
    assert panel["description"]
    assert panel["targets"]
    ref_ids = [target["refId"] for target in panel["targets"]]
    assert len(ref_ids) == len(set(ref_ids))
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert problems(target["expr"]) == [], target["expr"]


def test_template_variables_query_known_metrics() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("tenant", "campaign"):
        definition = variables[name]["definition"]
        match = re.fullmatch(r"label_values\((\w+)(\{.*\})?, (\w+)\)", definition)
        assert match, definition
        assert match.group(1) in FAMILIES
        assert match.group(3) in FAMILIES[match.group(1)][1]
    # Every variable a query uses is defined.
    used = {m for expr in _expressions() for m in re.findall(r"\$(\w+)", expr)}
    assert used - {"__rate_interval", "__range", "__interval"} <= variables.keys()


def test_it_shows_what_an_operator_watches() -> None:
    """Campaign progress, calls in flight against limits, outcomes over time, dial and
    callback latency, queue depth."""
    queried = {name for expr in _expressions() for name in series_in(expr)}
    assert {
        "dialer_campaign_recipients",
        "dialer_campaign_calls_in_flight",
        "dialer_campaign_slots_in_use",
        "dialer_campaign_slots_limit",
        "dialer_call_outcomes_total",
        "dialer_dial_latency_seconds_bucket",
        "dialer_callback_seconds_bucket",
        "dialer_queue_depth",
    } <= queried
    outcome_rates = [e for e in _expressions() if "dialer_call_outcomes_total" in e]
    assert any(e.lstrip().startswith("sum by (outcome) (rate(") for e in outcome_rates)
    assert any("histogram_quantile(0.99" in e for e in _expressions())


def test_provisioning_finds_the_dashboard_and_the_datasource() -> None:
    (datasource,) = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == _dashboard()["templating"]["list"][0]["current"]["value"]
    compose = load_yaml(COMPOSE)["services"]
    assert datasource["url"] == "http://prometheus:9090"
    assert any(port.endswith(":9090") for port in compose["prometheus"]["ports"])

    (provider,) = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "dialer.yml")["providers"]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in compose["grafana"]["volumes"]
        if volume.startswith("./")
    }
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
