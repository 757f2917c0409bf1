"""`pets flow run`: the trading path's flows close their epochs at their own phase of the wall clock."""

from __future__ import annotations

import itertools

import pytest

from pets.cli.flow import epoch_phase_wait_s


@pytest.mark.parametrize(
    ("name", "wait_s"),
    # at 1000.3 s, 0.3 s into a 5 s epoch of the wall clock: the next 0, 1.25, 2.5 and 3.75 s marks
    [("market_state", 4.7), ("bots", 0.95), ("risk", 2.2), ("executor", 3.45)],
)
def test_each_trading_flow_starts_at_its_quarter_of_the_epoch(name: str, wait_s: float) -> None:
    assert epoch_phase_wait_s(name, 5000, 1000.3) == pytest.approx(wait_s)


def test_flows_started_together_close_their_epochs_a_quarter_epoch_apart() -> None:
    """Bytewax times epochs from the dataflow's start: four flows started at the same moment (the
    bench, a deploy) closed theirs at the same moments, on 2 cores."""
    epoch_s = 2.0
    for now in (0.0, 7.77, 1_765_000_000.123):
        closes = sorted(
            (now + epoch_phase_wait_s(name, 2000, now)) % epoch_s
            for name in ("market_state", "bots", "risk", "executor")
        )
        gaps = [b - a for a, b in itertools.pairwise(closes)] + [closes[0] + epoch_s - closes[-1]]
        assert gaps == pytest.approx([epoch_s / 4] * 4, abs=1e-6)
        assert all(0 <= epoch_phase_wait_s(name, 2000, now) < epoch_s for name in ("bots", "risk"))


def test_other_flows_start_at_once() -> None:
    assert epoch_phase_wait_s("news", 5000, 1000.3) == 0.0
