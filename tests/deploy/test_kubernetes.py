"""deploy/k8s: every manifest valid against the Kubernetes schemas (kubernetes-validate
bundles them: offline), and the settings operations depend on are there: probes on routes
that exist, stop times above the worker's soft shutdown, non-root pods, the autoscaler on
the queue-depth metric."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from dialer.queue.celery import SOFT_SHUTDOWN_TIMEOUT_S
from tests.deploy.files import K8S, load_yaml, load_yaml_all
from tests.deploy.promql import FAMILIES

#: The oldest Kubernetes these manifests are meant for, and the newest schema bundled.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
IMAGE = "registry.example.com/dialer"
UID = 10001


def _manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in _manifests() for doc in load_yaml_all(path)]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _documents() if doc["kind"] == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("name", "document"),
    _documents(),
    ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in _documents()],
)
def test_valid_against_the_kubernetes_schema(
    name: str, document: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def test_the_schema_check_can_fail() -> None:
    deployment = _by_kind("Deployment")["dialer-worker"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_kustomization_lists_files_that_exist() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    # The example Secret and the release step are applied on their own, on purpose.
    assert "secret.example.yaml" not in kustomization["resources"]
    assert "migrate-job.yaml" not in kustomization["resources"]
    assert [image["name"] for image in kustomization["images"]] == [IMAGE]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl here")
def test_kustomize_builds_offline() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc)
    assert kinds.count("Deployment") == 3
    assert "HorizontalPodAutoscaler" in kinds


def test_a_deployment_per_role_on_one_image() -> None:
    from dialer.cli import app

    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    deployments = _by_kind("Deployment")
    assert set(deployments) == {"dialer-api", "dialer-scheduler", "dialer-worker"}
    jobs = _by_kind("Job")
    pods = [d["spec"]["template"] for d in [*deployments.values(), *jobs.values()]]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["image"].split(":")[0] == IMAGE
        assert container["args"][0] in commands | {"db"}
    assert deployments["dialer-scheduler"]["spec"]["replicas"] == 2
    assert jobs["dialer-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "db",
        "upgrade",
    ]


def test_pods_run_as_non_root_on_a_read_only_root() -> None:
    workloads = [*_by_kind("Deployment").values(), *_by_kind("Job").values()]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == UID
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        # /tmp is writable: an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        resources = container["resources"]
        assert resources["requests"]["cpu"]
        assert resources["requests"]["memory"]
        assert resources["limits"]["memory"]


def test_uid_is_the_images_user() -> None:
    dockerfile = (K8S.parent / "Dockerfile").read_text(encoding="utf-8")
    assert f"USER {UID}:{UID}" in dockerfile


def test_api_probes_use_routes_that_exist() -> None:
    from dialer.api.routes.health import router

    paths = {route.path for route in router.routes}  # type: ignore[attr-defined]
    api = _container(_by_kind("Deployment")["dialer-api"])
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz"} <= paths
    port = api["args"][api["args"].index("--port") + 1]
    assert {p["name"]: p["containerPort"] for p in api["ports"]} == {"http": int(port)}


def test_workers_and_schedulers_serve_metrics_where_probed_and_scraped() -> None:
    for name in ("dialer-worker", "dialer-scheduler"):
        deployment = _by_kind("Deployment")[name]
        container = _container(deployment)
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = int(env["DIALER_METRICS_PORT"])
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
        assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
        assert "readinessProbe" not in container  # they serve no Service
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)


def test_worker_stop_leaves_time_for_the_soft_shutdown() -> None:
    worker = _by_kind("Deployment")["dialer-worker"]
    grace_s = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s >= SOFT_SHUTDOWN_TIMEOUT_S + 15
    # Each pod is its own Celery node name.
    args = _container(worker)["args"]
    assert args[args.index("--hostname") + 1] == "worker@$(POD_NAME)"


def test_worker_autoscaler_follows_the_queue_depth() -> None:
    (hpa,) = _by_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "dialer-worker",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    name = metric["external"]["metric"]["name"]
    assert name in FAMILIES
    assert set(metric["external"]["metric"]["selector"]["matchLabels"]) <= FAMILIES[name][1]
    # prometheus-adapter serves that name.
    adapter = yaml.safe_load(
        _by_kind("ConfigMap")["dialer-prometheus-adapter-rules"]["data"]["config.yaml"]
    )
    (rule,) = adapter["externalRules"]
    assert rule["name"]["as"] == name
    assert name in rule["seriesQuery"]
    assert "max by (queue)" in rule["metricsQuery"]


def test_disruption_budgets_select_their_deployments() -> None:
    deployments = _by_kind("Deployment")
    budgets = _by_kind("PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _by_kind("Service")["dialer-api"]
    api_labels = deployments["dialer-api"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_labels.items()


def test_the_example_secret_holds_no_secret() -> None:
    (secret,) = _by_kind("Secret").values()
    for key, value in secret["stringData"].items():
        assert "example" in value or set(value[2:]) == {"x"}, key
