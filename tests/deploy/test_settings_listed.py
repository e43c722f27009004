"""Every setting is in deploy/dialer.env.example (deploy/README.md says it lists them), and
the deployment files set only variables the dialer reads."""

from __future__ import annotations

import re

from dialer.settings import ENV_PREFIX, Settings
from tests.deploy.files import COMPOSE, ENV_EXAMPLE, K8S, SYSTEMD


def _setting_names() -> set[str]:
    return set(Settings.model_fields)


def test_env_example_lists_every_setting() -> None:
    listed = set(re.findall(r"^#? ?DIALER_([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    missing = {name for name in _setting_names() if name.upper() not in listed}
    assert missing == set()


def test_deploy_files_set_only_real_settings() -> None:
    texts = [COMPOSE.read_text(), *(p.read_text() for p in K8S.glob("*.yaml"))]
    texts += [p.read_text() for p in SYSTEMD.iterdir()]
    used = {
        name.lower()
        for text in texts
        for name in re.findall(rf"\b{ENV_PREFIX}([A-Z0-9_]+)\b", text)
    }
    assert used - _setting_names() == set()
