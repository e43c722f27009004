"""deploy/prometheus: the scrape configuration reaches every role, and every alert is
well-formed, says what to do, and queries only the dialer's metrics contract."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.files import COMPOSE, PROMETHEUS, RULES, load_yaml
from tests.deploy.promql import problems

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
SEVERITIES = {"critical", "warning", "info"}
#: The alerts the operations guide promises (docs/operations.md, "Alerts").
REQUIRED_ALERTS = {
    "DialerCallsInFlightAboveLimit",
    "DialerCampaignSaturated",
    "DialerCallbacksRejected",
    "DialerNoSchedulerTicks",
    "DialerQueueGrowing",
    "DialerDialLatencyHigh",
    "DialerReconcileRepairs",
    "DialerCallbacksLost",
    "DialerWorkerDown",
}


def _rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def test_rule_groups_are_named_and_unique() -> None:
    groups = load_yaml(RULES)["groups"]
    names = [group["name"] for group in groups]
    assert names
    assert len(names) == len(set(names))
    assert all(group["rules"] for group in groups)


def test_every_promised_alert_is_there_once() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names)), "an alert name is repeated"
    assert set(names) >= REQUIRED_ALERTS, REQUIRED_ALERTS - set(names)


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_is_complete(rule: dict[str, Any]) -> None:
    assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
    assert rule["labels"]["severity"] in SEVERITIES
    assert "for" not in rule or _DURATION.match(rule["for"]), rule.get("for")
    annotations = rule["annotations"]
    # What it means, and what to do: both in words, not a placeholder.
    assert len(annotations["summary"]) > 20
    assert len(annotations["runbook"]) > 60


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_alert_queries_known_metrics(rule: dict[str, Any]) -> None:
    assert problems(rule["expr"]) == []


def test_rules_file_is_the_one_prometheus_loads() -> None:
    config = load_yaml(PROMETHEUS)
    compose = load_yaml(COMPOSE)
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in compose["services"]["prometheus"]["volumes"]
        if volume.startswith("./")
    }
    for rule_file in config["rule_files"]:
        assert mounts[rule_file] == "./prometheus/rules.yml"
    assert mounts["/etc/prometheus/prometheus.yml"] == "./prometheus/prometheus.yml"


def _jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in load_yaml(PROMETHEUS)["scrape_configs"]}


def _role_of(job: dict[str, Any]) -> str:
    for target in job.get("static_configs", []):
        if "role" in target.get("labels", {}):
            return str(target["labels"]["role"])
    for relabel in job.get("relabel_configs", []):
        if relabel.get("target_label") == "role":
            return str(relabel["replacement"])
    return ""


def test_every_role_is_scraped_where_it_serves() -> None:
    """The API on its HTTP port, workers and schedulers on the metrics port the compose file
    gives them; every replica (DNS names the service, so a scaled service is all scraped)."""
    services = load_yaml(COMPOSE)["services"]
    by_role = {_role_of(job): job for job in _jobs().values() if _role_of(job)}
    assert set(by_role) == {"api", "worker", "scheduler"}

    api = by_role["api"]
    api_port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert api.get("metrics_path", "/metrics") == "/metrics"
    assert [t for c in api["static_configs"] for t in c["targets"]] == [f"api:{api_port}"]

    for role in ("worker", "scheduler"):
        port = int(services[role]["environment"]["DIALER_METRICS_PORT"])
        (discovery,) = by_role[role]["dns_sd_configs"]
        assert discovery["names"] == [role]
        assert discovery["type"] == "A"
        assert discovery["port"] == port


def test_scrape_and_evaluation_intervals_are_durations() -> None:
    config = load_yaml(PROMETHEUS)
    for key in ("scrape_interval", "evaluation_interval"):
        assert _DURATION.match(config["global"][key])
