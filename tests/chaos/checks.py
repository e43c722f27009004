"""The invariants a chaos run must keep, as pure functions over its evidence and record.

Each check returns a :class:`Verdict`: pass or fail, the figures a person would quote, and
every violation found (not only the first), so one run shows all that went wrong.

Concurrency (check 1) is judged at the carrier, which counts a call live from its creation
to its end. The dialer holds a call's slot from the claim (before the create) until it has
seen the end (after the carrier's end), so each carrier call lies inside its slot's lease.
The semaphore admits a claim only when the holders, itself included, fit the limit the
claim read. Take any moment a call is created and, among the calls live then, the one
claimed last: every other live call was claimed before it and still holds its slot, so
they all held slots when it was admitted, and their number is at most the limit that claim
read. Hence the check: at each creation, calls live <= the limit the last-claimed live call
could have read. When a PATCH lowers the limit, calls claimed under the old limit may still
start and run above the new one (they are allowed by the rule, as they should be); a call
claimed after the PATCH committed may start only below the new limit. A claim reads the
limit up to ``CLAIM_READ_S`` before its attempt row's ``queued_at``, and a PATCH commits
somewhere between its request and its answer: either value counts while it is uncertain.
After a Redis restart without the holders, a claim sees free slots that live calls hold,
and the rule catches the excess.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dialer.phone import time_zones_for
from dialer.policy.calling_hours import NotCallable, legal_hours_for
from tests.chaos.evidence import CarrierCall, Evidence
from tests.chaos.records import LimitChange, RunRecord
from tests.chaos.workload import LiveCampaign

CLAIM_READ_S = 2.0
LEGAL_HOURS = (time(8, 0), time(21, 0))
TERMINAL = {"done", "exhausted", "suppressed", "skipped", "canceled"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(slots=True)
class Verdict:
    name: str
    figures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    races: list[str] = field(default_factory=list)  # inside a change's uncertainty: reported

    @property
    def passed(self) -> bool:
        return not self.violations

    def render(self, limit: int = 15) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name}"
        lines = [head, *(f"    {f}" for f in self.figures)]
        if self.races:
            lines.append(f"    races (not failures): {self.races[:limit]}")
        if self.violations:
            lines.append(f"    {len(self.violations)} violation(s):")
            lines.extend(f"      - {v}" for v in self.violations[:limit])
        return "\n".join(lines)


# -- 1. concurrency --------------------------------------------------------------------------


def limit_readable(
    initial: int, changes: list[LimitChange], claimed_at: datetime, read_s: float = CLAIM_READ_S
) -> int:
    """The highest limit a claim whose attempt was queued at ``claimed_at`` could have read."""
    lo, hi = claimed_at - timedelta(seconds=read_s), claimed_at
    ordered = sorted(changes, key=lambda c: c.span.sent)
    # Value i is in force from its change's commit (not before the request was sent) until
    # the next change's commit (not after that one's answer came back).
    values = [initial, *(c.limit for c in ordered)]
    starts: list[datetime | None] = [None, *(c.span.sent for c in ordered)]
    ends: list[datetime | None] = [*(c.span.done for c in ordered), None]
    possible = [
        value
        for value, start, end in zip(values, starts, ends, strict=True)
        if (start is None or start <= hi) and (end is None or end > lo)
    ]
    return max(possible)


def check_concurrency(
    evidence: Evidence, campaigns: list[LiveCampaign], record: RunRecord
) -> Verdict:
    verdict = Verdict("1. calls in flight never above max_concurrency (at the carrier)")
    queued_at = {a.id: a.queued_at for a in evidence.attempts}
    for campaign in campaigns:
        calls = evidence.calls_of(campaign.id)
        initial = campaign.spec.max_concurrency
        changes = [c for c in record.limit_changes if c.campaign == campaign.id]
        peak, lowered_peak, excess = _sweep(calls, queued_at, initial, changes)
        lowered = (
            f", {lowered_peak} while lowered to {min(c.limit for c in changes)}" if changes else ""
        )
        verdict.figures.append(
            f"{campaign.key}: peak {peak} vs limit {initial}{lowered} ({len(calls)} calls)"
        )
        verdict.violations.extend(f"{campaign.key}: {e}" for e in excess)
    return verdict


def _sweep(
    calls: list[CarrierCall],
    queued_at: dict[int, datetime],
    initial: int,
    changes: list[LimitChange],
) -> tuple[int, int, list[str]]:
    """Walk the creations and ends in time order (an end before a creation at the same
    instant: the dialer only creates after it saw an end). Returns the peak, the peak among
    creations claimed while a lowered limit was certainly in force, and the excesses."""

    def claimed(call: CarrierCall) -> datetime:
        if call.attempt_id is not None and call.attempt_id in queued_at:
            return queued_at[call.attempt_id]
        return call.created_at

    events: list[tuple[datetime, int, CarrierCall]] = []
    for call in calls:
        events.append((call.created_at, 1, call))
        if call.ended_at is not None:
            events.append((call.ended_at, 0, call))
    events.sort(key=lambda e: (e[0], e[1]))
    live: dict[str, CarrierCall] = {}
    peak = lowered_peak = 0
    excess: list[str] = []
    lowered_from, lowered_to = _lowered_window(changes)
    for at, is_start, call in events:
        if not is_start:
            live.pop(call.sid, None)
            continue
        live[call.sid] = call
        peak = max(peak, len(live))
        last = max(live.values(), key=claimed)
        allowed = limit_readable(initial, changes, claimed(last))
        if (
            lowered_from is not None
            and lowered_to is not None
            and (lowered_from <= claimed(call) <= lowered_to)
        ):
            lowered_peak = max(lowered_peak, len(live))
        if len(live) > allowed:
            excess.append(
                f"{len(live)} live > {allowed} at {at.isoformat(timespec='milliseconds')} "
                f"(call {call.sid} of attempt {call.attempt_id}; last claimed "
                f"{claimed(last).isoformat(timespec='milliseconds')})"
            )
    return peak, lowered_peak, excess


def _lowered_window(changes: list[LimitChange]) -> tuple[datetime | None, datetime | None]:
    """When the first lowering had certainly committed, until the next change was sent."""
    ordered = sorted(changes, key=lambda c: c.span.sent)
    for i, change in enumerate(ordered):
        if i + 1 < len(ordered):
            begin = change.span.done + timedelta(seconds=CLAIM_READ_S)
            return begin, ordered[i + 1].span.sent
    return None, None


# -- 2. at most one dial per attempt ---------------------------------------------------------


def check_one_dial_per_attempt(evidence: Evidence, campaigns: list[LiveCampaign]) -> Verdict:
    verdict = Verdict("2. no attempt dialed twice (carrier calls per attempt id)")
    ids = {c.id for c in campaigns}
    calls = [c for c in evidence.calls if c.campaign in ids]
    per_attempt: dict[int | None, list[str]] = defaultdict(list)
    for call in calls:
        per_attempt[call.attempt_id].append(call.sid)
    for attempt, sids in sorted(per_attempt.items(), key=lambda kv: kv[0] or 0):
        if attempt is not None and len(sids) > 1:
            verdict.violations.append(f"attempt {attempt}: {len(sids)} calls {sids}")
    if None in per_attempt:
        verdict.violations.append(f"calls with no attempt id in their URL: {per_attempt[None][:5]}")
    stored = {a.provider_call_id for a in evidence.attempts if a.provider_call_id}
    untracked = [c.sid for c in calls if c.sid not in stored]
    seen = {c.sid for c in calls}
    unknown = [
        f"attempt {a.id} {a.status}/{a.outcome} error {a.error_code}: {a.provider_call_id}"
        for a in evidence.attempts
        if a.provider_call_id and a.provider_call_id not in seen
    ]
    per_number = Counter((a.recipient_id, a.attempt_number) for a in evidence.attempts)
    verdict.figures.append(
        f"{len(calls)} carrier calls for {len(per_attempt)} attempts; "
        f"{len(evidence.attempts)} attempt rows; calls the dialer never recorded: "
        f"{len(untracked)} {untracked[:5]}; call ids the carrier never saw: {unknown[:5]}; "
        f"max rows per (recipient, attempt number): {max(per_number.values(), default=0)}"
    )
    return verdict


# -- 3. terminal, with a reason --------------------------------------------------------------


def check_terminal(evidence: Evidence, campaigns: list[LiveCampaign]) -> Verdict:
    verdict = Verdict("3. every recipient terminal, with a reason")
    by_campaign: dict[str, Counter[str]] = defaultdict(Counter)
    for r in evidence.recipients:
        by_campaign[r.campaign][r.status] += 1
        if r.status not in TERMINAL:
            verdict.violations.append(f"recipient {r.id} ({r.number}) still {r.status}")
        elif r.reason is None and r.last_outcome is None:
            verdict.violations.append(f"recipient {r.id} ({r.number}) {r.status} without a reason")
    reasons = Counter(r.reason or f"outcome:{r.last_outcome}" for r in evidence.recipients)
    for campaign in campaigns:
        expected = len(campaign.numbers)
        counted = sum(by_campaign[campaign.id].values())
        if counted != expected:
            verdict.violations.append(f"{campaign.key}: {counted} recipient rows, {expected} sent")
        status = evidence.campaigns[campaign.id].status
        if status != "completed":
            verdict.violations.append(f"{campaign.key}: campaign is {status}, not completed")
        verdict.figures.append(f"{campaign.key}: {dict(by_campaign[campaign.id])}")
    live_attempts = [a.id for a in evidence.attempts if a.status != "ended"]
    if live_attempts:
        verdict.violations.append(f"attempts not ended: {live_attempts[:20]}")
    still_up = [c.sid for c in evidence.calls if c.ended_at is None]
    if still_up:
        verdict.violations.append(f"calls still up at the carrier: {still_up[:10]}")
    verdict.figures.append(f"reasons: {dict(reasons.most_common(12))}")
    return verdict


# -- 4. counters ---------------------------------------------------------------------------


def check_counts(
    evidence: Evidence, campaigns: list[LiveCampaign], drift_lines: list[str]
) -> Verdict:
    verdict = Verdict("4. API counts equal the rows")
    for campaign in campaigns:
        counts: dict[str, Any] = campaign.body.get("counts", {})
        rows = Counter(r.status for r in evidence.recipients if r.campaign == campaign.id)
        ended = Counter(
            a.outcome for a in evidence.attempts if a.campaign == campaign.id and a.outcome
        )
        if counts.get("total") != sum(rows.values()):
            verdict.violations.append(
                f"{campaign.key}: total {counts.get('total')} != {sum(rows.values())} rows"
            )
        for status in (*TERMINAL, "pending", "queued", "in_flight", "waiting_retry"):
            if counts.get(status, 0) != rows.get(status, 0):
                verdict.violations.append(
                    f"{campaign.key}: {status} {counts.get(status)} != {rows.get(status, 0)} rows"
                )
        outcomes: dict[str, int] = counts.get("outcomes", {})
        for outcome in set(outcomes) | set(ended):
            if outcomes.get(outcome, 0) != ended.get(outcome, 0):
                verdict.violations.append(
                    f"{campaign.key}: outcome {outcome} {outcomes.get(outcome, 0)} != "
                    f"{ended.get(outcome, 0)} ended attempts"
                )
        verdict.figures.append(
            f"{campaign.key}: total {counts.get('total')}, outcomes "
            f"{ {k: v for k, v in outcomes.items() if v} }"
        )
    mine = [line for line in drift_lines if any(c.id in line for c in campaigns)]
    if mine:
        verdict.violations.append(f"counters drifted and were repaired during the run: {mine[:5]}")
    return verdict


# -- 5. suppression ------------------------------------------------------------------------


def check_suppression(evidence: Evidence, record: RunRecord) -> Verdict:
    verdict = Verdict("5. no call to a number after its suppression committed")
    by_number = {r.number: r for r in evidence.recipients}
    for s in record.suppressions:
        calls = [c for c in evidence.calls if c.to == s.number]
        # Started (claimed) after the suppression answered: a violation. Claimed before it
        # and created at the carrier after it: a call already under way, left to go out.
        after = [c for c in calls if evidence.claimed_at(c) > s.span.done]
        racing = [c for c in calls if c not in after and c.created_at >= s.span.sent]
        recipient = by_number.get(s.number)
        ended = "?" if recipient is None else f"{recipient.status} ({recipient.reason})"
        verdict.figures.append(
            f"{s.number} (was {s.status_before}): {len(calls)} call(s) in all, now {ended}"
        )
        verdict.violations.extend(
            f"{s.number}: call {c.sid} created {c.created_at.isoformat(timespec='milliseconds')}"
            f", {(c.created_at - s.span.done).total_seconds():.3f}s after the suppression"
            for c in after
        )
        verdict.races.extend(f"{s.number}: {c.sid} during the request" for c in racing)
    return verdict


# -- 6. windows, legal hours and pauses -----------------------------------------------------


def check_windows(evidence: Evidence, campaigns: list[LiveCampaign], record: RunRecord) -> Verdict:
    verdict = Verdict("6. no call outside the campaign's window or the recipient's legal hours")
    known = {(r.campaign, r.number) for r in evidence.recipients}
    zones = {(r.campaign, r.number): r.time_zone for r in evidence.recipients}
    checked = 0
    for campaign in campaigns:
        row = evidence.campaigns[campaign.id]
        pauses = [p for p in record.pauses if p.campaign == campaign.id]
        for call in evidence.calls_of(campaign.id):
            checked += 1
            problem = _outside(
                call,
                (campaign.id, call.to) in known,
                zones.get((campaign.id, call.to)),
                row.schedule_start,
                row.schedule_end,
                row.weekly_schedule,
            )
            if call.to in campaign.night_numbers:
                problem = problem or "a recipient in a zone at night"
            claimed = evidence.claimed_at(call)
            for pause in pauses:
                if pause.paused.done < claimed < pause.resumed.sent:
                    problem = problem or "started while the campaign was paused"
                elif pause.paused.sent <= claimed <= pause.paused.done:
                    verdict.races.append(f"{call.sid} started during the pause request")
                elif pause.paused.done < call.created_at < pause.resumed.sent:
                    gap_s = (call.created_at - pause.paused.done).total_seconds()
                    verdict.races.append(
                        f"{call.sid} started before the pause, at the carrier {gap_s:.3f}s after it"
                    )
            if problem:
                verdict.violations.append(
                    f"{campaign.key}: {call.sid} to {call.to} at "
                    f"{call.created_at.isoformat(timespec='seconds')}: {problem}"
                )
        night = [r for r in evidence.recipients if r.number in campaign.night_numbers]
        if night:
            verdict.figures.append(
                f"{campaign.key}: night-zone recipients ended "
                f"{dict(Counter(f'{r.status}/{r.reason}' for r in night))}"
            )
    verdict.figures.append(f"{checked} calls checked against zone hours, schedules and pauses")
    return verdict


def _outside(
    call: CarrierCall,
    known: bool,
    explicit_zone: str | None,
    start: datetime | None,
    end: datetime | None,
    weekly: dict[str, Any] | None,
) -> str | None:
    at = call.created_at
    # Every zone the number may ring in, and the explicit one with them.
    zones = {*time_zones_for(call.to), *([explicit_zone] if explicit_zone else [])}
    if not known or not zones:
        return "a number of no known recipient (or no zone)"
    for zone in sorted(zones):
        local = at.astimezone(ZoneInfo(zone)).time()
        if not LEGAL_HOURS[0] <= local < LEGAL_HOURS[1]:
            return f"{local.isoformat('minutes')} local in {zone}"
    legal = legal_hours_for(call.to, explicit_zone)
    if isinstance(legal, NotCallable) or not legal.allows(at):
        return "outside the calling rules of the number's place"
    if start is not None and at < start:
        return f"before the schedule's start {start.isoformat()}"
    if end is not None and at > end:
        return f"after the schedule's end {end.isoformat()}"
    if weekly is not None and not _in_weekly_hours(at, weekly):
        return "outside the weekly hours"
    return None


def _in_weekly_hours(at: datetime, weekly: dict[str, Any]) -> bool:
    """Same-day intervals only, as the run writes them."""
    local = at.astimezone(ZoneInfo(weekly["timezone"]))
    day, clock = _DAYS[local.weekday()], local.time()
    return any(
        day in h["days"] and time.fromisoformat(h["start"]) <= clock < time.fromisoformat(h["end"])
        for h in weekly["hours"]
    )


# -- 7. the fleet survives ----------------------------------------------------------------


def check_processes(record: RunRecord) -> Verdict:
    """A fault the fleet is built to ride out (a Redis or PostgreSQL restart, a dead peer)
    must not take a process down with it: one that exits by itself, with status 0 even,
    would not be restarted by a supervisor that restarts on failure."""
    verdict = Verdict("7. no process of the fleet exits by itself")
    verdict.violations.extend(record.unexpected_exits)
    verdict.figures.append(f"{len(record.unexpected_exits)} unexpected exit(s)")
    return verdict


# -- 8. no task lost without a fault ------------------------------------------------------


def check_outbox(resent: list[tuple[datetime | None, int]], record: RunRecord) -> Verdict:
    """Before the first fault nothing is lost, so the outbox has nothing to send again: a
    re-send there is a dial task the fleet itself took for lost (the spurious kind)."""
    verdict = Verdict("8. the outbox re-sends nothing before the first fault")
    first = min((f.began for f in record.faults), default=None)
    early = [(at, n) for at, n in resent if first is None or (at is not None and at < first)]
    verdict.violations.extend(f"{n} task(s) re-sent at {at}" for at, n in early)
    verdict.figures.append(
        f"{sum(n for _, n in resent)} task(s) re-sent in the whole run, "
        f"{sum(n for _, n in early)} before the first fault"
    )
    return verdict
