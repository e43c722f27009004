"""The campaign state machine: which actions are legal from which state, as data."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dialer.errors import IllegalTransition


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"


class CampaignAction(StrEnum):
    START = "start"
    PAUSE = "pause"
    SAVE_DRAFT = "save_draft"
    STOP = "stop"
    #: System actions: the scheduler completes a campaign, never a user.
    FINISH = "finish"
    CLOSE_WINDOW = "close_window"


class EndedReason(StrEnum):
    #: Stopped by the user before the current run placed any call.
    SCHEDULED_ENDED_BY_USER = "campaign.scheduled.ended-by-user"
    #: Stopped by the user after the current run placed calls.
    IN_PROGRESS_ENDED_BY_USER = "campaign.in-progress.ended-by-user"
    #: Every recipient reached a terminal state.
    SUCCESS = "campaign.ended.success"
    #: ``schedule_end_time`` passed; recipients never reached are marked skipped.
    WINDOW_CLOSED = "campaign.ended.window-closed"


class PausedReason(StrEnum):
    """Why a campaign paused itself (a pause by the user has none). Cleared when it starts
    again: starting is the operator's word that the cause was looked at."""

    #: Too many calls answered by a person were abandoned (30-day window).
    ABANDON_RATE = "campaign.paused.abandon-rate"
    #: Its latest dials nearly all failed at the carrier.
    FAILURE_RATE = "campaign.paused.failure-rate"
    #: Every caller number it may call from is quarantined.
    NO_HEALTHY_NUMBER = "campaign.paused.no-healthy-number"


S, A = CampaignStatus, CampaignAction

#: (from, action) -> to. Anything absent is illegal.
TRANSITIONS: dict[tuple[CampaignStatus, CampaignAction], CampaignStatus] = {
    (S.DRAFT, A.START): S.RUNNING,
    (S.PAUSED, A.START): S.RUNNING,
    (S.COMPLETED, A.START): S.RUNNING,
    (S.RUNNING, A.PAUSE): S.PAUSED,
    (S.PAUSED, A.SAVE_DRAFT): S.DRAFT,
    (S.DRAFT, A.STOP): S.COMPLETED,
    (S.RUNNING, A.STOP): S.COMPLETED,
    (S.PAUSED, A.STOP): S.COMPLETED,
    (S.RUNNING, A.FINISH): S.COMPLETED,
    (S.RUNNING, A.CLOSE_WINDOW): S.COMPLETED,
    (S.PAUSED, A.CLOSE_WINDOW): S.COMPLETED,
}


@dataclass(frozen=True, slots=True)
class Transition:
    status: CampaignStatus
    #: Set when the campaign ends; cleared when a new run starts.
    ended_reason: EndedReason | None
    #: True when the action opens a new run.
    new_run: bool


def allowed_actions(status: CampaignStatus) -> frozenset[CampaignAction]:
    return frozenset(action for (origin, action) in TRANSITIONS if origin is status)


def apply_action(
    status: CampaignStatus,
    action: CampaignAction,
    *,
    has_run: bool = True,
    run_has_dialed: bool = False,
) -> Transition:
    """The campaign after ``action``; raises :class:`IllegalTransition` when not legal.

    ``has_run`` says whether the campaign was ever started (the first start opens a run, and
    so does every start of a completed campaign); ``run_has_dialed`` whether the current run
    placed any call yet, which picks the ended-by-user reason a stop records.
    """
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise IllegalTransition("campaign", status.value, action.value)
    reason: EndedReason | None = None
    if action is A.STOP:
        reason = (
            EndedReason.IN_PROGRESS_ENDED_BY_USER
            if run_has_dialed
            else EndedReason.SCHEDULED_ENDED_BY_USER
        )
    elif action is A.FINISH:
        reason = EndedReason.SUCCESS
    elif action is A.CLOSE_WINDOW:
        reason = EndedReason.WINDOW_CLOSED
    new_run = action is A.START and (status is S.COMPLETED or not has_run)
    return Transition(status=target, ended_reason=reason, new_run=new_run)
