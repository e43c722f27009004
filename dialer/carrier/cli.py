"""``dialer carrier``: serve the Twilio-compatible carrier simulator (a thin entry point)."""

from __future__ import annotations

from typing import Annotated

import typer

from dialer.carrier.config import DEFAULT_AUTH_TOKEN, CarrierConfig, Faults
from dialer.errors import ValidationError
from dialer.phone import to_e164
from dialer.telephony.simulator.call import SIMULATED_ACCOUNT_SID
from dialer.telephony.simulator.distributions import parse_distribution
from dialer.telephony.simulator.plan import OutcomeWeights, SimulationProfile

DEFAULT_WEIGHTS = "human=35,voicemail=25,busy=10,no_answer=20,failed=10"


def carrier_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8765,
    account_sid: Annotated[
        str, typer.Option(help="Account sid clients authenticate with.")
    ] = SIMULATED_ACCOUNT_SID,
    auth_token: Annotated[
        str, typer.Option(help="Auth token: basic-auth password and webhook signing key.")
    ] = DEFAULT_AUTH_TOKEN,
    seed: Annotated[int | None, typer.Option(help="Seed for reproducible calls.")] = None,
    time_scale: Annotated[
        float, typer.Option(help="Wall seconds per simulated second (0.1 = 10x faster).")
    ] = 1.0,
    cps: Annotated[
        float | None, typer.Option(help="Calls per second leaving the queue; unset = no limit.")
    ] = None,
    weights: Annotated[str, typer.Option(help="Outcome weights.")] = DEFAULT_WEIGHTS,
    ring: Annotated[
        str, typer.Option(help="Ring time until answer: fixed:S, uniform:A,B or exp:MEAN.")
    ] = "uniform:3,20",
    talk: Annotated[str, typer.Option(help="Talk time of a person who answers.")] = "exp:60",
    stream: Annotated[
        str, typer.Option(help="From a person's answer until the assistant's stream starts.")
    ] = "fixed:0.5",
    stream_failures: Annotated[
        float, typer.Option(help="Share of answered calls whose stream never starts.")
    ] = 0.0,
    blocked: Annotated[
        str | None,
        typer.Option(help="Comma-separated caller numbers carriers refuse (SIP 608)."),
    ] = None,
    duplicate_p: Annotated[float, typer.Option(help="Chance a callback is sent twice.")] = 0.0,
    reorder_p: Annotated[
        float, typer.Option(help="Chance a callback arrives after the next one.")
    ] = 0.0,
    drop_p: Annotated[float, typer.Option(help="Chance a callback is never sent.")] = 0.0,
    drop_ended_p: Annotated[
        float, typer.Option(help="Chance a call's terminal status callback is never sent.")
    ] = 0.0,
    http_429_p: Annotated[float, typer.Option(help="Chance a REST request gets 429.")] = 0.0,
    http_5xx_p: Annotated[float, typer.Option(help="Chance a REST request gets 500.")] = 0.0,
    slow_p: Annotated[float, typer.Option(help="Chance a REST response is delayed.")] = 0.0,
    slow_delay_s: Annotated[float, typer.Option(help="Delay of a slow response, seconds.")] = 5.0,
    numbers: Annotated[
        str | None,
        typer.Option(help="Comma-separated numbers the account owns; unset = any valid number."),
    ] = None,
    caller_ids: Annotated[
        str | None, typer.Option(help="Comma-separated numbers verified as caller IDs.")
    ] = None,
    keys: Annotated[
        str | None,
        typer.Option(
            help="Keys callees press during the answer's <Gather>: NUMBER=KEY,... (e.g. "
            "+12125551000=9 opts that number out)."
        ),
    ] = None,
) -> None:
    """Serve a Twilio-compatible carrier that plays calls out and posts signed callbacks."""
    from dialer.carrier.server import serve_carrier

    try:
        config = CarrierConfig(
            account_sid=account_sid,
            auth_token=auth_token,
            seed=seed,
            time_scale=time_scale,
            cps=cps,
            profile=SimulationProfile(
                weights=OutcomeWeights.parse(weights),
                ring_s=parse_distribution(ring),
                talk_s=parse_distribution(talk),
                stream_s=parse_distribution(stream),
                stream_failures=stream_failures,
                blocked=_numbers(blocked or "", "blocked"),
            ),
            faults=Faults(
                duplicate_p=duplicate_p,
                reorder_p=reorder_p,
                drop_p=drop_p,
                drop_ended_p=drop_ended_p,
                http_429_p=http_429_p,
                http_5xx_p=http_5xx_p,
                slow_p=slow_p,
                slow_delay_s=slow_delay_s,
            ),
            numbers=None if numbers is None else _numbers(numbers, "numbers"),
            caller_ids=_numbers(caller_ids or "", "caller_ids"),
            keys=_keys(keys or ""),
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"carrier for account {account_sid} on http://{host}:{port}")
    serve_carrier(config, host, port)


def _numbers(text: str, field: str) -> frozenset[str]:
    """Comma-separated numbers, each as E.164 (ValidationError naming ``field`` otherwise)."""
    return frozenset(to_e164(raw, field=field) for raw in text.split(",") if raw.strip())


def _keys(text: str) -> dict[str, str]:
    """``NUMBER=KEY,...`` as {E.164 number: key} (ValidationError naming ``keys`` otherwise)."""
    keys: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        number, sep, key = part.partition("=")
        if not sep:
            raise ValidationError("keys", f"expected NUMBER=KEY, not {part!r}")
        keys[to_e164(number, field="keys")] = key.strip()
    return keys
