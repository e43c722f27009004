"""Lost terminal callbacks and an API outage cost minutes at most, never a call over a limit.

The same campaign (a few hundred recipients, limit 8) is dialed twice on one fleet: once with
every callback delivered, once with a tenth of the calls' terminal callbacks lost and the API
down for 15 s in the middle (every callback sent meanwhile lost too). The provider sweep
learns what the callbacks would have said. Printed: both durations, the peaks against the
limit, and the sweeps' cost. A longer run (about four minutes): with DIALER_CHAOS_SOAK=1.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dialer.carrier import Faults
from tests.chaos import logs as logs_module
from tests.chaos.fleet import BASE_FAULTS, ChaosFleet, chaos_fleet
from tests.chaos.scenario import Chaos
from tests.chaos.servers import Servers
from tests.chaos.workload import TENANT_ONE, CampaignSpec, create_campaigns
from tests.e2e.fleet import collecting_failures

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RECIPIENTS = 300
LIMIT = 8
LOST_ENDED_P = 0.1
API_DOWN_S = 15.0
#: The default sweep period: the bound a deployment gets without tuning.
SWEEP_S = 30


def _dial(fleet: ChaosFleet, key: str, area: str, *, outage: bool) -> tuple[float, int, str]:
    """Dial one campaign to completion; its duration, its peak at the carrier, and its id."""
    spec = CampaignSpec(key, TENANT_ONE, "+14155550109", area, LIMIT, RECIPIENTS)
    began = time.monotonic()
    (campaign,) = create_campaigns(fleet, [spec])
    chaos = Chaos(fleet, [campaign])
    if outage:
        time.sleep(10)  # mid-run: every slot busy
        chaos.api_down_for(API_DOWN_S)
    assert chaos.await_completion(timeout_s=600), campaign.body.get("counts")
    took_s = time.monotonic() - began
    peak = int(fleet.carrier.stats()["peak"]["by_campaign"].get(campaign.id, 0))
    return took_s, peak, campaign.id


@pytest.mark.skipif(
    os.environ.get("DIALER_CHAOS_SOAK") != "1", reason="a longer run: DIALER_CHAOS_SOAK=1"
)
def test_lost_terminal_callbacks_and_an_api_outage_cost_minutes_not_the_limit(
    chaos_servers: Servers, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        chaos_fleet(
            chaos_servers.postgres,
            chaos_servers.redis,
            logs,
            user_ids=(TENANT_ONE,),
            overrides={"DIALER_PROVIDER_SWEEP_S": str(SWEEP_S)},
        ) as fleet,
        collecting_failures(fleet.processes),
    ):
        fleet.carrier.carrier.set_faults(Faults())
        lossless_s, lossless_peak, _ = _dial(fleet, "L", "+1404555", outage=False)
        fleet.carrier.carrier.set_faults(
            Faults(
                duplicate_p=BASE_FAULTS.duplicate_p,
                reorder_p=BASE_FAULTS.reorder_p,
                drop_ended_p=LOST_ENDED_P,
            )
        )
        lossy_s, lossy_peak, _ = _dial(fleet, "M", "+1503555", outage=True)
        dropped = fleet.carrier.stats()["faults"].get("dropped_ended", 0)
        sweeps = logs_module.read(fleet)
    print(
        f"\n[lost callbacks] {RECIPIENTS} recipients, limit {LIMIT}: lossless {lossless_s:.1f}s "
        f"(peak {lossless_peak}); {LOST_ENDED_P:.0%} of terminal callbacks lost ({dropped}) and "
        f"the API down {API_DOWN_S:.0f}s: {lossy_s:.1f}s (peak {lossy_peak}), "
        f"{lossy_s - lossless_s:+.1f}s"
    )
    for line in sweeps.lines():
        print(f"[lost callbacks] {line}")
    assert dropped > 0
    assert lossless_peak <= LIMIT
    assert lossy_peak <= LIMIT
    # The sweep's bound: each lost end frees its slot within a sweep period plus one sweep;
    # the outage adds its own length. Minutes, not the hour of a call's lease.
    assert lossy_s - lossless_s < 180
