"""What ``dialer campaign timeline`` and ``dialer campaign preview`` do: read through the
services the API calls, and print."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dialer.clock import utc_now
from dialer.operator import output
from dialer.operator.session import operating
from dialer.services import preview as previewing
from dialer.services import timeline

#: Decisions read at a time.
_PAGE = 500


def show_timeline(campaign_id: str, recipient_id: int, user_id: str, as_json: bool) -> None:
    with operating(user_id) as op:

        def read(session: Session) -> list[timeline.Decision]:
            decisions: list[timeline.Decision] = []
            while True:
                after = decisions[-1].id if decisions else 0
                page = timeline.page(
                    session, op.tenant_id, campaign_id, recipient_id, after=after, limit=_PAGE
                )
                decisions.extend(page)
                if len(page) < _PAGE:
                    return decisions

        decisions = op.read(read)
    if as_json:
        output.print_json([_decision(d) for d in decisions])
        return
    rows = [
        [
            d.at.isoformat(),
            d.kind,
            d.reason or "",
            d.until.isoformat() if d.until else "",
            "" if d.attempt_id is None else str(d.attempt_id),
            _facts(d.facts),
        ]
        for d in decisions
    ]
    output.print_table(
        output.console(),
        ["at", "kind", "reason", "until", "attempt", "facts"],
        rows,
        title=f"recipient {recipient_id} of campaign {campaign_id}: {len(rows)} decisions",
        wrap=("facts",),
    )


def _decision(d: timeline.Decision) -> dict[str, Any]:
    return {
        "id": d.id,
        "at": d.at.isoformat(),
        "kind": d.kind,
        "reason": d.reason,
        "until": d.until.isoformat() if d.until else None,
        "attempt_id": d.attempt_id,
        "facts": d.facts,
    }


def _facts(facts: dict[str, Any]) -> str:
    """The facts on one line: each zone checked with its local wall time, then the rest."""
    parts = [f"{z['zone']} {z['local_time'][11:16]}" for z in facts.get("zones", []) if "zone" in z]
    parts += [f"{k}={v}" for k, v in facts.items() if k != "zones" and v is not None]
    return ", ".join(parts)


def show_preview(campaign_id: str, user_id: str, as_json: bool) -> None:
    now = utc_now()
    with operating(user_id) as op:
        cps = op.settings.calls_per_second
        found = op.read(
            lambda session: previewing.preview(
                session, op.tenant_id, campaign_id, now, account_cps=cps
            )
        )
    body = found.as_dict()
    if as_json:
        output.print_json(body)
        return
    estimate = body["estimate"]
    assumed = estimate["assumptions"]
    lines = [
        f"campaign {campaign_id} ({body['status']}), as if running at {body['as_of']}",
        f"recipients      {body['recipients']}",
        f"callable now    {body['callable_now']}",
        f"in progress     {body['in_progress']}",
    ]
    lines += [
        f"deferred        {d['count']} {d['reason']} (until {d['earliest_until']} .. "
        f"{d['latest_until']})"
        for d in body["deferred"]
    ]
    lines += [f"will be {t['status']:<9}{t['count']} {t['reason']}" for t in body["turned_away"]]
    lines += [f"already {status:<9}{n}" for status, n in body["ended"].items()]
    lines += [
        f"completes at    {estimate['completes_at'] or 'not within the horizon'}"
        + (f" (in {estimate['duration_s']} s)" if estimate["duration_s"] is not None else ""),
        f"expected calls  {estimate['expected_calls']}",
        f"assuming        {assumed['source']}: answered {assumed['answered_call_s']} s, "
        f"unanswered {assumed['unanswered_call_s']} s, answer rate {assumed['answer_rate']}, "
        f"{assumed['max_concurrency']} at once, {assumed['calls_per_second']} calls/s, "
        f"{assumed['max_attempts']} attempts at most",
    ]
    for line in lines:
        output.console().print(line, markup=False, highlight=False)
