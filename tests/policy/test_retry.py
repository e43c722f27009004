from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dialer.policy.attempt_state import Outcome
from dialer.policy.retry import RetryPolicy, next_attempt, parse_duration_s, retry_delay_s

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_empty_document_is_the_default_policy() -> None:
    policy = RetryPolicy.model_validate({})
    assert policy.max_attempts == 3
    assert policy.backoff.kind == "exponential"
    assert policy.retry_on.busy
    assert policy.retry_on.no_answer
    assert not policy.retry_on.voicemail


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), (42, 42.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "-5m", True, None, "31d"])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(text)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 21}, "max_attempts"),
        ({"jitter": 1.5}, "jitter"),
        ({"backoff": {"kind": "linear"}}, "backoff"),
        ({"backoff": {"kind": "list", "delays": []}}, "backoff.list.delays"),
        ({"backoff": {"kind": "exponential", "initial": "2h", "max": "5m"}}, "backoff"),
        ({"retry_on": {"busy": True, "human": True}}, "retry_on.human"),
        ({"attempts": 3}, "attempts"),
    ],
)
def test_malformed_policies_name_the_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetryPolicy.model_validate(document)
    paths = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert any(path.startswith(field) for path in paths), paths


def test_explicit_list_of_delays_repeats_the_last() -> None:
    policy = RetryPolicy.model_validate(
        {"max_attempts": 6, "jitter": 0, "backoff": {"kind": "list", "delays": ["5m", "30m", "2h"]}}
    )
    delays = [retry_delay_s(policy, n) for n in range(1, 6)]
    assert delays == [300, 1800, 7200, 7200, 7200]


def test_exponential_backoff_grows_to_its_cap() -> None:
    policy = RetryPolicy.model_validate(
        {
            "max_attempts": 10,
            "jitter": 0,
            "backoff": {"kind": "exponential", "initial": 60, "multiplier": 3, "max": 1000},
        }
    )
    assert [retry_delay_s(policy, n) for n in range(1, 6)] == [60, 180, 540, 1000, 1000]


def test_per_outcome_rules() -> None:
    policy = RetryPolicy.model_validate({"retry_on": {"busy": False, "voicemail": True}})
    assert next_attempt(policy, 1, Outcome.BUSY, NOW) is None
    assert next_attempt(policy, 1, Outcome.VOICEMAIL, NOW) is not None
    assert next_attempt(policy, 1, Outcome.NO_ANSWER, NOW) is not None
    assert next_attempt(policy, 1, Outcome.HUMAN, NOW) is None
    assert next_attempt(policy, 1, Outcome.CANCELED, NOW) is None


def test_no_attempt_after_the_last() -> None:
    policy = RetryPolicy.model_validate({"max_attempts": 2})
    assert next_attempt(policy, 1, Outcome.BUSY, NOW) is not None
    assert next_attempt(policy, 2, Outcome.BUSY, NOW) is None


def test_jitter_is_reproducible_and_spreads_recipients() -> None:
    policy = RetryPolicy.model_validate({"jitter": 0.5})
    first = next_attempt(policy, 1, Outcome.BUSY, NOW, jitter_seed="r1")
    assert first == next_attempt(policy, 1, Outcome.BUSY, NOW, jitter_seed="r1")
    others = {next_attempt(policy, 1, Outcome.BUSY, NOW, jitter_seed=f"r{i}") for i in range(20)}
    assert len(others) > 10


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_attempt(RetryPolicy(), 1, Outcome.BUSY, datetime(2026, 1, 1))  # noqa: DTZ001


durations = st.one_of(st.integers(0, 86400), st.sampled_from(["30s", "5m", "1h", "2h30m"]))
backoffs = st.one_of(
    st.fixed_dictionaries({"kind": st.just("fixed"), "delay": durations}),
    st.tuples(st.integers(0, 3600), st.floats(1, 10), st.integers(0, 86400)).map(
        lambda t: {"kind": "exponential", "initial": t[0], "multiplier": t[1], "max": t[0] + t[2]}
    ),
    st.fixed_dictionaries(
        {"kind": st.just("list"), "delays": st.lists(durations, min_size=1, max_size=20)}
    ),
)
policies = st.builds(
    lambda max_attempts, backoff, jitter, retry_on: RetryPolicy.model_validate(
        {"max_attempts": max_attempts, "backoff": backoff, "jitter": jitter, "retry_on": retry_on}
    ),
    st.integers(1, 20),
    backoffs,
    st.floats(0, 1),
    st.fixed_dictionaries(
        {k: st.booleans() for k in ("busy", "no_answer", "failed", "voicemail", "unknown")}
    ),
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(policies, st.integers(1, 40), st.sampled_from(list(Outcome)), moments, st.text(max_size=8))
def test_delays_are_never_negative_nor_above_the_cap(
    policy: RetryPolicy, attempts: int, outcome: Outcome, now: datetime, seed: str
) -> None:
    due = next_attempt(policy, attempts, outcome, now, jitter_seed=seed)
    if due is not None:
        assert timedelta(0) <= due - now <= timedelta(seconds=policy.cap_s())


@given(policies, st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=40), moments)
def test_attempts_never_exceed_max(
    policy: RetryPolicy, outcomes: list[Outcome], now: datetime
) -> None:
    """Follow the policy for as long as it grants retries: it stops by max_attempts."""
    attempts = 0
    for outcome in outcomes:
        attempts += 1
        due = next_attempt(policy, attempts, outcome, now)
        if due is None:
            break
        now = due
    assert attempts <= policy.max_attempts
