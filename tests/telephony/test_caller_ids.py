"""``caller_id_status``: whether the provider account may call from a number, on every
adapter (the simulator in process; the Twilio adapter against the carrier simulator)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialer.errors import TerminalProviderError
from dialer.telephony.base import CallerIdStatus, TelephonyProvider
from dialer.telephony.simulator import SimulatedProvider
from dialer.telephony.twilio.adapter import TwilioProvider
from tests.carrier.fixtures import StartCarrier
from tests.carrier.support import Receiver
from tests.telephony.harness import FakeClock, RecordingSink

OWNED = "+14155550100"
OTHER = "+14155550177"
#: Providers whose account owns ``numbers`` (None: any valid number).
MakeProvider = Callable[[frozenset[str] | None], TelephonyProvider]


@pytest.fixture(params=["simulator", "twilio"])
def make_provider(request: pytest.FixtureRequest) -> MakeProvider:
    if request.param == "simulator":
        return lambda numbers: SimulatedProvider(
            RecordingSink(), clock=FakeClock(), numbers=numbers
        )
    start_carrier: StartCarrier = request.getfixturevalue("start_carrier")

    def twilio(numbers: frozenset[str] | None) -> TwilioProvider:
        running = start_carrier(numbers=numbers)
        return TwilioProvider(
            running.account_sid,
            running.auth_token,
            webhooks=request.getfixturevalue("receiver").webhooks,
            base_url=running.base_url,
        )

    return twilio


def test_the_accounts_own_numbers_may_be_called_from(make_provider: MakeProvider) -> None:
    provider = make_provider(frozenset({OWNED}))
    assert provider.caller_id_status(OWNED) is CallerIdStatus.OWNED
    assert provider.caller_id_status(OTHER) is CallerIdStatus.UNKNOWN
    # Twilio's PhoneNumber filter also matches numbers that merely contain the digits.
    assert provider.caller_id_status(OWNED[:-1]) is CallerIdStatus.UNKNOWN


def test_without_a_list_the_account_owns_any_valid_number(make_provider: MakeProvider) -> None:
    provider = make_provider(None)
    assert provider.caller_id_status(OTHER) is CallerIdStatus.OWNED
    assert provider.caller_id_status("+1 (212) 555-0000") is CallerIdStatus.UNKNOWN


def test_calls_from_a_number_the_account_does_not_own_are_refused(
    make_provider: MakeProvider, receiver: Receiver
) -> None:
    provider = make_provider(frozenset({OWNED}))
    with pytest.raises(TerminalProviderError) as refused:
        provider.place_call(receiver.request(from_=OTHER))
    assert refused.value.code == "21210"


def test_twilio_verified_caller_ids_are_told_from_owned_numbers(
    start_carrier: StartCarrier, receiver: Receiver
) -> None:
    running = start_carrier(numbers=frozenset({OWNED}), caller_ids=frozenset({OTHER}))
    provider = TwilioProvider(
        running.account_sid,
        running.auth_token,
        webhooks=receiver.webhooks,
        base_url=running.base_url,
    )
    assert provider.caller_id_status(OWNED) is CallerIdStatus.OWNED
    assert provider.caller_id_status(OTHER) is CallerIdStatus.VERIFIED
    assert provider.caller_id_status("+14155550199") is CallerIdStatus.UNKNOWN
    placed = provider.place_call(receiver.request(from_=OTHER))
    assert placed.provider_call_id.startswith("CA")
