"""What the ``dialer campaign`` commands do (:mod:`dialer.operator.campaigns` declares
them): each opens the database for the tenant, calls the services the API calls, and prints.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from dialer.api import views
from dialer.api.schemas.campaigns import CampaignOut
from dialer.api.schemas.history import HistoryEntryOut
from dialer.api.schemas.waits import WaitingOut
from dialer.clock import utc_now
from dialer.concurrency.connection import open_redis
from dialer.concurrency.slots import CallSlots
from dialer.concurrency.stores import open_stores
from dialer.db.models import Campaign
from dialer.errors import ValidationError
from dialer.operator import output
from dialer.operator.output import Section
from dialer.operator.session import INTERRUPTED, REFUSED, USAGE, fail, operating
from dialer.operator.watching import watch as follow
from dialer.phone import DEFAULT_REGION, region_code
from dialer.policy.campaign_state import CampaignAction, CampaignStatus
from dialer.policy.waits import SlotSource
from dialer.services import (
    campaign_import,
    campaign_overview,
    campaign_waits,
    campaigns,
    history,
)
from dialer.services.campaign_overview import Overview
from dialer.services.export import ExportFormat, export_text
from dialer.services.recipient_lists import REJECTED_COLUMNS
from dialer.services.recipients import Rejection
from dialer.settings import Settings

#: Rejected rows listed on stderr by ``import`` when they are not written to a file.
SHOWN_REJECTIONS = 10


# -- list, show ----------------------------------------------------------------------------


def list_campaigns(user_id: str, status: str | None, limit: int, as_json: bool) -> None:
    wanted = _status(status)
    with operating(user_id) as op:

        def read(session: Session) -> list[Any]:
            stmt = sa.select(Campaign).where(Campaign.tenant_id == op.tenant_id)
            if wanted is not None:
                stmt = stmt.where(Campaign.status == wanted)
            stmt = stmt.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit)
            return views.campaigns(session, list(session.scalars(stmt)))

        found = op.read(read)
    if as_json:
        output.print_json([c.model_dump(mode="json") for c in found])
        return
    out = output.console()
    now = utc_now()
    rows = [
        [
            c.id,
            escape(c.name),
            output.status_text(c.status),
            str(c.counts.total),
            output.nonzero(_states(c.counts.model_dump()), sep=" " if out.is_terminal else "="),
            output.relative(c.created_at, now) if out.is_terminal else c.created_at.isoformat(),
        ]
        for c in found
    ]
    columns = ["id", "name", "status", "recipients", "by state", "created"]
    output.print_table(
        out, columns, rows, title=f"{len(rows)} campaigns of {user_id}", wrap=("name", "by state")
    )


def _status(text: str | None) -> CampaignStatus | None:
    if text is None:
        return None
    try:
        return CampaignStatus(text)
    except ValueError:
        choices = ", ".join(s.value for s in CampaignStatus)
        fail(f"--status: must be one of {choices}, not {text!r}", USAGE)


def _states(counts: dict[str, Any]) -> dict[str, int]:
    return {s.value: int(counts[s.value]) for s in output.STATES}


def show(campaign_id: str, user_id: str, as_json: bool) -> None:
    now = utc_now()
    with operating(user_id) as op, shared_slots(op.settings) as slots:

        def read(session: Session) -> tuple[CampaignOut, Overview, WaitingOut]:
            campaign = campaigns.get(session, op.tenant_id, campaign_id)
            return (
                views.campaign(session, campaign),
                campaign_overview.overview(session, campaign, now),
                WaitingOut.of(campaign_waits.waits(session, campaign, now, slots)),
            )

        body, overview, waiting = op.read(read)
    if as_json:
        output.print_json(
            {
                "campaign": body.model_dump(mode="json"),
                **overview.as_dict(),
                "slots": waiting.slots.model_dump(mode="json"),
                "waiting": waiting.model_dump(mode="json", exclude={"slots"}),
            }
        )
        return
    out = output.console()
    sections = show_sections(body, overview, waiting, now, terminal=out.is_terminal)
    output.print_sections(out, sections)


def show_sections(
    body: CampaignOut,
    overview: Overview,
    waiting: WaitingOut,
    now: datetime,
    *,
    terminal: bool,
) -> list[Section]:
    """What ``show`` prints, a section each: the campaign, its recipients, its calls, why the
    recipients not on a call wait, its schedule, its runs."""

    def at(moment: datetime | None) -> str:
        return output.when(moment, now, terminal=terminal)

    reason = f" ({body.ended_reason})" if body.ended_reason else ""
    about = Section("campaign")
    about.add("id", body.id)
    about.add("name", escape(body.name))
    about.add("status", output.status_text(body.status) + escape(reason))
    about.add("caller", body.caller_id_number or body.phone_number_id)
    if body.recipient_list_name:
        about.add("list", escape(body.recipient_list_name))
    about.add("created", at(body.created_at))
    about.add("updated", at(body.updated_at))
    counts = body.counts.model_dump()
    recipients = Section("recipients")
    recipients.add("total", counts["total"])
    for state in output.STATES:
        n = counts[state.value]
        recipients.add(state.value, f"[{output.state_style(state)}]{n}[/]" if n else n)
    recipients.add("calls by outcome", output.nonzero(counts["outcomes"]))
    calls = Section("calls")
    slots = waiting.slots
    counted = "" if slots.source == SlotSource.SEMAPHORE else " (counted from the database)"
    calls.add("slots in use", f"{slots.in_use} / {slots.max_concurrency}{counted}")
    calls.add("in flight (database)", overview.calls_in_flight)
    waits = waiting_section(waiting, at)
    schedule = Section("schedule")
    schedule.add("due now", overview.due_now)
    schedule.add("next due", at(overview.next_due_at))
    window = overview.window
    if window.open:
        schedule.add("window", "[green]open[/]")
    elif window.next_open is None:
        schedule.add("window", "[red]closed[/] (no opening left in its schedule)")
    else:
        schedule.add("window", f"[yellow]closed[/], opens {at(window.next_open)}")
    schedule.add("schedule ends", at(window.schedule_end))
    runs = Section(f"runs ({overview.run_count})")
    for run in overview.runs:
        ended = f"ended {at(run.ended_at)} {run.ended_reason or ''}" if run.ended_at else "running"
        runs.add(f"run {run.number}", f"started {at(run.started_at)}, {ended}".rstrip())
    return [about, recipients, calls, waits, schedule, runs]


def waiting_section(waiting: WaitingOut, at: Callable[[datetime | None], str]) -> Section:
    """Why the recipients not on a call wait (``GET /campaign/{id}``'s ``waiting``)."""
    section = Section("waiting")
    if waiting.calling:
        section.add("calling", "[green]yes[/]")
    else:
        opens = f", opens {at(waiting.opens_at)}" if waiting.opens_at else ""
        section.add("calling", f"[yellow]no[/]: {waiting.held_by}{opens}")
    section.add("free slots", waiting.slots.free)
    section.add("due, for a slot", waiting.due)
    window = waiting.window
    section.add(
        "for a window",
        f"{window.count} (campaign window {window.campaign_window}, legal hours "
        f"{window.legal_hours}), next opens {at(window.next_open)}"
        if window.count
        else 0,
    )
    cap = waiting.frequency_cap
    section.add(
        "for a frequency cap",
        f"{cap.count} ({', '.join(f'{k} {v}' for k, v in sorted(cap.reasons.items()))}), "
        f"next {at(cap.next_at)}"
        if cap.count
        else 0,
    )
    for name, bucket in (
        ("for a retry", waiting.retry),
        ("for the pacer", waiting.pacer),
        ("provider back-off", waiting.provider_backoff),
    ):
        section.add(name, f"{bucket.count}, next {at(bucket.next_at)}" if bucket.count else 0)
    section.add("handed to a worker", waiting.starting)
    return section


@contextlib.contextmanager
def shared_slots(settings: Settings) -> Iterator[CallSlots | None]:
    """The semaphore's slots every process of the fleet shares (Redis), or None embedded: the
    semaphore then lives in the scheduler process's memory, and the database's calls in flight
    are counted instead (:func:`dialer.services.campaign_waits.waits`)."""
    if settings.embedded:
        yield None
        return
    client = open_redis(settings)
    try:
        yield open_stores(settings, client).slots
    finally:
        client.close()


# -- watch ---------------------------------------------------------------------------------


def watch(campaign_id: str, user_id: str, interval: float, timeout: float | None) -> None:
    with operating(user_id) as op:
        try:
            last = follow(op, campaign_id, output.console(), interval_s=interval, timeout_s=timeout)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED) from None
    typer.echo(last.summary(campaign_id))
    if not last.completed:
        fail(f"campaign {campaign_id} is still {last.status} after {timeout:g} s", REFUSED)


# -- import --------------------------------------------------------------------------------


def import_csv(
    campaign_id: str,
    file: Path,
    user_id: str,
    rejected_out: Path | None,
    default_region: str = DEFAULT_REGION,
) -> None:
    try:
        region = region_code(default_region, field="--default-region")
    except ValidationError as exc:
        fail(str(exc), USAGE)
    source = _open_input(file)
    shown: list[Rejection] = []
    read = 0  # rows of the chunks committed so far

    def progressed(rows: int) -> None:
        nonlocal read
        read += rows
        bar.advance(task, rows)

    with contextlib.ExitStack() as stack:
        stack.callback(source.close)
        writer = None
        if rejected_out is not None:
            # Rows of committed chunks stay added if a later one fails: so do their rejections.
            target = _atomic_file(rejected_out, keep_on_failure=lambda: read > 0)
            writer = csv.writer(stack.enter_context(target))
            writer.writerow(REJECTED_COLUMNS)

        def rejected(rejection: Rejection) -> None:
            if writer is not None:
                writer.writerow((rejection.row, rejection.phone_number or "", rejection.reason))
            elif len(shown) < SHOWN_REJECTIONS:
                shown.append(rejection)

        out = output.console()
        bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            console=out,
            disable=not out.is_terminal,
            transient=True,
        )
        task = bar.add_task("rows", total=_estimated_rows(file))
        try:
            with operating(user_id) as op, bar:
                report = campaign_import.add_csv(
                    op.sessions,
                    op.tenant_id,
                    campaign_id,
                    source,
                    clock=utc_now,
                    on_rejected=rejected,
                    on_progress=progressed,
                    region=region,
                )
        except typer.Exit:
            if read:
                kept = f", those rejected are in {rejected_out}" if writer else ""
                typer.echo(
                    f"the first {read} rows were taken in before that: those accepted stay "
                    f"in the campaign{kept}",
                    err=True,
                )
            raise
    reasons = f" ({output.nonzero(dict(report.reasons))})" if report.rejected else ""
    typer.echo(
        f"campaign {campaign_id}: {report.accepted} of {report.rows_read} rows added, "
        f"{report.rejected} rejected{reasons}"
    )
    for rejection in shown:
        number = rejection.phone_number or "-"
        typer.echo(f"  line {rejection.row}: {number} {rejection.reason}", err=True)
    if report.rejected > len(shown) and rejected_out is None:
        typer.echo(
            f"  ... {report.rejected - len(shown)} more; --rejected-out FILE writes them all",
            err=True,
        )
    if rejected_out is not None and report.rejected:
        typer.echo(f"rejected rows written to {rejected_out}")
    if report.accepted == 0:
        fail("no row was accepted", REFUSED)


def _open_input(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}", USAGE)


@contextlib.contextmanager
def _atomic_file(
    path: Path, keep_on_failure: Callable[[], bool] = lambda: False
) -> Iterator[IO[str]]:
    """``path`` for writing, as a file beside it that replaces ``path`` once the block ends
    normally: a command that fails leaves no half-written file behind, unless
    ``keep_on_failure`` says what it holds by then is worth having."""
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}", USAGE)
    handle = os.fdopen(fd, "w", newline="", encoding="utf-8")
    try:
        yield handle
        handle.close()
        os.replace(temporary, path)
    except BaseException:
        handle.close()
        if keep_on_failure():
            os.replace(temporary, path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise


def _estimated_rows(path: Path) -> int | None:
    """Lines in the file less its header: the progress bar's total (a quoted field may span
    lines, so it is an estimate)."""
    try:
        with path.open("rb") as stream:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    except OSError:
        return None
    return max(lines - 1, 1)


# -- start, pause, stop --------------------------------------------------------------------


def act(user_id: str, campaign_id: str, action: CampaignAction, *, hang_up: bool = False) -> None:
    with operating(user_id) as op:

        def act(session: Session) -> tuple[str, str | None]:
            options = {"hang_up": hang_up} if action is CampaignAction.STOP else None
            campaign = campaigns.act(
                session,
                op.tenant_id,
                campaign_id,
                action,
                now=utc_now(),
                actor=history.OPERATOR,
                options=options,
            )
            reason = campaign.ended_reason.value if campaign.ended_reason else None
            return campaign.status.value, reason

        status, reason = op.write(act)
        settings = op.settings
    typer.echo(f"campaign {campaign_id}: {status}" + (f" ({reason})" if reason else ""))
    if status == CampaignStatus.RUNNING.value and not settings.embedded:
        _ask_dispatch(settings, campaign_id)
    if hang_up:
        _hang_up(settings, campaign_id)


def _hang_up(settings: Settings, campaign_id: str) -> None:
    """End the stopped campaign's calls in flight through the provider, as the API's stop with
    ``hang_up`` does (:mod:`dialer.calls.hanging_up`): each answer is recorded as the call's
    own end would be, which frees its slot. Exit 1 when a call could not be hung up."""
    from dialer.runtime import api_runtime

    runtime = api_runtime(settings)
    try:
        report = runtime.hang_up_campaign(campaign_id)
    finally:
        runtime.close()
    typer.echo(
        f"hung up {report.asked - len(report.failed)} of {report.asked} calls in flight"
        + (f"; {report.unplaced} dials still without a call id" if report.unplaced else "")
    )
    if report.failed:
        fail(
            f"{len(report.failed)} calls could not be hung up (attempts "
            f"{', '.join(map(str, report.failed))}); they end on their own",
            REFUSED,
        )


def _ask_dispatch(settings: Settings, campaign_id: str) -> None:
    """Ask the workers for a dispatch of a campaign just started or resumed, as the API's
    start does, so its first calls go out now. Best effort: should the broker be out of
    reach, the scheduler's next tick dispatches it all the same. (Embedded, only the
    scheduler process dispatches: its next tick does.)"""
    from dialer.queue.celery import CeleryQueue, create_celery  # Celery: distributed only

    client = open_redis(settings)
    sender = create_celery(settings)
    try:
        CeleryQueue(sender, client).dispatch(campaign_id)
    except Exception as exc:  # the campaign is started whatever the broker says
        typer.echo(
            f"warning: could not ask the workers for a dispatch ({exc}); the scheduler's next "
            "tick dispatches the campaign",
            err=True,
        )
    finally:
        sender.close()
        client.close()


# -- history -------------------------------------------------------------------------------


def show_history(
    campaign_id: str, user_id: str, limit: int, oldest_first: bool, as_json: bool
) -> None:
    with operating(user_id) as op:
        entries = op.read(
            lambda session: [
                HistoryEntryOut.model_validate(row)
                for row in history.page(
                    session,
                    op.tenant_id,
                    campaign_id,
                    newest_first=not oldest_first,
                    after_id=None,
                    limit=limit,
                )
            ]
        )
    if as_json:
        output.print_json([e.model_dump(mode="json") for e in entries])
        return
    out = output.console()
    now = utc_now()
    rows = [
        [
            output.when(e.at, now, terminal=out.is_terminal),
            escape(e.actor if e.api_key_prefix is None else f"{e.actor} {e.api_key_prefix}"),
            e.kind,
            escape(describe(e.details)),
        ]
        for e in entries
    ]
    order = "oldest" if oldest_first else "newest"
    output.print_table(
        out,
        ["at", "by", "kind", "what"],
        rows,
        title=f"history of campaign {campaign_id} ({order} first)",
        wrap=("what",),
    )


def describe(details: dict[str, Any]) -> str:
    """One line for a history entry's details: ``field: old -> new`` for each field changed,
    ``key=value`` for the rest."""
    if "changes" in details:
        return ", ".join(
            f"{name}: {_value(change['old'])} -> {_value(change['new'])}"
            for name, change in details["changes"].items()
        )
    if "fields" in details:
        details = {k: v for k, v in details.items() if k != "fields"}
    return " ".join(f"{key}={_value(value)}" for key, value in details.items())


def _value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"length", "sha256"}:
        return f"<{value['length']} chars, sha256 {value['sha256'][:12]}>"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


# -- export --------------------------------------------------------------------------------


def export(
    campaign_id: str,
    user_id: str,
    export_format: str,
    output_path: Path | None,
    unmask_numbers: bool,
) -> None:
    try:
        chosen = ExportFormat(export_format)
    except ValueError:
        choices = " or ".join(f.value for f in ExportFormat)
        fail(f"--format: must be {choices}, not {export_format!r}", USAGE)
    with operating(user_id) as op, contextlib.ExitStack() as stack:
        op.read(lambda session: campaigns.get(session, op.tenant_id, campaign_id))
        target = stack.enter_context(_atomic_file(output_path)) if output_path else sys.stdout
        rows = 0

        def count(n: int) -> None:
            nonlocal rows
            rows += n

        for text in export_text(
            op.sessions, campaign_id, chosen, unmask_numbers=unmask_numbers, on_rows=count
        ):
            target.write(text)
        target.flush()
    if output_path is not None:
        typer.echo(f"{rows} attempts of campaign {campaign_id} written to {output_path}")
