from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from dialer.carrier import CarrierConfig, Faults, server
from dialer.carrier.cli import carrier_command
from dialer.policy.attempt_state import Outcome
from dialer.telephony.simulator.distributions import Exponential, Fixed


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[CarrierConfig, str, int]]:
    calls: list[tuple[CarrierConfig, str, int]] = []
    monkeypatch.setattr(
        server, "serve_carrier", lambda config, host, port: calls.append((config, host, port))
    )
    return calls


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("carrier")(carrier_command)
    app.command("other")(lambda: None)  # two commands: "carrier" is then a subcommand
    return app


def test_defaults(served: list[tuple[CarrierConfig, str, int]]) -> None:
    result = CliRunner().invoke(_app(), ["carrier"])
    assert result.exit_code == 0, result.output
    ((config, host, port),) = served
    assert (host, port) == ("127.0.0.1", 8765)
    assert config == CarrierConfig(profile=config.profile, faults=Faults())
    assert config.cps is None
    assert config.seed is None


def test_options_reach_the_config(served: list[tuple[CarrierConfig, str, int]]) -> None:
    args = [
        "carrier",
        "--port", "9000",
        "--seed", "42",
        "--cps", "1",
        "--time-scale", "0.1",
        "--weights", "human=1,busy=3",
        "--ring", "fixed:4",
        "--talk", "exp:30",
        "--duplicate-p", "0.1",
        "--reorder-p", "0.2",
        "--drop-p", "0.05",
        "--http-429-p", "0.01",
        "--http-5xx-p", "0.02",
        "--slow-p", "0.5",
        "--slow-delay-s", "2",
        "--auth-token", "tok",
    ]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    ((config, _, port),) = served
    assert port == 9000
    assert (config.seed, config.cps, config.time_scale, config.auth_token) == (42, 1.0, 0.1, "tok")
    assert config.profile.weights.share(Outcome.BUSY) == 0.75
    assert (config.profile.ring_s, config.profile.talk_s) == (Fixed(4), Exponential(30))
    assert config.faults == Faults(
        duplicate_p=0.1,
        reorder_p=0.2,
        drop_p=0.05,
        http_429_p=0.01,
        http_5xx_p=0.02,
        slow_p=0.5,
        slow_delay_s=2,
    )


def test_keys_reach_the_config_as_e164(served: list[tuple[CarrierConfig, str, int]]) -> None:
    result = CliRunner().invoke(_app(), ["carrier", "--keys", "(212) 555-1000=9, +14155550101=#"])
    assert result.exit_code == 0, result.output
    ((config, _, _),) = served
    assert config.keys == {"+12125551000": "9", "+14155550101": "#"}


@pytest.mark.parametrize(
    "args",
    [
        ["--drop-p", "2"],
        ["--ring", "normal:3"],
        ["--weights", "robots=1"],
        ["--cps", "0"],
        ["--keys", "+12125551000"],
        ["--keys", "+12125551000=99"],
        ["--keys", "not-a-number=9"],
    ],
)
def test_bad_options_are_refused(
    served: list[tuple[CarrierConfig, str, int]], args: list[str]
) -> None:
    result = CliRunner().invoke(_app(), ["carrier", *args])
    assert result.exit_code == 2
    assert served == []
