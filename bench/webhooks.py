"""Signed status callbacks one API process takes in per second, against a bare ceiling.

Run from the repository root (``make bench``). Database: a scratch PostgreSQL database
(DIALER_TEST_POSTGRES_URL, else the local server), created and dropped; Redis: database 9 of
DIALER_TEST_REDIS_URL's server (else the local one), flushed before and after.

- ``dialer``: ``dialer api`` (one process, as the Procfile's ``web`` line runs it) with
  ``DIALER_PROVIDER=twilio`` and Redis, its public base URL its own address, so the
  signatures it checks are the ones the bench computes. Before it starts, the campaigns'
  calls are placed through the dialer's own dial path (claims, slots, paces) on a provider
  stand-in that only hands out call ids: every attempt is dialing with its call id when its
  callbacks arrive. Each call then gets what Twilio posts for it, in order, with the same
  form fields as the carrier simulator (:mod:`dialer.carrier.params`): answered calls
  ``initiated``, ``ringing``, ``in-progress``, the AMD verdict (``human``, asynchronous AMD)
  and ``completed`` with the talk time; one call in ``NO_ANSWER_EVERY`` ``initiated``,
  ``ringing`` and ``no-answer``. The last callback ends the attempt, frees its slots in Redis
  and asks the workers' queue for a dispatch, as in production (no worker consumes it here).
- ``ceiling``: a bare FastAPI app served by uvicorn with the options ``dialer api`` uses, in
  one process, whose route reads the form, checks the signature with the dialer's own
  :func:`~dialer.telephony.twilio.signature.is_valid`, and inserts one row with SQLAlchemy
  (in the thread pool, as the dialer's route does) into a table of the same database.

The load: ``CONNECTIONS`` keep-alive connections from this process, each posting the
callbacks of one call after another, a call's in order, each waiting for the answer to the
previous one (as a carrier's callbacks of one call come). Both servers run throughout; after
``WARMUP_CALLS`` calls each that are not measured, they are loaded in turn, ``SLICES`` slices
each, so a change in the load of this shared machine skews both alike. Throughput and latency
(p50, p99) are measured here, at the client, and ``ratio`` = dialer callbacks/s divided by
ceiling callbacks/s (target >= 0.5); ``cpu_ratio`` is the same from the servers' CPU per
callback. Beside them, for each server: its process's CPU per
callback and share of the wall time (Linux's /proc: a share near 1.0 means one core, the GIL,
is the bound), this client's CPU share, and the connections the database accepted meanwhile.
The run fails unless every answer was 2xx and the database shows every callback taken in:
each attempt ended with the outcome and talk time its callbacks said, every callback in the
event log, no slot held, the counters equal to the rows; and one ceiling row per request.

Writes ``bench/results/webhooks.json`` and prints it.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import redis
import sqlalchemy as sa
from _server import Server, free_port, server
from _shared import REDIS, callable_place, own_number, scratch_database
from fastapi import FastAPI
from fastapi import Request as HttpRequest
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dialer.api.schemas.recipients import RecipientIn
from dialer.calls import counters
from dialer.calls.dispatch import DispatchConfig
from dialer.calls.results import DialResult
from dialer.clock import utc_now
from dialer.concurrency.stores import open_stores
from dialer.db.engine import session_factory
from dialer.db.migrate import upgrade
from dialer.db.models import CallAttempt, CallEvent
from dialer.policy.attempt_state import AttemptStatus, Outcome
from dialer.policy.campaign_state import CampaignAction
from dialer.runtime import Refills, build_runtime
from dialer.services import campaigns, tenancy
from dialer.settings import Settings
from dialer.telephony.base import (
    CallerIdStatus,
    CallInfo,
    CallRequest,
    CallStatus,
    LiveCalls,
    PlacedCall,
)
from dialer.telephony.simulator.call import SIMULATED_ACCOUNT_SID, SimulatedCall
from dialer.telephony.simulator.plan import CallPlan, PlannedEvent
from dialer.telephony.twilio.signature import SIGNATURE_HEADER, is_valid, sign
from dialer.telephony.twilio.urls import NAME, WebhookUrls

#: Calls measured on each server, after ``WARMUP_CALLS`` that are not.
CALLS = int(os.environ.get("WEBHOOKS_CALLS", "1000"))
WARMUP_CALLS = 96
#: Connections the load keeps open, each posting one call's callbacks at a time.
CONNECTIONS = int(os.environ.get("WEBHOOKS_CONNECTIONS", "32"))
#: One call in this many is not answered (3 callbacks instead of 5).
NO_ANSWER_EVERY = 5
#: Calls of one campaign (its ``max_concurrency``: every call is in flight at once).
CAMPAIGN_CALLS = 200
#: Talk time of an answered call, in seconds (a few values, so durations are checked).
TALK_S = (17, 42, 95)
#: Both servers' log level (uvicorn's too): what the benchmarks run the dialer with.
LOG_LEVEL = "WARNING"
AUTH_TOKEN = "bench-webhooks-auth-token"
REDIS_DATABASE = 9
#: Threads running the seeding's dial tasks.
SEED_THREADS = 8
REQUEST_TIMEOUT_S = 30.0
#: Turns each server's measured calls are split into (dialer, ceiling, dialer, ...).
SLICES = 8
RESULTS = Path("bench/results/webhooks.json")


@dataclass(frozen=True, slots=True)
class Call:
    """One seeded attempt, dialing with its provider call id, and how its call goes."""

    attempt_id: int
    campaign_id: str
    sid: str
    to: str
    from_: str
    answered: bool
    talk_s: int


@dataclass(frozen=True, slots=True)
class Callback:
    """One form post: path and query (the same on both servers), and its form params."""

    path: str
    params: dict[str, str]


@dataclass(slots=True)
class Load:
    """What load on one server did, seen from the client."""

    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    client_cpu_s: float = 0.0
    #: The server process's CPU (user and system) meanwhile.
    server_cpu_s: float = 0.0
    #: Connections the database accepted meanwhile (on this benchmark's database).
    db_sessions: int = 0

    @property
    def rate(self) -> float:
        """Callbacks answered per second."""
        return len(self.latencies_s) / self.wall_s

    def add(self, other: Load) -> None:
        self.wall_s += other.wall_s
        self.latencies_s += other.latencies_s
        self.statuses += other.statuses
        self.client_cpu_s += other.client_cpu_s
        self.server_cpu_s += other.server_cpu_s
        self.db_sessions += other.db_sessions

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        return {
            "requests": len(ordered),
            "wall_s": round(self.wall_s, 3),
            "callbacks_per_s": round(self.rate, 1),
            "p50_ms": round(_percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(_percentile(ordered, 0.99) * 1000, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
            # CPU over the wall time. The server's near 1.0: it is bound by its one process's
            # CPU (one core, the GIL); the client's near 1.0 would mean it set the pace.
            "server_cpu_share": round(self.server_cpu_s / self.wall_s, 3),
            "server_cpu_ms_per_callback": round(self.server_cpu_s / len(ordered) * 1000, 3),
            "client_cpu_share": round(self.client_cpu_s / self.wall_s, 3),
            "db_connections_opened": self.db_sessions,
        }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-ceiling":
        serve_ceiling(sys.argv[2], int(sys.argv[3]))
        return
    redis_url = _redis_database(REDIS, REDIS_DATABASE)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        with scratch_database() as url:
            result = run(url, redis_url)
    finally:
        client.flushdb()
        client.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def run(url: str, redis_url: str) -> dict[str, Any]:
    upgrade(url)
    started = time.perf_counter()
    calls = seed(url, redis_url, WARMUP_CALLS + CALLS)
    seed_s = time.perf_counter() - started
    engine = sa.create_engine(url)
    try:
        return _run(engine, url, redis_url, calls, seed_s)
    finally:
        engine.dispose()


def _run(
    engine: sa.Engine, url: str, redis_url: str, calls: list[Call], seed_s: float
) -> dict[str, Any]:
    warmup, measured = calls[:WARMUP_CALLS], calls[WARMUP_CALLS:]
    ceiling_table().create(engine)
    ports = {"dialer": free_port(), "ceiling": free_port()}
    env = {
        **os.environ,
        "DIALER_DATABASE_URL": url,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_PROVIDER": NAME,
        "DIALER_TWILIO_ACCOUNT_SID": SIMULATED_ACCOUNT_SID,
        "DIALER_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        # Nothing should reach the provider's API; if something did, it stays on this machine.
        "DIALER_TWILIO_BASE_URL": "http://127.0.0.1:9",
        "DIALER_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['dialer']}",
        "DIALER_LOG_LEVEL": LOG_LEVEL,
    }
    dialer_api = [sys.executable, "-m", "dialer", "api", "--host", "127.0.0.1"]
    ceiling_api = [sys.executable, __file__, "--serve-ceiling", url]
    with (
        server([*dialer_api, "--port", str(ports["dialer"])], env, ports["dialer"]) as api,
        server(
            [*ceiling_api, str(ports["ceiling"])],
            {**os.environ, "PYTHONPATH": os.getcwd()},
            ports["ceiling"],
        ) as bare,
    ):
        loads = measure(engine, {"dialer": api, "ceiling": bare}, warmup, measured)
    dialer, ceiling = loads["dialer"], loads["ceiling"]
    for name, load in loads.items():
        _all_2xx(name, load)
    checks = verify_dialer(engine, redis_url, calls)
    with engine.connect() as conn:
        rows = conn.scalar(sa.select(sa.func.count()).select_from(ceiling_table()))
        server_version = conn.scalar(sa.text("SHOW server_version"))
    if rows != _callbacks(calls):
        raise RuntimeError(f"the ceiling stored {rows} rows for {_callbacks(calls)} requests")
    ratio = dialer.rate / ceiling.rate
    return {
        "python": platform.python_version(),
        "postgresql": server_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "server": f"uvicorn, 1 process, log level {LOG_LEVEL.lower()}, proxy headers",
        "calls": CALLS,
        "warmup_calls": WARMUP_CALLS,
        "connections": CONNECTIONS,
        "slices": SLICES,
        "no_answer_every": NO_ANSWER_EVERY,
        "seed_s": round(seed_s, 1),
        "dialer": {**dialer.summary(), **checks},
        "ceiling": {**ceiling.summary(), "rows": rows},
        "ratio": round(ratio, 3),
        # The same ratio from the servers' CPU per callback: what the throughput ratio tends
        # to when both processes get a whole core (it moves less with the machine's load).
        "cpu_ratio": round(ceiling.server_cpu_s / dialer.server_cpu_s, 3),
        "target_ratio": 0.5,
        "met": ratio >= 0.5,
    }


def measure(
    engine: sa.Engine, servers: dict[str, Server], warmup: list[Call], measured: list[Call]
) -> dict[str, Load]:
    """Warm each server up, then load them in turn, slice by slice (a machine whose load
    changes during the run skews both alike)."""
    work = {name: _requests(one.port, warmup + measured) for name, one in servers.items()}
    for name, one in servers.items():
        asyncio.run(_load(one.port, work[name][:WARMUP_CALLS]))
    loads = {name: Load() for name in servers}
    step = -(-len(measured) // SLICES)
    for first in range(WARMUP_CALLS, WARMUP_CALLS + len(measured), step):
        for name, one in servers.items():
            cpu_s, sessions = one.cpu_s(), _sessions(engine)
            load = asyncio.run(_load(one.port, work[name][first : first + step]))
            load.server_cpu_s = one.cpu_s() - cpu_s
            load.db_sessions = _sessions(engine) - sessions
            loads[name].add(load)
    return loads


# -- seeding -------------------------------------------------------------------------------


class _CallIds:
    """A provider that accepts every call and names it, and does nothing else."""

    name = NAME

    def place_call(self, request: CallRequest) -> PlacedCall:
        return PlacedCall(provider_call_id=f"CA{uuid.uuid4().hex}", status=CallStatus.QUEUED)

    def hang_up(self, provider_call_id: str) -> CallInfo | None:
        raise AssertionError("the seeding provider hangs up nothing")

    def live_calls(self) -> LiveCalls:
        raise AssertionError("the seeding provider has no records")

    def caller_id_status(self, number: str) -> CallerIdStatus:
        return CallerIdStatus.OWNED

    def fetch(self, provider_call_id: str) -> CallInfo:
        raise AssertionError("the seeding provider has no records")

    def find_calls(self, to: str, from_: str, since: datetime) -> list[CallInfo]:
        raise AssertionError("the seeding provider has no records")

    def close(self) -> None:
        pass


class _NoQueue:
    """The workers' queue, as the seeding sees it: the bench runs the dial tasks itself."""

    def dial(self, attempt_ids: object, countdown_s: float = 0.0) -> None:
        pass

    def dispatch(self, campaign_id: str) -> None:
        pass

    def dispatch_started(self, campaign_id: str) -> None:
        pass


def seed(url: str, redis_url: str, count: int) -> list[Call]:
    """``count`` calls in flight: running campaigns of ``CAMPAIGN_CALLS`` recipients, each
    attempt claimed and dialed through the dialer's own dial path (slots held in Redis)."""
    now = utc_now()
    place = callable_place()
    settings = Settings(database_url=url, redis_url=redis_url, calls_per_second=10_000)
    client = redis.Redis.from_url(redis_url)
    runtime = build_runtime(
        settings,
        _NoQueue(),
        open_stores(settings, client),
        refills=Refills.ELSEWHERE,
        provider=_CallIds(),
        dispatch=DispatchConfig(round_size=CAMPAIGN_CALLS),
    )
    try:
        with runtime.sessions() as session, session.begin():
            tenant = tenancy.ensure_tenant(session, "bench-webhooks", now=now)
            for first in range(0, count, CAMPAIGN_CALLS):
                size = min(CAMPAIGN_CALLS, count - first)
                campaign, _ = campaigns.create(
                    session,
                    tenant.id,
                    {
                        "name": f"webhooks {first // CAMPAIGN_CALLS}",
                        "assistant_id": "a",
                        "phone_number_id": own_number(
                            session, tenant.id, f"+1415555{first // CAMPAIGN_CALLS:04d}"
                        ),
                        "max_concurrency": CAMPAIGN_CALLS,
                        "retry_policy": {"max_attempts": 1},
                        "speech_settings": {},
                    },
                    now=now,
                    recipients=[
                        RecipientIn(phone_number=place.number(first + i)) for i in range(size)
                    ],
                )
                campaigns.act(session, tenant.id, campaign.id, CampaignAction.START, now=now)

        def dial(attempt_id: int) -> None:
            # Dial tasks started together wait for their paces, as the workers' would.
            while (dialed := runtime.run_dial(attempt_id)).result is DialResult.PACED:
                time.sleep(0.001)
            if dialed.result is not DialResult.DIALED:
                raise RuntimeError(f"a seeding dial did not go out: {dialed}")

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            while dispatched := runtime.dispatcher.tick(utc_now()).dispatched:
                list(pool.map(dial, dispatched))
        with runtime.sessions() as session:
            rows = session.execute(
                sa.select(
                    CallAttempt.id,
                    CallAttempt.campaign_id,
                    CallAttempt.provider_call_id,
                    CallAttempt.to_number,
                    CallAttempt.from_number,
                )
                .where(CallAttempt.status == AttemptStatus.DIALING)
                .order_by(CallAttempt.id)
            ).all()
    finally:
        runtime.close()
        client.close()
    placed = [row for row in rows if row.provider_call_id and row.from_number]
    if len(placed) != count:
        raise RuntimeError(f"{len(placed)} attempts dialing with a call id, {count} wanted")
    return [
        Call(
            attempt_id=row.id,
            campaign_id=row.campaign_id,
            sid=str(row.provider_call_id),
            to=row.to_number,
            from_=str(row.from_number),
            answered=n % NO_ANSWER_EVERY != 0,
            talk_s=TALK_S[n % len(TALK_S)],
        )
        for n, row in enumerate(placed)
    ]


def callbacks(call: Call, placed_at: datetime) -> list[Callback]:
    """What Twilio posts about ``call``, in order, with the carrier simulator's params."""
    from dialer.carrier.params import callback_params

    events: tuple[PlannedEvent, ...]
    if call.answered:
        events = (
            PlannedEvent(0.0, "status", CallStatus.INITIATED),
            PlannedEvent(1.0, "status", CallStatus.RINGING),
            PlannedEvent(6.0, "status", CallStatus.IN_PROGRESS),
            PlannedEvent(8.5, "amd", answered_by="human"),
            PlannedEvent(6.0 + call.talk_s, "status", CallStatus.COMPLETED, duration_s=call.talk_s),
        )
    else:
        events = (
            PlannedEvent(0.0, "status", CallStatus.INITIATED),
            PlannedEvent(1.0, "status", CallStatus.RINGING),
            PlannedEvent(31.0, "status", CallStatus.NO_ANSWER, duration_s=0),
        )
    outcome = Outcome.HUMAN if call.answered else Outcome.NO_ANSWER
    simulated = SimulatedCall(
        sid=call.sid,
        to=call.to,
        from_=call.from_,
        plan=CallPlan(outcome, events),
        created_at=placed_at,
    )
    _, status_url, amd_url = WebhookUrls("").for_attempt(str(call.attempt_id), call.campaign_id)
    sent = []
    for event in events:
        at = placed_at + timedelta(seconds=event.offset_s)
        simulated.apply(event, at)
        path = amd_url if event.kind == "amd" else status_url
        sent.append(Callback(path, callback_params(simulated, event, at)))
    return sent


def _callbacks(calls: Sequence[Call]) -> int:
    return sum(5 if call.answered else 3 for call in calls)


# -- the load ------------------------------------------------------------------------------


def _requests(port: int, calls: Sequence[Call]) -> list[list[bytes]]:
    """Each call's callbacks as HTTP/1.1 requests to the server on ``port``, signed for it."""
    base_url = f"http://127.0.0.1:{port}"
    placed_at = utc_now().replace(microsecond=0) - timedelta(minutes=5)
    work = []
    for call in calls:
        requests = []
        for callback in callbacks(call, placed_at):
            body = urlencode(callback.params).encode()
            signature = sign(base_url + callback.path, callback.params, AUTH_TOKEN)
            head = (
                f"POST {callback.path} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"{SIGNATURE_HEADER}: {signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            requests.append(head.encode() + body)
        work.append(requests)
    return work


async def _load(port: int, work: Sequence[list[bytes]]) -> Load:
    """Post ``work`` (requests grouped by call) over ``CONNECTIONS`` keep-alive connections.

    A plain HTTP/1.1 client: the requests are prepared bytes, and an answer is read as far as
    its status and its ``Content-Length`` body. On this machine's few cores the client shares
    the CPU with the server it measures; httpx spent several times more of it per request.
    """
    pending = iter(work)
    load = Load()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for call in pending:
                for request in call:
                    sent = time.perf_counter()
                    writer.write(request)
                    status = await asyncio.wait_for(_answer(reader), REQUEST_TIMEOUT_S)
                    load.latencies_s.append(time.perf_counter() - sent)
                    load.statuses[status] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    load.wall_s, load.client_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return load


async def _answer(reader: asyncio.StreamReader) -> int:
    """Read one answer; its status code."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" or (name == "connection" and value == "close"):
            raise RuntimeError(f"unexpected answer header {line!r}")
    if length:
        await reader.readexactly(length)
    return status


def _all_2xx(server: str, load: Load) -> None:
    bad = {status: n for status, n in load.statuses.items() if not 200 <= status < 300}
    if bad:
        raise RuntimeError(f"{server}: answers other than 2xx: {bad}")


# -- the checks ----------------------------------------------------------------------------


def verify_dialer(engine: sa.Engine, redis_url: str, calls: Sequence[Call]) -> dict[str, Any]:
    """That every callback was taken in: fails loudly otherwise."""
    sessions = session_factory(engine)
    with sessions() as session:
        rows = {
            attempt_id: (status, outcome, duration_s)
            for attempt_id, status, outcome, duration_s in session.execute(
                sa.select(
                    CallAttempt.id, CallAttempt.status, CallAttempt.outcome, CallAttempt.duration_s
                )
            )
        }
        events = session.scalar(sa.select(sa.func.count()).select_from(CallEvent))
        campaign_ids = sorted({call.campaign_id for call in calls})
        live = counters.read(session, campaign_ids)
        truth = {cid: counters.truth(session, cid) for cid in campaign_ids}
    wrong = [
        call.attempt_id
        for call in calls
        if rows.get(call.attempt_id)
        != (
            AttemptStatus.ENDED,
            Outcome.HUMAN if call.answered else Outcome.NO_ANSWER,
            call.talk_s if call.answered else 0,
        )
    ]
    if wrong:
        raise RuntimeError(f"{len(wrong)} attempts not ended as their callbacks said: {wrong[:5]}")
    if events != _callbacks(calls):
        raise RuntimeError(f"{events} callbacks logged, {_callbacks(calls)} sent")
    if live != truth:
        raise RuntimeError("the campaigns' counters differ from their rows")
    stores = open_stores(Settings(redis_url=redis_url))
    held = sum(stores.slots.in_use(cid) for cid in campaign_ids)
    if held:
        raise RuntimeError(f"{held} slots still held after every call ended")
    return {"attempts_ended": len(calls), "events_logged": events, "slots_held": held}


# -- the ceiling ---------------------------------------------------------------------------


def ceiling_table() -> sa.Table:
    return sa.Table(
        "bench_webhook_events",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("call_status", sa.String(20)),
        sa.Column("sequence_number", sa.Integer),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def serve_ceiling(url: str, port: int) -> None:
    """The ceiling's server: what ``dialer api`` runs, with a route that only checks the
    signature and inserts a row."""
    import uvicorn

    engine = sa.create_engine(url)
    insert = ceiling_table().insert()
    base_url = f"http://127.0.0.1:{port}"
    app = FastAPI()

    def store(params: dict[str, str]) -> None:
        sequence = params.get("SequenceNumber")
        with engine.begin() as conn:
            conn.execute(
                insert,
                {
                    "call_sid": params["CallSid"],
                    "call_status": params.get("CallStatus"),
                    "sequence_number": None if sequence is None else int(sequence),
                    "received_at": datetime.now(UTC),
                },
            )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/twilio/{attempt_id}/{kind}", status_code=204)
    async def callback(attempt_id: int, kind: str, request: HttpRequest) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        url = f"{base_url}{request.url.path}?{request.url.query}"
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not is_valid(url, params, signature, AUTH_TOKEN):
            return Response(status_code=403)
        await run_in_threadpool(store, params)
        return Response(status_code=204)

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level=LOG_LEVEL.lower(),
        proxy_headers=True,
    )


# -- processes -----------------------------------------------------------------------------


def _sessions(engine: sa.Engine) -> int:
    """Connections the database server has accepted to this database so far."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                sa.text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            )
        )


def _redis_database(url: str, database: int) -> str:
    """``url`` (a Redis URL) with its database number replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


if __name__ == "__main__":
    main()
