"""How calls are placed: ring time, call limit, pace, backoffs (read once from the settings)."""

from __future__ import annotations

from dataclasses import dataclass

from dialer.policy.frequency import DEFAULT_CAPS, FrequencyCaps
from dialer.settings import Settings


@dataclass(frozen=True, slots=True)
class CallConfig:
    ring_timeout_s: int = 30
    #: Longest call once answered, in seconds (Twilio ``time_limit``).
    time_limit_s: int = 3600
    #: Slack for late callbacks in the slot lease of a live call, in seconds.
    callback_margin_s: int = 120
    machine_detection: str = "DetectMessageEnd"
    #: Provider account the pace is shared by (e.g. ``twilio:AC...``) and its calls per second.
    account: str = "simulator"
    account_cps: float = 1.0
    caller_cps: float | None = None
    #: Seconds before a dial refused with 429/5xx is tried again (times the refusals so far).
    provider_backoff_s: float = 2.0
    #: Seconds before a dial that found no free slot looks again.
    slot_retry_s: float = 1.0
    #: A pace wait up to this long (seconds) is waited out in the dial's thread, not by
    #: sending its task again with a countdown.
    pace_wait_here_s: float = 0.05
    #: How far ahead a dispatch reserves the starts of the calls it claims, in seconds: it
    #: claims only the calls the pace lets start within it (the rest wait for the next
    #: dispatch), and each dial task is sent with the wait to its own instant. Another
    #: tenant's call may wait up to this much longer for the starts already promised.
    pace_ahead_s: float = 1.0
    #: Reserve the pace when claiming (above); off, every claimed call takes its pace at the
    #: dial, and a dispatch may claim far more than the pace lets out at once.
    pace_at_claim: bool = True
    #: How long after its instant a reserved start may still be used, in seconds: a rate's
    #: starts in any window of w seconds are at most those it admits in w + this (a task
    #: that comes late starts close to the next one on time). A dial later still takes its
    #: pace at the gate, as an unreserved one does.
    permit_late_s: float = 1.0
    #: Count an AMD verdict of ``unknown`` as voicemail instead of human.
    amd_unknown_as_voicemail: bool = False
    #: The frequency caps of a tenant that set none (``DIALER_CAP_*``).
    default_caps: FrequencyCaps = DEFAULT_CAPS

    @property
    def call_lease_s(self) -> float:
        """The slot lease of a placed call: it covers the whole call and its late callbacks."""
        return float(self.ring_timeout_s + self.time_limit_s + self.callback_margin_s)

    @classmethod
    def from_settings(cls, settings: Settings, *, account: str) -> CallConfig:
        """The configuration ``settings`` give, pacing calls as ``account`` (its provider
        package's :meth:`~dialer.telephony.providers.ProviderPackage.pace_account`)."""
        return cls(
            ring_timeout_s=settings.ring_timeout_s,
            time_limit_s=settings.call_time_limit_s,
            machine_detection=settings.machine_detection,
            account=account,
            account_cps=settings.calls_per_second,
            pace_at_claim=settings.pace_at_claim,
            amd_unknown_as_voicemail=settings.amd_unknown_as == "voicemail",
            default_caps=default_caps(settings),
        )


def default_caps(settings: Settings) -> FrequencyCaps:
    """The frequency caps ``settings`` give a tenant that set none."""
    return FrequencyCaps(
        settings.cap_attempts_per_day,
        settings.cap_attempts_per_week,
        settings.cap_quiet_days_after_answer,
    )
