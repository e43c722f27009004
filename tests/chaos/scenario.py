"""The faults of a chaos run, one after another, while the campaigns dial.

Each fault is recorded with when it began and when the fleet was whole again; after each,
the run waits (with a deadline) for calls to flow again before the next, so every fault
meets a busy system and the figures show how fast it recovered. A process that exits
though nothing killed it is recorded and replaced, and the run goes on.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from dialer.carrier import Faults
from tests.chaos.fleet import BASE_FAULTS, ChaosFleet
from tests.chaos.records import Fault, LimitChange, Pause, RunRecord, Span, Suppression, now
from tests.chaos.workload import LiveCampaign, append_recipients
from tests.e2e.fleet import dial_tasks_unfinished, json_of, wait_for

#: How long the fleet gets after a fault for calls in flight to reach half their level
#: before it (the run goes on regardless; the figures say how long it took).
RECOVERY_WAIT_S = 12.0
API_DOWN_S = 10.0
POSTGRES_DOWN_S = 2.0
LOWERED_LIMIT = 3


@dataclass
class Chaos:
    fleet: ChaosFleet
    campaigns: list[LiveCampaign]
    record: RunRecord = field(default_factory=RunRecord)
    killed: set[str] = field(default_factory=set)
    log: Callable[[str], None] = print

    def campaign(self, key: str) -> LiveCampaign:
        return next(c for c in self.campaigns if c.key == key)

    def in_flight(self) -> int:
        """Calls of the run's campaigns live at the carrier now."""
        live = self.fleet.carrier.stats()["live"]["by_campaign"]
        return sum(int(live.get(c.id, 0)) for c in self.campaigns)

    # -- running the faults --------------------------------------------------------------

    def run_all(self, *, first_round: bool = True) -> None:
        """Every fault once, in an order that gives each a busy fleet."""
        if first_round:
            self.warm_up()
        # The faults that lose callbacks come last: until the provider is swept for the
        # calls they leave open, they can hold every slot, and the faults after them
        # would meet an idle fleet.
        steps: list[Callable[[], None]] = [
            self.append_and_suppress,
            self.kill_worker,
            self.kill_scheduler,
            self.carrier_refuses_and_slows,
            self.lower_limit_and_pause,
            self.restart_redis,
            self.restart_postgres,
            self.lose_callbacks,
            self.api_down,
        ]
        for step in steps:
            step()
            self.replace_unexpected_exits()

    def warm_up(self) -> None:
        """Until every campaign has calls in flight at the carrier."""

        def all_dialing() -> bool:
            live = self.fleet.carrier.stats()["live"]["by_campaign"]
            return all(live.get(c.id, 0) > 0 for c in self.campaigns)

        wait_for("every campaign to have calls in flight", all_dialing, timeout_s=60)
        time.sleep(3)

    def fault(self, name: str, act: Callable[[Fault], None]) -> Fault:
        """Run ``act`` as fault ``name`` (it sets ``restored``), then give the fleet time
        to recover."""
        level = self.level_before()
        fault = Fault(name, now())
        self.record.faults.append(fault)
        self.log(f"[chaos] {name}: begins with {self.in_flight()} call(s) in flight")
        act(fault)
        if fault.restored is None:
            fault.restored = now()
        self.await_recovery(level)
        return fault

    def level_before(self, window_s: float = 2.0) -> float:
        samples = []
        deadline = time.monotonic() + window_s
        while time.monotonic() < deadline:
            samples.append(self.in_flight())
            time.sleep(0.2)
        return sum(samples) / len(samples)

    def await_recovery(self, level: float) -> None:
        target = max(1.0, level / 2)
        deadline = time.monotonic() + RECOVERY_WAIT_S
        while time.monotonic() < deadline and self.in_flight() < target:
            # As a supervisor would: a process that died of the fault is replaced at once
            # (and reported), so the figures show the fleet's recovery, not the harness's.
            self.replace_unexpected_exits()
            time.sleep(0.2)

    def replace_unexpected_exits(self) -> None:
        for proc in self.fleet.unexpected_exits(self.killed):
            role = proc.name.rsplit("-", 1)[0]
            critical = [line for line in proc.text().splitlines() if " CRITICAL " in line]
            last = (critical[-1] if critical else proc.tail(1)).strip()[-200:]
            self.record.unexpected_exits.append(
                f"{proc.name} exited with status {proc.popen.returncode} at "
                f"+{(now() - self.record.started).total_seconds():.0f}s: {last}"
            )
            self.killed.add(proc.name)
            self.log(f"[chaos] {proc.name} exited by itself; starting another {role}")
            self.fleet.start(role)

    # -- the faults ------------------------------------------------------------------------

    def append_and_suppress(self) -> None:
        """Append recipients to A; put the next due numbers of A and B on the do-not-call
        list (those a claim takes next, so the screen right before the dial is exercised)."""
        a, b = self.campaign("A"), self.campaign("B")
        added = append_recipients(self.fleet, a, 60)
        self.record.appended[a.id] = len(added)
        for campaign, count in ((a, 3), (b, 2)):
            for recipient in self.due_recipients(campaign, count):
                self.suppress(campaign, recipient)
        self.log(
            f"[chaos] appended {len(added)} recipients to A; suppressed "
            f"{[s.number for s in self.record.suppressions]}"
        )

    def due_recipients(self, campaign: LiveCampaign, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with self.fleet.client(campaign.spec.tenant) as client:
            for status in ("waiting_retry", "pending"):
                page = json_of(
                    client.get(
                        f"/campaign/{campaign.id}/recipients",
                        params={"status": status, "limit": count},
                    ),
                    200,
                )
                found.extend(page["data"])
        return [r for r in found if r["phone_number"] not in campaign.night_numbers][:count]

    def suppress(self, campaign: LiveCampaign, recipient: dict[str, Any]) -> None:
        with self.fleet.client(campaign.spec.tenant) as client:
            sent = now()
            json_of(
                client.post(
                    "/suppression",
                    json={"phone_number": recipient["phone_number"], "reason": "chaos"},
                ),
                201,
            )
            span = Span(sent, now())
        self.record.suppressions.append(
            Suppression(campaign.spec.tenant, recipient["phone_number"], recipient["status"], span)
        )

    def lose_callbacks(self) -> None:
        """A fifth of the carrier's callbacks never arrive, for six seconds."""

        def act(fault: Fault) -> None:
            self.set_faults(drop_p=0.2)
            time.sleep(6)
            self.set_faults()
            fault.detail = "drop_p=0.2 for 6 s"

        self.fault("callbacks lost", act)

    def api_down(self) -> None:
        self.api_down_for(API_DOWN_S)

    def api_down_for(self, down_s: float) -> None:
        """SIGKILL the API; the carrier's callbacks meanwhile find nobody; restart it."""

        def act(fault: Fault) -> None:
            (api,) = self.fleet.live("api")
            self.fleet.kill(api)
            self.killed.add(api.name)
            time.sleep(down_s)
            self.fleet.start("api")
            fault.restored = now()
            fault.detail = f"down {(fault.restored - fault.began).total_seconds():.1f}s"

        self.fault("API killed", act)

    def kill_worker(self) -> None:
        """SIGKILL the worker with the most dial tasks under way; start a replacement."""

        def act(fault: Fault) -> None:
            workers = self.fleet.live("worker")
            victim = max(workers, key=lambda w: len(dial_tasks_unfinished(w.text())))
            tasks = len(dial_tasks_unfinished(victim.text()))
            self.fleet.kill(victim)
            self.killed.add(victim.name)
            self.fleet.start("worker")
            fault.restored = now()
            fault.detail = f"{victim.name} with {tasks} dial task(s) unfinished"

        self.fault("worker killed", act)

    def kill_scheduler(self) -> None:
        def act(fault: Fault) -> None:
            victim = self.fleet.live("scheduler")[0]
            self.fleet.kill(victim)
            self.killed.add(victim.name)
            time.sleep(2)
            self.fleet.start("scheduler")
            fault.detail = f"{victim.name}, restarted after 2 s"

        self.fault("scheduler killed", act)

    def carrier_refuses_and_slows(self) -> None:
        """429s and 500s on create, slow answers, and a calls-per-second limit, for 10 s."""

        def act(fault: Fault) -> None:
            self.set_faults(http_429_p=0.15, http_5xx_p=0.1, slow_p=0.2, slow_delay_s=1.5)
            self.fleet.carrier.carrier.reconfigure(cps=4.0)
            time.sleep(10)
            self.fleet.carrier.carrier.reconfigure(cps=None)
            self.set_faults()
            fault.detail = "429 p=0.15, 5xx p=0.1, slow p=0.2 (1.5 s), cps 4, for 10 s"

        self.fault("carrier refuses and slows", act)

    def lower_limit_and_pause(self) -> None:
        """PATCH A's max_concurrency down and back; pause B and resume it meanwhile."""
        a, b = self.campaign("A"), self.campaign("B")

        def act(fault: Fault) -> None:
            self.set_limit(a, LOWERED_LIMIT)
            paused = self.action(b, "pause")
            time.sleep(8)
            resumed = self.action(b, "start")
            self.record.pauses.append(Pause(b.id, paused, resumed))
            time.sleep(4)
            self.set_limit(a, a.spec.max_concurrency)
            fault.detail = f"A at {LOWERED_LIMIT} for 12 s, B paused 8 s"

        self.fault("limit lowered, campaign paused", act)

    def set_limit(self, campaign: LiveCampaign, limit: int) -> None:
        with self.fleet.client(campaign.spec.tenant) as client:
            sent = now()
            body = json_of(
                client.patch(f"/campaign/{campaign.id}", json={"max_concurrency": limit}), 200
            )
            span = Span(sent, now())
        assert body["max_concurrency"] == limit, body
        self.record.limit_changes.append(LimitChange(campaign.id, limit, span))

    def action(self, campaign: LiveCampaign, action: str) -> Span:
        with self.fleet.client(campaign.spec.tenant) as client:
            sent = now()
            json_of(client.post(f"/campaign/{campaign.id}/{action}"), 200)
            return Span(sent, now())

    def restart_redis(self) -> None:
        """SIGKILL Redis (it keeps nothing on disk) and start it again on its port: the
        semaphore's holders, the queues and the pacer are gone."""

        def act(fault: Fault) -> None:
            self.fleet.redis.restart()
            fault.detail = "all keys lost"

        self.fault("Redis restarted empty", act)

    def restart_postgres(self) -> None:
        def act(fault: Fault) -> None:
            self.fleet.postgres.fast_restart(POSTGRES_DOWN_S)
            fault.detail = f"pg_ctl stop -m fast, down {POSTGRES_DOWN_S:.0f} s"

        self.fault("PostgreSQL restarted", act)

    def set_faults(self, **faults: Any) -> None:
        """The run's base faults (repeated and reordered callbacks) plus ``faults``."""
        base = {
            "duplicate_p": BASE_FAULTS.duplicate_p,
            "reorder_p": BASE_FAULTS.reorder_p,
        }
        self.fleet.carrier.carrier.set_faults(Faults(**{**base, **faults}))

    # -- the end -------------------------------------------------------------------------

    def quiesce(self, timeout_s: float = 30.0) -> None:
        """Stop dialing (SIGTERM the schedulers and workers), let the calls up at the carrier
        end and their callbacks reach the API, then read each campaign once more: the
        counts and the rows then stand still, so they can be compared even when the
        campaigns did not complete."""
        procs = self.fleet.live("scheduler") + self.fleet.live("worker")
        self.killed.update(p.name for p in procs)
        for proc in procs:
            proc.kill_group(signal.SIGTERM)
        for proc in procs:
            self.fleet.processes.stop(proc, grace_s=10.0)
        deadline = time.monotonic() + timeout_s
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.2)
        previous: dict[str, int] | None = None
        while time.monotonic() < deadline:
            webhooks = dict(self.fleet.carrier.stats()["webhooks"])
            if webhooks == previous:
                break
            previous = webhooks
            time.sleep(1.0)
        for campaign in self.campaigns:
            with self.fleet.client(campaign.spec.tenant) as client:
                campaign.body = json_of(client.get(f"/campaign/{campaign.id}"), 200)

    def await_completion(self, timeout_s: float) -> bool:
        """Poll until every campaign is completed; False at the deadline (the checks then
        say what is left). Keeps each campaign's last body."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.replace_unexpected_exits()
            done = True
            for campaign in self.campaigns:
                with self.fleet.client(campaign.spec.tenant) as client:
                    try:
                        response = client.get(f"/campaign/{campaign.id}")
                    except httpx.HTTPError:
                        done = False
                        continue
                if response.status_code == 200:
                    campaign.body = response.json()
                done = done and campaign.body.get("status") == "completed"
            if done:
                self.record.completed = now()
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)
