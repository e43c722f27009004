from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import IllegalTransition
from dialer.policy.attempt_state import (
    CLAIMABLE_RECIPIENT,
    RECIPIENT_TRANSITIONS,
    TERMINAL_RECIPIENT,
    AttemptState,
    AttemptStatus,
    Outcome,
    RecipientStatus,
    advance,
    move_recipient,
    recipient_after_outcome,
)
from dialer.policy.campaign_state import (
    TRANSITIONS,
    CampaignAction,
    CampaignStatus,
    EndedReason,
    allowed_actions,
    apply_action,
)

ORDER = list(AttemptStatus)
events = st.one_of(
    st.sampled_from([s for s in AttemptStatus if s is not AttemptStatus.ENDED]).map(
        lambda s: (s, None)
    ),
    st.sampled_from(list(Outcome)).map(lambda o: (AttemptStatus.ENDED, o)),
)


@given(st.lists(events, max_size=30))
def test_no_sequence_of_events_moves_an_attempt_backwards(
    sequence: list[tuple[AttemptStatus, Outcome | None]],
) -> None:
    state = AttemptState(AttemptStatus.QUEUED)
    first_end: Outcome | None = None
    for status, outcome in sequence:
        after = advance(state, status, outcome)
        assert ORDER.index(after.status) >= ORDER.index(state.status)
        if state.ended:
            assert after == state  # the first terminal event wins
        if status is AttemptStatus.ENDED and first_end is None:
            first_end = outcome
        state = after
    assert state.outcome == first_end


@given(st.permutations([(s, None) for s in ORDER[1:-1]] + [(AttemptStatus.ENDED, Outcome.HUMAN)]))
def test_every_order_of_one_calls_events_ends_the_same(
    sequence: list[tuple[AttemptStatus, Outcome | None]],
) -> None:
    state = AttemptState(AttemptStatus.QUEUED)
    for status, outcome in sequence:
        state = advance(state, status, outcome)
    assert state == AttemptState(AttemptStatus.ENDED, Outcome.HUMAN)


def test_repeated_and_late_events_change_nothing() -> None:
    ringing = advance(AttemptState(AttemptStatus.DIALING), AttemptStatus.RINGING)
    assert advance(ringing, AttemptStatus.RINGING) == ringing
    assert advance(ringing, AttemptStatus.DIALING) == ringing
    ended = advance(ringing, AttemptStatus.ENDED, Outcome.BUSY)
    assert advance(ended, AttemptStatus.IN_PROGRESS) == ended
    assert advance(ended, AttemptStatus.ENDED, Outcome.HUMAN) == ended


def test_an_end_needs_an_outcome_and_only_an_end_has_one() -> None:
    with pytest.raises(ValueError, match="outcome"):
        advance(AttemptState(AttemptStatus.QUEUED), AttemptStatus.ENDED)
    with pytest.raises(ValueError, match="outcome"):
        AttemptState(AttemptStatus.RINGING, Outcome.BUSY)


@pytest.mark.parametrize(
    ("status", "action", "expected"),
    [
        (CampaignStatus.DRAFT, CampaignAction.START, CampaignStatus.RUNNING),
        (CampaignStatus.PAUSED, CampaignAction.START, CampaignStatus.RUNNING),
        (CampaignStatus.COMPLETED, CampaignAction.START, CampaignStatus.RUNNING),
        (CampaignStatus.RUNNING, CampaignAction.PAUSE, CampaignStatus.PAUSED),
        (CampaignStatus.PAUSED, CampaignAction.SAVE_DRAFT, CampaignStatus.DRAFT),
        (CampaignStatus.RUNNING, CampaignAction.STOP, CampaignStatus.COMPLETED),
    ],
)
def test_legal_campaign_actions(
    status: CampaignStatus, action: CampaignAction, expected: CampaignStatus
) -> None:
    assert apply_action(status, action).status is expected


@pytest.mark.parametrize(
    ("status", "action"),
    [(s, a) for s in CampaignStatus for a in CampaignAction if (s, a) not in TRANSITIONS],
)
def test_illegal_campaign_actions_raise_naming_state_and_action(
    status: CampaignStatus, action: CampaignAction
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        apply_action(status, action)
    assert caught.value.state == status.value
    assert caught.value.action == action.value
    assert action not in allowed_actions(status)


def test_stop_reason_depends_on_whether_the_run_dialed() -> None:
    before = apply_action(CampaignStatus.RUNNING, CampaignAction.STOP, run_has_dialed=False)
    after = apply_action(CampaignStatus.RUNNING, CampaignAction.STOP, run_has_dialed=True)
    assert before.ended_reason is EndedReason.SCHEDULED_ENDED_BY_USER
    assert after.ended_reason is EndedReason.IN_PROGRESS_ENDED_BY_USER
    assert apply_action(CampaignStatus.RUNNING, CampaignAction.FINISH).ended_reason is (
        EndedReason.SUCCESS
    )
    assert apply_action(CampaignStatus.PAUSED, CampaignAction.CLOSE_WINDOW).ended_reason is (
        EndedReason.WINDOW_CLOSED
    )


def test_runs_open_on_first_start_and_on_restart_only() -> None:
    assert apply_action(CampaignStatus.DRAFT, CampaignAction.START, has_run=False).new_run
    assert not apply_action(CampaignStatus.DRAFT, CampaignAction.START, has_run=True).new_run
    assert not apply_action(CampaignStatus.PAUSED, CampaignAction.START).new_run
    assert apply_action(CampaignStatus.COMPLETED, CampaignAction.START).new_run


def test_recipient_transitions_cover_every_state() -> None:
    assert set(RECIPIENT_TRANSITIONS) == set(RecipientStatus)
    for terminal in TERMINAL_RECIPIENT:
        # Only a new run brings a terminal recipient back.
        assert RECIPIENT_TRANSITIONS[terminal] == {RecipientStatus.PENDING}
    assert CLAIMABLE_RECIPIENT.isdisjoint(TERMINAL_RECIPIENT)


def test_illegal_recipient_move_raises() -> None:
    assert move_recipient(RecipientStatus.PENDING, RecipientStatus.QUEUED) is (
        RecipientStatus.QUEUED
    )
    with pytest.raises(IllegalTransition):
        move_recipient(RecipientStatus.IN_FLIGHT, RecipientStatus.PENDING)
    with pytest.raises(IllegalTransition):
        move_recipient(RecipientStatus.DONE, RecipientStatus.QUEUED)


@pytest.mark.parametrize(
    ("outcome", "retry", "expected"),
    [
        (Outcome.HUMAN, False, RecipientStatus.DONE),
        (Outcome.VOICEMAIL, False, RecipientStatus.DONE),
        (Outcome.VOICEMAIL, True, RecipientStatus.WAITING_RETRY),
        (Outcome.BUSY, True, RecipientStatus.WAITING_RETRY),
        (Outcome.BUSY, False, RecipientStatus.EXHAUSTED),
        (Outcome.UNKNOWN, False, RecipientStatus.EXHAUSTED),
    ],
)
def test_recipient_after_outcome(outcome: Outcome, retry: bool, expected: RecipientStatus) -> None:
    assert recipient_after_outcome(outcome, retry) is expected
