"""A campaign's launch preview: who is callable now, who waits and why, who will be turned
away, and when it would finish, without dialing or writing anything.

The screen (:func:`~dialer.policy.screen.screen`) is evaluated as of ``now`` as if the campaign
were running (a draft or a paused one included), over groups of recipients rather than every
row: the recipients still to call are grouped in SQL by what the screen reads of them (status,
stored reason, explicit zone, the number's prefix, which fixes the zones it may ring in,
whether it is on the do-not-call list, attempts made in this run) and one representative of
each group is screened. The completion time comes from :mod:`dialer.policy.estimate`, fed
with each group's window (the campaign's hours and the group's legal hours), the campaign's
slots and pace, its retry policy, and call lengths and answer rate from its own ended
attempts when it has enough of them (:data:`HISTORY_MIN_ATTEMPTS`), the documented defaults
otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dialer.calls import counters, facts
from dialer.calls.statements import consented_number
from dialer.db.models import CallAttempt, Campaign, Recipient, Suppression, Tenant
from dialer.policy.attempt_state import CLAIMABLE_RECIPIENT, Outcome, RecipientStatus
from dialer.policy.calling_hours import NotCallable, legal_hours_for, recipient_window
from dialer.policy.campaign_state import CampaignStatus
from dialer.policy.estimate import CallProfile, Cohort, Pace, estimate
from dialer.policy.legal_hours import LegalHours
from dialer.policy.retry import RetryPolicy
from dialer.policy.screen import (
    CallNow,
    CampaignFacts,
    Deferred,
    RecipientFacts,
    Terminal,
    screen_campaign,
    screen_recipient,
)
from dialer.policy.windows import AllOf
from dialer.services import campaigns

#: Ended attempts (dialed, not canceled) a campaign needs before its own call lengths and
#: answer rate replace the defaults.
HISTORY_MIN_ATTEMPTS = 20
#: The most recent ended attempts read for that.
HISTORY_ATTEMPTS = 2_000
#: Characters of an E.164 number that fix the zones it may ring in, for grouping: ``+1`` and
#: a North American area code and exchange, or a country code and the leading digits.
PREFIX_CHARS = 8
#: Why a recipient due to retry later waits, when it carries no reason of its own.
RETRY_SCHEDULED = "retry-scheduled"
#: Outcomes that end a recipient (an answer): the rest are retried as the policy says.
_ANSWERED = (Outcome.HUMAN, Outcome.VOICEMAIL)


@dataclass(slots=True)
class Waiting:
    """Recipients deferred for one reason, and the earliest and latest they are due again
    (None: once the campaign may call again)."""

    count: int = 0
    earliest: datetime | None = None
    latest: datetime | None = None

    def add(self, count: int, earliest: datetime | None, latest: datetime | None) -> None:
        self.count += count
        if earliest is not None:
            self.earliest = earliest if self.earliest is None else min(self.earliest, earliest)
        if latest is not None:
            self.latest = latest if self.latest is None else max(self.latest, latest)


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What the estimate assumed, and where it came from (``history`` or ``defaults``)."""

    profile: CallProfile
    source: str
    ended_attempts: int
    max_concurrency: int
    cps: float
    max_attempts: int


@dataclass(slots=True)
class Preview:
    as_of: datetime
    status: CampaignStatus
    total: int = 0
    callable_now: int = 0
    deferred: dict[str, Waiting] = field(default_factory=dict)
    #: Recipients the screen would end now, by (status, reason).
    turned_away: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Recipients already in a terminal state, by status.
    ended: dict[str, int] = field(default_factory=dict)
    in_progress: int = 0
    completes_at: datetime | None = None
    expected_calls: float = 0.0
    #: Recipients left out of the estimate: deferred with no time to be due again.
    not_estimated: int = 0
    assumptions: Assumptions | None = None

    def as_dict(self) -> dict[str, Any]:
        """The preview as JSON values (the API's and the CLI's shape)."""
        assert self.assumptions is not None
        a = self.assumptions
        return {
            "as_of": _iso(self.as_of),
            "status": self.status.value,
            "evaluated_as": CampaignStatus.RUNNING.value
            if self.status is not CampaignStatus.COMPLETED
            else self.status.value,
            "recipients": self.total,
            "callable_now": self.callable_now,
            "deferred": [
                {
                    "reason": reason,
                    "count": w.count,
                    "earliest_until": _iso(w.earliest),
                    "latest_until": _iso(w.latest),
                }
                for reason, w in sorted(self.deferred.items())
            ],
            "turned_away": [
                {"status": status, "reason": reason, "count": count}
                for (status, reason), count in sorted(self.turned_away.items())
            ],
            "ended": dict(sorted(self.ended.items())),
            "in_progress": self.in_progress,
            "estimate": {
                "completes_at": _iso(self.completes_at),
                "duration_s": None
                if self.completes_at is None
                else round((self.completes_at - self.as_of).total_seconds()),
                "expected_calls": round(self.expected_calls),
                "not_estimated": self.not_estimated,
                "assumptions": {
                    "source": a.source,
                    "ended_attempts": a.ended_attempts,
                    "answered_call_s": round(a.profile.answered_s, 1),
                    "unanswered_call_s": round(a.profile.unanswered_s, 1),
                    "answer_rate": round(a.profile.answer_rate, 3),
                    "max_concurrency": a.max_concurrency,
                    "calls_per_second": a.cps,
                    "max_attempts": a.max_attempts,
                },
            },
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def preview(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    now: datetime,
    *,
    account_cps: float,
    defaults: CallProfile | None = None,
) -> Preview:
    """The tenant's campaign previewed at ``now`` (see the module docstring); reads only.
    ``account_cps``: the provider account's calls per second; ``defaults``: the call profile
    assumed without enough history."""
    campaign = campaigns.get(session, tenant_id, campaign_id)
    tenant = session.get_one(Tenant, campaign.tenant_id)
    window = facts.window_of(campaign)
    about = CampaignFacts(
        status=CampaignStatus.RUNNING
        if campaign.status is not CampaignStatus.COMPLETED
        else campaign.status,
        ended_reason=campaign.ended_reason,
        window=window,
        schedule_end=campaign.schedule_end_time,
        require_consent=campaign.require_consent,
    )
    out = Preview(as_of=now, status=campaign.status)
    counts = counters.read(session, [campaign.id])[campaign.id]
    for status in RecipientStatus:
        n = counts[counters.recipient_key(status)]
        out.total += n
        if status in (RecipientStatus.QUEUED, RecipientStatus.IN_FLIGHT):
            out.in_progress += n
        elif status not in CLAIMABLE_RECIPIENT and n:
            out.ended[status.value] = n
    gate = screen_campaign(about, now)
    cohorts: list[Cohort] = []
    windows: dict[LegalHours, AllOf] = {}
    for group in _groups(session, campaign, now):
        decision = gate
        if not isinstance(gate, Terminal):
            # The recipient's own screen; outside the campaign's hours only its terminal
            # decisions (do-not-call, no known zone) override the campaign's deferral.
            recipient = RecipientFacts(
                group.phone_number,
                group.time_zone,
                group.suppressed,
                has_consent=group.consented,
                region=group.region,
            )
            screened = screen_recipient(recipient, about, now)
            if isinstance(screened, Terminal) or isinstance(gate, CallNow):
                decision = screened
        if isinstance(decision, Terminal):
            out.turned_away[(decision.status.value, str(decision.reason))] += group.count
            continue
        ready = max(now, group.earliest)
        if group.earliest > now:
            reason = group.reason or RETRY_SCHEDULED
            out.deferred.setdefault(reason, Waiting()).add(
                group.count, group.earliest, group.latest
            )
        elif isinstance(decision, Deferred):
            reason = str(decision.reason)
            out.deferred.setdefault(reason, Waiting()).add(
                group.count, decision.until, decision.until
            )
            if decision.until is None:
                out.not_estimated += group.count
                continue
            ready = max(ready, decision.until)
        else:
            out.callable_now += group.count
        legal = legal_hours_for(group.phone_number, group.time_zone, region=group.region)
        assert not isinstance(legal, NotCallable)  # the screen ended those
        if legal not in windows:  # the same zones under the same places' rules
            windows[legal] = recipient_window(window, legal)
        cohorts.append(Cohort(group.count, windows[legal], ready, group.run_attempts))
    profile, source, ended_attempts = _profile(session, campaign.id, defaults or CallProfile())
    policy = RetryPolicy.model_validate(campaign.retry_policy)
    pace = Pace(
        max_concurrency=min(campaign.max_concurrency, tenant.max_concurrency or 10**9),
        cps=min(account_cps, tenant.max_cps or account_cps),
    )
    out.assumptions = Assumptions(
        profile, source, ended_attempts, pace.max_concurrency, pace.cps, policy.max_attempts
    )
    if isinstance(gate, Terminal):
        return out
    result = estimate(cohorts, pace, profile, policy, now, in_flight=float(out.in_progress))
    out.completes_at = result.completes_at
    out.expected_calls = result.calls
    return out


@dataclass(frozen=True, slots=True)
class _Group:
    """Recipients still to call that the screen sees alike, and one of their numbers."""

    count: int
    reason: str | None
    time_zone: str | None
    region: str | None
    suppressed: bool
    run_attempts: int
    earliest: datetime
    latest: datetime
    phone_number: str
    #: Whether the numbers have a consent record now (read only when the campaign requires
    #: consent; True otherwise).
    consented: bool = True


def _groups(session: Session, campaign: Campaign, now: datetime) -> list[_Group]:
    """The campaign's pending and due-to-retry recipients, grouped in one query."""
    suppressed = Suppression.id.is_not(None)
    # Grouped by whether the number has a consent record only when the campaign asks for one.
    consented: sa.ColumnElement[bool] = (
        consented_number(campaign.tenant_id, Recipient, now).element
        if campaign.require_consent
        else sa.true()
    )
    keys: list[sa.ColumnElement[Any]] = [consented] if campaign.require_consent else []
    prefix = sa.func.substr(Recipient.phone_number, 1, PREFIX_CHARS)
    stmt = (
        sa.select(
            sa.func.count(),
            Recipient.reason,
            Recipient.time_zone,
            Recipient.region,
            suppressed,
            Recipient.run_attempts,
            sa.func.min(Recipient.next_attempt_at),
            sa.func.max(Recipient.next_attempt_at),
            sa.func.min(Recipient.phone_number),
            consented,
        )
        .select_from(Recipient)
        .outerjoin(
            Suppression,
            sa.and_(
                Suppression.tenant_id == campaign.tenant_id,
                Suppression.phone_number == Recipient.phone_number,
            ),
        )
        .where(
            Recipient.campaign_id == campaign.id,
            Recipient.status.in_(sorted(CLAIMABLE_RECIPIENT)),
        )
        .group_by(
            Recipient.reason,
            Recipient.time_zone,
            Recipient.region,
            suppressed,
            Recipient.run_attempts,
            prefix,
            *keys,
        )
    )
    return [
        _Group(
            int(n), reason, tz, region, bool(blocked), int(runs), first, last, number, bool(given)
        )
        for n, reason, tz, region, blocked, runs, first, last, number, given in session.execute(
            stmt
        )
    ]


def _profile(
    session: Session, campaign_id: str, defaults: CallProfile
) -> tuple[CallProfile, str, int]:
    """Call lengths (dial to end) and answer rate from the campaign's latest ended attempts,
    when it has :data:`HISTORY_MIN_ATTEMPTS` of them; else ``defaults``."""
    rows = session.execute(
        sa.select(CallAttempt.outcome, CallAttempt.dialed_at, CallAttempt.ended_at)
        .where(
            CallAttempt.campaign_id == campaign_id,
            CallAttempt.ended_at.is_not(None),
            CallAttempt.dialed_at.is_not(None),
            CallAttempt.outcome.is_not(None),
            CallAttempt.outcome != Outcome.CANCELED,
        )
        .order_by(CallAttempt.id.desc())
        .limit(HISTORY_ATTEMPTS)
    ).all()
    if len(rows) < HISTORY_MIN_ATTEMPTS:
        return defaults, "defaults", len(rows)
    lengths = [(o, (end - dial).total_seconds()) for o, dial, end in rows if dial and end]
    answered = [length for o, length in lengths if o in _ANSWERED]
    unanswered = [length for o, length in lengths if o not in _ANSWERED]
    profile = CallProfile(
        answered_s=sum(answered) / len(answered) if answered else defaults.answered_s,
        unanswered_s=sum(unanswered) / len(unanswered) if unanswered else defaults.unanswered_s,
        answer_rate=len(answered) / len(rows),
    )
    return profile, "history", len(rows)
