"""The L2 book, the per-market grouping of mirrored updates and the features, on hand-built venue frames."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pets.pipelines.market_data.market import MarketStateEngine
from pets.pipelines.market_data.parser import FrameParser
from pets.schemas.control import DeadLetter
from pets.schemas.market_data import MarketInfo, TopOfBook
from pets.venue.order_book import OrderBook

YES, NO, MARKET = "yes-token", "no-token", "0xcondition"
D = Decimal


def book_frame(
    asset: str, ts: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]], **extra: str
) -> bytes:
    """A venue `book` frame; levels are listed in the order given (the venue sends best LAST)."""
    return json.dumps(
        {
            "event_type": "book",
            "asset_id": asset,
            "market": MARKET,
            "timestamp": str(ts),
            "hash": "h",
            "bids": [{"price": p, "size": s} for p, s in bids],
            "asks": [{"price": p, "size": s} for p, s in asks],
            **extra,
        }
    ).encode()


def change_frame(asset: str, ts: int, *levels: tuple[str, str, str]) -> bytes:
    """An old-schema price_change: levels are (side, price, new total size)."""
    return json.dumps(
        {
            "event_type": "price_change",
            "asset_id": asset,
            "market": MARKET,
            "timestamp": str(ts),
            "hash": "h",
            "changes": [{"side": side, "price": p, "size": s} for side, p, s in levels],
        }
    ).encode()


def info(tick: str = "0.01") -> MarketInfo:
    return MarketInfo(
        condition_id=MARKET,
        market_id="1",
        question="q",
        slug="s",
        category="c",
        token_ids=(YES, NO),
        outcomes=("Yes", "No"),
        neg_risk=False,
        tick_size=D(tick),
        min_order_size=D(5),
        active=True,
        closed=False,
        accepting_orders=True,
    )


class Harness:
    """Frames in, published TopOfBook messages and rejection reasons out (the embedded path)."""

    def __init__(self, *infos: MarketInfo, depth_levels: int = 5) -> None:
        self.engine = MarketStateEngine(infos, depth_levels=depth_levels)
        self.parser = FrameParser("test")
        self.rejected: list[str] = []

    def feed(self, *frames: bytes) -> list[TopOfBook]:
        out: list[TopOfBook] = []
        for raw in frames:
            for item in self.parser.parse(raw):
                assert not isinstance(item, DeadLetter), item.reason
                reason = self.engine.on_event(item, out)
                if reason is not None:
                    self.rejected.append(reason)
        return out

    def flush(self) -> list[TopOfBook]:
        out: list[TopOfBook] = []
        self.engine.flush(out)
        return out

    def book(self, asset: str) -> OrderBook:
        book = self.engine.book(asset)
        assert book is not None
        return book


def mirrored_books(h: Harness, ts: int = 1000) -> list[TopOfBook]:
    """YES 0.45/0.47 (sizes 100/200), NO 0.53/0.55 (sizes 200/100), both listed best-last."""
    return h.feed(
        book_frame(
            YES, ts, [("0.43", "50"), ("0.44", "80"), ("0.45", "100")], [("0.49", "70"), ("0.47", "200")]
        ),
        book_frame(
            NO, ts, [("0.51", "70"), ("0.53", "200")], [("0.57", "50"), ("0.56", "80"), ("0.55", "100")]
        ),
    )


def test_sides_arrive_best_last_and_are_walked_best_first() -> None:
    h = Harness(info())
    mirrored_books(h)
    yes = h.book(YES)
    assert yes.best_bid() == (D("0.45"), D("100")) and yes.best_ask() == (D("0.47"), D("200"))
    assert [level.price for level in yes.bids()] == [D("0.45"), D("0.44"), D("0.43")]
    assert [level.price for level in yes.asks()] == [D("0.47"), D("0.49")]
    assert yes.depth_at("BUY", D("0.44")) == D(80) and yes.depth_at("SELL", D("0.49")) == D(70)
    assert yes.depth_at("SELL", D("0.48")) == 0 and yes.depth_at("BUY", D("0.12345")) == 0
    assert not yes.stale and not yes.crossed and yes.tick_size == D("0.01")


def test_a_change_sets_the_level_total_and_size_zero_removes_it() -> None:
    h = Harness(info())
    mirrored_books(h)
    h.feed(change_frame(YES, 2000, ("BUY", "0.44", "30"), ("BUY", "0.45", "0"), ("SELL", "0.48", "5.5")))
    yes = h.book(YES)
    assert list(yes.bids()) == [(D("0.44"), D("30")), (D("0.43"), D("50"))]
    assert list(yes.asks()) == [(D("0.47"), D("200")), (D("0.48"), D("5.5")), (D("0.49"), D("70"))]
    h.feed(change_frame(YES, 3000, ("BUY", "0.20", "0")))  # removing a level that is not there: no-op
    assert len(list(yes.bids())) == 2


def test_a_snapshot_replaces_the_whole_book() -> None:
    h = Harness(info())
    mirrored_books(h)
    h.feed(book_frame(YES, 5000, [("0.30", "1")], []))
    yes = h.book(YES)
    assert list(yes.bids()) == [(D("0.30"), D("1"))] and yes.best_ask() is None


def test_a_stated_tick_rejects_off_grid_levels_until_the_tick_changes() -> None:
    h = Harness(info("0.01"))
    mirrored_books(h)
    h.feed(change_frame(YES, 2000, ("BUY", "0.455", "10")))
    assert h.rejected == [f"price 0.455 is off the tick grid 0.01 of asset {YES}"]
    assert h.book(YES).depth_at("BUY", D("0.455")) == 0
    tick_change = {
        "event_type": "tick_size_change",
        "asset_id": YES,
        "market": MARKET,
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "3000",
    }
    tops = h.feed(json.dumps(tick_change).encode(), change_frame(YES, 4000, ("BUY", "0.455", "10")))
    assert len(h.rejected) == 1
    assert h.book(YES).best_bid() == (D("0.455"), D("10"))
    assert tops[0].tick_size == D("0.001")


@pytest.mark.parametrize("stated", [None, "0.01"])
def test_a_tail_price_on_the_finer_grid_implies_the_tail_tick_any_other_off_grid_price_is_rejected(
    stated: str | None,
) -> None:
    h = Harness(info(stated)) if stated else Harness()  # without a MarketInfo (recordings) the grid is 0.01
    mirrored_books(h)
    assert h.book(YES).tick_size == D("0.01")
    h.feed(change_frame(YES, 2000, ("BUY", "0.455", "10")))  # mid-range: the venue would not show it
    assert h.rejected == [f"price 0.455 is off the tick grid 0.01 of asset {YES}"]
    h.feed(change_frame(YES, 2500, ("SELL", "0.961", "10")))  # 0.96 itself is not the tail
    assert h.rejected[1:] == []
    assert h.book(YES).tick_size == D("0.001") and h.book(YES).depth_at("SELL", D("0.961")) == 10
    h.feed(change_frame(YES, 2600, ("BUY", "0.455", "10")))  # on the tail grid the market now has
    assert h.rejected[1:] == [] and h.book(YES).best_bid() == (D("0.455"), D("10"))
    h.feed(change_frame(YES, 2700, ("BUY", "0.4555", "10")))  # off even the tail grid
    assert h.rejected[1:] == [f"price 0.4555 is off the tick grid 0.001 of asset {YES}"]
    # a snapshot is judged afresh against the stated grid: one tail price among mid-range ones on the
    # finer grid is enough (the levels left behind when the venue changed the tick), none is not
    h.feed(book_frame(YES, 3000, [("0.071", "1"), ("0.039", "1")], [("0.929", "1")]))
    assert h.rejected[2:] == [] and h.book(YES).tick_size == D("0.001")
    h.feed(book_frame(YES, 3100, [("0.45", "1")], [("0.47", "1")]))
    assert h.book(YES).tick_size == D("0.01")
    h.feed(book_frame(YES, 3200, [("0.071", "1")], [("0.47", "1")]))
    assert h.rejected[2:] == [f"price 0.071 is off the tick grid 0.01 of asset {YES}"]
    assert h.book(YES).best_bid() == (D("0.45"), D("1"))  # the rejected snapshot changed nothing


def test_a_snapshot_stating_its_tick_size_is_checked_against_it() -> None:
    h = Harness()
    h.feed(book_frame(YES, 1, [("0.455", "1")], [], tick_size="0.01"))
    assert h.rejected == [f"price 0.455 is off the tick grid 0.01 of asset {YES}"]


def test_a_book_is_stale_before_its_snapshot_and_after_continuity_loss_until_the_next_snapshot() -> None:
    h = Harness(info())
    h.feed(change_frame(YES, 500, ("BUY", "0.40", "1")))
    assert h.book(YES).stale
    mirrored_books(h)
    assert not h.book(YES).stale
    lost = {
        "event_type": "continuity",
        "asset_ids": [YES, NO],
        "status": "lost",
        "reason": "reconnect",
        "recv_ns": 1,
        "market": MARKET,
    }
    tops = h.feed(json.dumps(lost).encode())
    assert [(t.asset_id, t.stale) for t in tops] == [(YES, True), (NO, True)]
    tops = h.feed(
        change_frame(YES, 2000, ("BUY", "0.46", "5")), change_frame(NO, 2000, ("SELL", "0.54", "5"))
    )
    assert all(t.stale for t in tops)
    resynced = {**lost, "status": "resynced"}
    h.feed(json.dumps(resynced).encode())
    assert h.book(YES).stale  # only a snapshot makes it fresh again
    tops = mirrored_books(h, ts=3000)
    assert [t.stale for t in tops] == [False, False]


def test_continuity_loss_marks_only_its_assets_stale() -> None:
    h = Harness(info())
    mirrored_books(h)
    lost = {
        "event_type": "continuity",
        "market": MARKET,
        "asset_ids": [NO],
        "status": "lost",
        "reason": "stall",
        "recv_ns": 1,
    }
    tops = h.feed(json.dumps(lost).encode())
    assert [(t.asset_id, t.stale) for t in tops] == [(NO, True), (YES, False)]  # YES: its sums use NO
    assert not h.book(YES).stale


def test_a_mirrored_update_publishes_once_per_token_after_both_frames() -> None:
    h = Harness(info())
    mirrored_books(h)
    # YES bid 0.45 -> 0.46 and, mirrored, NO ask 0.55 -> 0.54, sent as two frames with one timestamp
    assert h.feed(change_frame(YES, 2000, ("BUY", "0.46", "40"))) == []  # half applied: nothing published
    tops = h.feed(change_frame(NO, 2000, ("SELL", "0.54", "40")))
    assert [(t.asset_id, t.ts_ms, t.seq) for t in tops] == [(YES, 2000, 2), (NO, 2000, 2)]
    yes, no = tops
    assert (yes.best_bid, yes.best_ask, no.best_bid, no.best_ask) == (
        D("0.46"),
        D("0.47"),
        D("0.53"),
        D("0.54"),
    )
    assert yes.bid_sum == no.bid_sum == D("0.99") and yes.ask_sum == no.ask_sum == D("1.01")


def test_a_lone_frame_is_published_when_the_next_timestamp_arrives_or_at_the_end() -> None:
    h = Harness(info())
    mirrored_books(h)
    assert h.feed(change_frame(YES, 2000, ("SELL", "0.48", "1"))) == []
    tops = h.feed(change_frame(YES, 2500, ("SELL", "0.48", "2")))
    # the 2000 group: YES and its complement (whose sums depend on YES)
    assert [(t.asset_id, t.ts_ms) for t in tops] == [(YES, 2000), (NO, 2000)]
    assert [(t.asset_id, t.ts_ms) for t in h.flush()] == [(YES, 2500), (NO, 2500)]
    assert h.flush() == []


def test_pairs_are_learned_from_the_first_two_tokens_of_a_market() -> None:
    h = Harness()  # no MarketInfo
    tops = mirrored_books(h)
    assert [(t.asset_id, t.paired_asset_id) for t in tops] == [(YES, NO), (NO, YES)]
    assert tops[0].ask_sum == D("0.47") + D("0.55") and tops[0].bid_sum == D("0.45") + D("0.53")
    tops = h.feed(book_frame("third-token", 2000, [("0.1", "1")], [])) + h.flush()
    assert tops[0].paired_asset_id is None and tops[0].ask_sum is None  # three tokens: not a binary pair


def test_features_of_the_top_of_book() -> None:
    h = Harness(info(), depth_levels=2)
    yes = mirrored_books(h)[0]
    assert yes.best_bid_size == D(100) and yes.best_ask_size == D(200)
    assert yes.mid == D("0.46") and yes.spread == D("0.02")
    micro = (Fraction("0.45") * 200 + Fraction("0.47") * 100) / 300
    assert yes.microprice == round(D(micro.numerator) / D(micro.denominator), 6)
    imbalance = Fraction((100 + 80) - (200 + 70), (100 + 80) + (200 + 70))  # best 2 levels per side
    assert yes.imbalance == round(D(imbalance.numerator) / D(imbalance.denominator), 6)
    h.feed(change_frame(YES, 2000, ("BUY", "0.455", "1")))  # rejected (stated tick 0.01): no change
    one_sided = h.feed(book_frame(YES, 3000, [("0.45", "3")], []), book_frame(NO, 3000, [], [("0.55", "3")]))[
        0
    ]
    assert one_sided.best_ask is None and one_sided.mid is None and one_sided.microprice is None
    assert one_sided.spread is None and one_sided.imbalance == 1 and one_sided.ask_sum is None
    assert one_sided.bid_sum is None  # the NO side has no bid


def test_balanced_depth_has_zero_imbalance_written_plainly() -> None:
    h = Harness(info())
    (top, _) = h.feed(book_frame(YES, 1, [("0.45", "7")], [("0.46", "7")]), book_frame(NO, 1, [], []))
    assert top.imbalance == 0 and str(top.imbalance) == "0"


def test_mid_keeps_half_ticks_exactly() -> None:
    h = Harness(info())
    tops = h.feed(book_frame(YES, 1, [("0.45", "1")], [("0.46", "1")]), book_frame(NO, 1, [], []))
    assert tops[0].mid == D("0.455") and tops[0].microprice == D("0.455")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(), st.integers(min_value=1, max_value=99), st.integers(min_value=0, max_value=3)
        ),
        max_size=60,
    )
)
def test_the_book_matches_a_plain_dict_model(changes: list[tuple[bool, int, int]]) -> None:
    book = OrderBook(YES, MARKET)
    book.apply_snapshot([], [], 1, None)
    model: dict[bool, dict[int, int]] = {True: {}, False: {}}
    for is_bid, cents, size in changes:
        assert book.apply_changes([(is_bid, cents * 100, size * 10**6)], 2) is None
        if size:
            model[is_bid][cents] = size
        else:
            model[is_bid].pop(cents, None)
    assert [(lvl.price, lvl.size) for lvl in book.bids()] == [
        (D(c) / 100, D(s)) for c, s in sorted(model[True].items(), reverse=True)
    ]
    assert [(lvl.price, lvl.size) for lvl in book.asks()] == [
        (D(c) / 100, D(s)) for c, s in sorted(model[False].items())
    ]


@pytest.mark.parametrize("tick", ["0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001"])
def test_every_venue_tick_size_is_exact(tick: str) -> None:
    h = Harness(info(tick))
    price = D("0.5") + D(tick)
    h.feed(book_frame(YES, 1, [(str(price), "1")], []))
    assert h.rejected == [] and h.book(YES).best_bid() == (price, D(1)) and h.book(YES).tick_size == D(tick)


def price_changes_frame(ts: int, *changes: tuple[str, str, str, str]) -> bytes:
    """A current-schema price_change: every change of the market at `ts`, (asset, side, price, size)."""
    return json.dumps(
        {
            "event_type": "price_change",
            "market": MARKET,
            "timestamp": str(ts),
            "price_changes": [
                {"asset_id": a, "side": side, "price": p, "size": s, "hash": "h"} for a, side, p, s in changes
            ],
        }
    ).encode()


def test_a_current_schema_frame_touching_one_token_publishes_at_once() -> None:
    # The frame holds every change of its market at that timestamp: waiting for the other token
    # would show the bots this update only with the market's next event (one frame late).
    h = Harness(info())
    mirrored_books(h)
    tops = h.feed(price_changes_frame(2000, (YES, "SELL", "0.47", "0")))
    assert [(t.asset_id, t.ts_ms, t.best_ask) for t in tops] == [
        (YES, 2000, D("0.49")),
        (NO, 2000, D("0.55")),
    ]


def test_a_current_schema_mirrored_frame_publishes_once_per_token() -> None:
    h = Harness(info())
    mirrored_books(h)
    tops = h.feed(price_changes_frame(2000, (YES, "BUY", "0.46", "40"), (NO, "SELL", "0.54", "40")))
    assert [(t.asset_id, t.seq) for t in tops] == [(YES, 2), (NO, 2)]
    assert tops[0].bid_sum == tops[1].bid_sum == D("0.99")


def test_an_old_schema_frame_of_one_token_still_waits_for_its_mirror() -> None:
    h = Harness(info())
    mirrored_books(h)
    assert h.feed(change_frame(YES, 2000, ("SELL", "0.47", "0"))) == []
