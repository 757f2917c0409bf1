"""Issue 12: `kill -9` of the risk, bots and market_state flows at several points of a stream.

Each flow runs as `pets flow run NAME` over the real broker and a fresh database
(pets.runtime.faults); a steady stream goes in while the process is killed with SIGKILL mid-stream,
again 0.5 s after its restart (while it replays) and again after a recovery snapshot, restarted at
once each time. Then, from what it published and stored: every input got its output (no intent left
undecided, no frame without its top of book; the bots propose what an undisturbed bots flow fed the
same stream proposes), no output was told two ways (an order approved twice, an intent with two
contents) and no row is stored twice.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pets.runtime import faults
from pets.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIOS: dict[str, Callable[..., faults.ScenarioResult]] = {
    "risk": faults.risk_scenario,
    "bots": faults.bots_scenario,
    "market_state": faults.market_state_scenario,
}


@pytest.mark.parametrize("flow", list(SCENARIOS))
def test_a_flow_killed_at_several_points_loses_and_duplicates_nothing(
    flow: str, settings: Settings, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    result = SCENARIOS[flow](settings, faults.kill_9_at_several_points, "kill -9")
    assert result.inputs > 0 and result.outputs > 0, result
    assert (result.lost, result.duplicated) == (0, 0), result


def test_a_bots_flow_killed_before_its_first_snapshot_replays_its_input_as_it_first_took_it(
    settings: Settings, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    """Before: the restart (no resume state) started an empty order log and took the backlog as the
    consumer fetched it, the markets behind their tops: intents told two ways and unlike the reference."""
    result = faults.bots_first_snapshot_scenario(settings)
    assert result.inputs > 0 and result.outputs > 0, result
    assert (result.lost, result.duplicated) == (0, 0), result
