"""The run journal's mid-price paths: a point when a token's mid changed, at most one per second of
venue time (the latest of that second), written exactly and drawn under the orders in the HTML report."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import polars as pl

from pets.runtime.html_report import UNDER, mid_paths, svg_lines
from pets.runtime.journal import Journal
from venue_factories import T0, tob


def test_the_journal_keeps_each_tokens_mid_on_change_at_most_once_a_second(tmp_path: Path) -> None:
    journal = Journal()
    tops = [  # (token, venue ms after T0, bid, ask): mid = (bid + ask) / 2
        ("yes1", 0, "0.49", "0.51"),  # 0.50: the first point
        ("yes1", 200, "0.48", "0.52"),  # 0.50 again: nothing new
        ("no1", 300, "0.49", "0.51"),  # another token: its own series
        ("yes1", 600, "0.51", "0.53"),  # 0.52 in the same second: the second's latest
        ("yes1", 1_100, "0.51", None),  # one-sided book: no mid
        ("yes1", 1_400, "0.52", "0.54"),  # 0.53: the next second
        ("yes1", 1_900, "0.52", "0.54"),  # unchanged
        ("yes1", 5_000, "0.48", "0.50"),  # 0.49 three seconds on
    ]
    for token, ms, bid, ask in tops:
        journal.on_top_of_book(tob(token, "m1", bid, ask, ts_ms=T0 + ms))
    assert journal.mids == {
        "yes1": [(T0 + 600, D("0.52")), (T0 + 1_400, D("0.53")), (T0 + 5_000, D("0.49"))],
        "no1": [(T0 + 300, D("0.50"))],
    }
    journal.write_parquet(tmp_path, [])
    rows = pl.read_parquet(tmp_path / "mids.parquet").to_dicts()
    assert [(r["market"], r["asset_id"], r["ts_ms"], r["mid"]) for r in rows] == [
        ("m1", "yes1", T0 + 600, D("0.52")),
        ("m1", "yes1", T0 + 1_400, D("0.53")),
        ("m1", "yes1", T0 + 5_000, D("0.49")),
        ("m1", "no1", T0 + 300, D("0.50")),
    ]
    paths = mid_paths(rows)
    assert paths == {
        "m1": {
            "mid yes1": [((T0 + 600) / 1e3, 0.52), ((T0 + 1_400) / 1e3, 0.53), ((T0 + 5_000) / 1e3, 0.49)],
            "mid no1": [((T0 + 300) / 1e3, 0.5)],
        }
    }
    chart = svg_lines({"yes1 BUY": [((T0 + 700) / 1e3, 0.51)]}, "price", under=paths["m1"])
    strokes = [part.split('"')[0] for part in chart.split('stroke="')[1:]]
    assert strokes == [UNDER, UNDER, "#1f77b4"]  # both mids drawn first, beneath the order line
