"""``dialer campaign``: list, show, watch, import, start, pause, stop, history, export and
preview a tenant's campaigns and show a recipient's timeline, straight on the database,
through the services the API calls.

Every command acts for the tenant ``--user-id`` names: another tenant's campaign is "not
found", as over the API. This module only declares the commands (it is imported whenever
``dialer`` starts, so it stays light); :mod:`dialer.operator.commands` carries them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dialer.policy.campaign_state import CampaignAction

campaign_app = typer.Typer(
    help="Operate a tenant's campaigns from the command line.", no_args_is_help=True
)

UserId = Annotated[
    str, typer.Option("--user-id", help="The tenant's X-User-ID: only its campaigns.")
]
CampaignId = Annotated[str, typer.Argument(help="The campaign's id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (the API's campaign shape).")]


@campaign_app.command("list")
def list_campaigns(
    user_id: UserId,
    status: Annotated[
        str | None,
        typer.Option(help="Only campaigns in this status: draft, running, paused, completed."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Newest first, at most this many.")
    ] = 100,
    as_json: AsJson = False,
) -> None:
    """The tenant's campaigns, newest first: status, recipients by state, created."""
    from dialer.operator import commands

    commands.list_campaigns(user_id, status, limit, as_json)


@campaign_app.command("show")
def show(campaign_id: CampaignId, user_id: UserId, as_json: AsJson = False) -> None:
    """One campaign: counts, slots, why it waits, schedule and runs.

    Recipients by state and calls by outcome, the slots in use against its limit, how many
    recipients wait for a slot, a window (and when it opens), a retry or the pacer, when its
    next recipient is due and whether its calling window is open, and its runs.
    """
    from dialer.operator import commands

    commands.show(campaign_id, user_id, as_json)


@campaign_app.command("watch")
def watch(
    campaign_id: CampaignId,
    user_id: UserId,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between reads.")] = 2.0,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Give up (exit 1) after this many seconds.")
    ] = None,
) -> None:
    """Follow the campaign's recipients by state until it completes.

    Live progress bars on a terminal, one line per change otherwise; it ends when the
    campaign completes (or is stopped). Ctrl-C exits 130.
    """
    from dialer.operator import commands

    commands.watch(campaign_id, user_id, interval, timeout)


@campaign_app.command("import")
def import_csv(
    campaign_id: CampaignId,
    file: Annotated[
        Path,
        typer.Argument(
            help="A CSV with a phone_number column; its other columns become each "
            "recipient's metadata."
        ),
    ],
    user_id: UserId,
    rejected_out: Annotated[
        Path | None,
        typer.Option(help="Write the rejected rows, each with why, to this CSV file."),
    ] = None,
    default_region: Annotated[
        str,
        typer.Option(
            help="Numbers without a + are national numbers of this region (ISO 3166-1 "
            "alpha-2, e.g. GB), as a list upload's default_region."
        ),
    ] = "US",
) -> None:
    """Add a CSV file's recipients to the campaign.

    Also while it runs, as the API adds a batch: invalid numbers, duplicates and numbers on
    the do-not-call list are rejected, each with its line and reason.
    """
    from dialer.operator import commands

    commands.import_csv(campaign_id, file, user_id, rejected_out, default_region)


@campaign_app.command("start")
def start(campaign_id: CampaignId, user_id: UserId) -> None:
    """Start a draft campaign, resume a paused one, or run a completed one again."""
    from dialer.operator import commands

    commands.act(user_id, campaign_id, CampaignAction.START)


@campaign_app.command("pause")
def pause(campaign_id: CampaignId, user_id: UserId) -> None:
    """No new dials; calls in flight finish."""
    from dialer.operator import commands

    commands.act(user_id, campaign_id, CampaignAction.PAUSE)


@campaign_app.command("stop")
def stop(
    campaign_id: CampaignId,
    user_id: UserId,
    hang_up: Annotated[
        bool,
        typer.Option(
            "--hang-up",
            help="Also end the calls in flight through the provider (as the API's stop with "
            '{"hang_up": true}); without it they finish on their own.',
        ),
    ] = False,
) -> None:
    """End the campaign: recipients not called yet are canceled; calls in flight finish, or
    are hung up with --hang-up."""
    from dialer.operator import commands

    commands.act(user_id, campaign_id, CampaignAction.STOP, hang_up=hang_up)


@campaign_app.command("history")
def history(
    campaign_id: CampaignId,
    user_id: UserId,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many entries.")] = 50,
    oldest: Annotated[
        bool, typer.Option("--oldest", help="Oldest first (default: newest first).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the API's history entries).")
    ] = False,
) -> None:
    """Every change to the campaign, who made it and when.

    Fields changed (old -> new), actions, recipients added, and the dialer's own changes;
    each by an API key (its prefix), the operator (this command line) or the system.
    """
    from dialer.operator import commands

    commands.show_history(campaign_id, user_id, limit, oldest, as_json)


@campaign_app.command("export")
def export(
    campaign_id: CampaignId,
    user_id: UserId,
    export_format: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: standard output)."),
    ] = None,
    unmask_numbers: Annotated[
        bool,
        typer.Option(
            "--unmask-numbers", help="Full phone numbers (masked to their last four digits)."
        ),
    ] = False,
) -> None:
    """Export the campaign's call attempts as CSV or JSON Lines.

    One row per attempt: recipient, number, attempt number, times (UTC), outcome,
    answering-machine verdict, duration, error. Read a page at a time.
    """
    from dialer.operator import commands

    commands.export(campaign_id, user_id, export_format, output, unmask_numbers)


@campaign_app.command("timeline")
def timeline(
    campaign_id: CampaignId,
    recipient_id: Annotated[int, typer.Argument(help="The recipient's id.", min=1)],
    user_id: UserId,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")] = False,
) -> None:
    """A recipient's timeline, oldest first: each decision, its reason and until when, the
    zones checked and their local times at each dial, outcomes, retries, where it ended."""
    from dialer.operator import audit

    audit.show_timeline(campaign_id, recipient_id, user_id, as_json)


@campaign_app.command("preview")
def preview(
    campaign_id: CampaignId,
    user_id: UserId,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the API's shape).")] = False,
) -> None:
    """What the campaign would do if it ran now, dialing nothing: callable, deferred (by
    reason, until when), to be skipped or suppressed, and an estimated completion time."""
    from dialer.operator import audit

    audit.show_preview(campaign_id, user_id, as_json)
