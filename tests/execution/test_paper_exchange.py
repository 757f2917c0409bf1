"""The paper exchange on scripted books: taker walks, validation, the queue model, cancels, expiry."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from exec_helpers import ASSET, MARKET, T0, Books, D, exchange, fills, kinds, order

from pets.execution.paper_exchange import PaperExchange


def _fee(qty: str, price: str) -> Decimal:
    """Venue formula, written out: qty x 0.03 x p x (1 - p), cut to 1e-6."""
    q, p = D(qty), D(price)
    return (q * D("0.03") * p * (1 - p)).quantize(D("0.000001"), rounding="ROUND_FLOOR")


def _resting_buy(ex: PaperExchange, price: str = "0.45", size: str = "50") -> str:
    approved = order("BUY", price, size, post_only=True)
    assert kinds(ex.on_order(approved, T0)) == ["ack"]
    return approved.intent.client_order_id


# ---------------------------------------------------------------------------------------- takers


def test_fok_buy_walks_the_asks_level_by_level_with_a_fee_per_level() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100", "0.51": "50", "0.53": "100"})
    reports = exchange(books).on_order(order("BUY", "0.52", "120", order_type="FOK"), T0)
    assert kinds(reports) == ["ack", "partial_fill", "fill"]
    assert fills(reports) == [(D("100.00"), D("0.5")), (D("20.00"), D("0.51"))]
    assert [r.fee for r in reports[1:]] == [_fee("100", "0.50"), _fee("20", "0.51")]
    assert reports[1].fee == D("0.75") and reports[2].fee == D("0.14994")  # 20 x .03 x .51 x .49
    assert [r.liquidity for r in reports[1:]] == ["taker", "taker"]
    assert reports[-1].cum_qty == D("120") and reports[-1].leaves_qty == 0


def test_fok_that_cannot_fill_completely_is_rejected_without_fills() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100", "0.51": "50", "0.53": "100"})
    reports = exchange(books).on_order(order("BUY", "0.51", "200", order_type="FOK"), T0)
    assert kinds(reports) == ["reject"]
    assert "150.00 of 200 available" in (reports[0].reason or "")


def test_fak_fills_what_it_can_and_cancels_the_rest() -> None:
    books = Books()
    books.set({"0.48": "100", "0.47": "30"}, {"0.50": "100"})
    reports = exchange(books).on_order(order("SELL", "0.47", "200", order_type="FAK"), T0)
    assert kinds(reports) == ["ack", "partial_fill", "partial_fill", "cancel"]
    assert fills(reports) == [(D("100.00"), D("0.48")), (D("30.00"), D("0.47"))]
    assert reports[-1].leaves_qty == 0 and reports[-1].cum_qty == D("130")


def test_marketable_gtc_takes_then_rests_the_remainder_at_its_limit() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "40", "0.55": "100"})
    ex = exchange(books)
    reports = ex.on_order(order("BUY", "0.50", "100"), T0)
    assert kinds(reports) == ["ack", "partial_fill"]
    assert fills(reports) == [(D("40.00"), D("0.5"))]
    resting = ex.orders[reports[0].client_order_id]
    assert resting.leaves == D("60") and resting.queue_ahead == 0  # nobody else bids 0.50


def test_taken_liquidity_is_not_offered_again_until_the_level_updates() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100", "0.52": "100"})
    ex = exchange(books)
    first = ex.on_order(order("BUY", "0.50", "60", order_type="FAK"), T0)
    assert fills(first) == [(D("60.00"), D("0.5"))]
    second = ex.on_order(order("BUY", "0.50", "60", order_type="FAK"), T0)
    assert fills(second) == [(D("40.00"), D("0.5"))]  # only what the first one left
    books.level("SELL", "0.50", "90", T0 + 1)  # the venue updated the level: its size is fresh again
    third = ex.on_order(order("BUY", "0.50", "60", order_type="FOK"), T0 + 1)
    assert fills(third) == [(D("60.00"), D("0.5"))]


def test_without_liquidity_consumption_the_same_size_fills_again() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100"})
    ex = exchange(books, consume_liquidity=False)
    for _ in range(2):
        assert fills(ex.on_order(order("BUY", "0.50", "100", order_type="FOK"), T0)) == [
            (D("100.00"), D("0.5"))
        ]


# ------------------------------------------------------------------------------------ validation


def test_post_only_that_would_cross_is_rejected_and_one_that_does_not_rests() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100"})
    ex = exchange(books)
    crossing = ex.on_order(order("BUY", "0.50", "10", post_only=True), T0)
    assert kinds(crossing) == ["reject"] and "would cross" in (crossing[0].reason or "")
    resting = ex.on_order(order("BUY", "0.49", "10", post_only=True), T0)
    assert kinds(resting) == ["ack"] and len(ex.orders) == 1


def test_venue_rules_reject_with_a_reason() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100"})
    ex = exchange(books)
    cases = {
        "0.485": ("BUY", "0.485", "10", "GTC"),  # off the 0.01 grid
        "below the market minimum": ("BUY", "0.40", "4.99", "GTC"),  # resting minimum 5 shares
        "marketable notional": ("BUY", "0.50", "1.5", "FOK"),  # $0.75 < $1
        "multiple of 0.01": ("BUY", "0.40", "10.005", "GTC"),
    }
    for expected, (side, price, size, order_type) in cases.items():
        reports = ex.on_order(order(side, price, size, order_type=order_type), T0)
        assert kinds(reports) == ["reject"], expected
        assert expected in (reports[0].reason or ""), reports[0].reason
    assert "no order book" in (exchange(Books()).on_order(order("BUY", "0.4", "10"), T0)[0].reason or "")


def test_a_price_off_the_books_grid_is_refused_whatever_tick_the_order_assumes() -> None:
    # the book has seen only 0.01-grid prices (no stated tick: a recording); a bot that took the tick
    # to be 0.005 quotes 0.315, which the venue refuses on a 0.01 market
    books = Books()
    books.set({"0.30": "100"}, {"0.33": "100"})
    ex = exchange(books)
    approved = order("BUY", "0.315", "10")
    approved = msgspec.structs.replace(
        approved, intent=msgspec.structs.replace(approved.intent, tick_size=D("0.005"))
    )
    refused = ex.on_order(approved, T0)
    assert kinds(refused) == ["reject"]
    assert refused[0].reason == "price 0.315 is not on the 0.01 tick grid within (0, 1)"
    books.set({"0.039": "100"}, {"0.05": "100"})  # a tail price: the venue's 0.001 tail tick
    assert kinds(ex.on_order(order("BUY", "0.035", "10"), T0)) == ["ack"]


def test_a_sell_needs_tokens_held_and_not_already_offered() -> None:
    class Wallet:
        def free_cash(self) -> Decimal:
            return D(1000)

        def token_balance(self, bot_id: str, asset_id: str) -> Decimal:
            return D(30)

    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100"})
    ex = exchange(books, balances=Wallet())
    assert kinds(ex.on_order(order("SELL", "0.55", "20"), T0)) == ["ack"]
    refused = ex.on_order(order("SELL", "0.56", "20"), T0)  # 30 held, 20 already offered
    assert kinds(refused) == ["reject"] and "not enough balance" in (refused[0].reason or "")
    too_dear = ex.on_order(order("BUY", "0.49", "2100"), T0)  # 1029 > 1000 of cash
    assert kinds(too_dear) == ["reject"] and "free cash" in (too_dear[0].reason or "")


def test_a_buy_needs_the_cash_for_the_fee_at_the_market_s_own_rate() -> None:
    class Wallet:
        def free_cash(self) -> Decimal:
            return D("10.3")

        def token_balance(self, bot_id: str, asset_id: str) -> Decimal:
            return D(0)

    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100"})
    ex = exchange(books, balances=Wallet())
    ex.set_market(MARKET, "default", D("0.1"))
    # 20 x 0.50 = 10 + the fee at the market's 0.1: 20 x 0.1 x 0.25 = 0.5 -> 10.5 > 10.3 (at the
    # category's 0.03 the fee would be 0.15 and the order would pass)
    refused = ex.on_order(order("BUY", "0.50", "20", order_type="FOK"), T0)
    assert kinds(refused) == ["reject"] and "buy 10.5" in (refused[0].reason or "")


def test_a_redelivered_approval_is_applied_once() -> None:
    books = Books()
    books.set({"0.48": "100"}, {"0.50": "100"})
    ex = exchange(books)
    approved = order("BUY", "0.50", "10", order_type="FOK")
    assert kinds(ex.on_order(approved, T0)) == ["ack", "fill"]
    assert ex.on_order(approved, T0) == []


# ------------------------------------------------------------------------------------ queue model


def test_resting_order_waits_for_the_queue_ahead_then_fills_by_the_excess_decrease() -> None:
    books = Books()
    books.set({"0.45": "100", "0.44": "80"}, {"0.47": "100"})
    ex = exchange(books, trade_fraction="1")
    client_id = _resting_buy(ex, "0.45", "50")
    assert ex.orders[client_id].queue_ahead == 100 * 10**6
    books.level("BUY", "0.45", "60", T0 + 1)  # 40 traded or cancelled ahead of us
    assert ex.on_book_update(ASSET, T0 + 1) == []
    books.level("BUY", "0.45", "90", T0 + 2)  # 30 joined behind us: the queue ahead stays 60
    assert ex.on_book_update(ASSET, T0 + 2) == [] and ex.orders[client_id].queue_ahead == 60 * 10**6
    books.level("BUY", "0.45", "20", T0 + 3)  # -70: the 60 ahead are gone, 10 more traded through us
    reports = ex.on_book_update(ASSET, T0 + 3)
    assert kinds(reports) == ["partial_fill"] and fills(reports) == [(D("10.00"), D("0.45"))]
    assert reports[0].liquidity == "maker" and reports[0].fee == 0
    assert reports[0].rebate == (D(10) * D("0.03") * D("0.45") * D("0.55") * D("0.2")).quantize(D("0.000001"))
    books.level("BUY", "0.45", "0", T0 + 4)  # the remaining 20 displayed go: we fill 20 more
    assert fills(ex.on_book_update(ASSET, T0 + 4)) == [(D("20.00"), D("0.45"))]
    assert ex.orders[client_id].leaves == D(20)


def test_trade_fraction_takes_only_that_share_of_the_excess_as_trades() -> None:
    books = Books()
    books.set({"0.45": "10"}, {"0.47": "100"})
    ex = exchange(books, trade_fraction="0.5")
    _resting_buy(ex, "0.45", "50")
    books.level("BUY", "0.45", "0", T0 + 1)  # -10: exactly the queue ahead, nothing for us
    assert ex.on_book_update(ASSET, T0 + 1) == []
    books.level("BUY", "0.45", "30", T0 + 2)
    assert ex.on_book_update(ASSET, T0 + 2) == []
    books.level("BUY", "0.45", "0", T0 + 3)  # -30 beyond the queue: half of it were trades
    assert fills(ex.on_book_update(ASSET, T0 + 3)) == [(D("15.00"), D("0.45"))]


def test_trade_through_fills_fully_at_the_resting_price() -> None:
    books = Books()
    books.set({"0.45": "100"}, {"0.47": "100"})
    ex = exchange(books)
    client_id = _resting_buy(ex, "0.45", "50")
    books.set({"0.42": "100"}, {"0.44": "100"}, ts=T0 + 5)  # the market fell through our bid
    reports = ex.on_book_update(ASSET, T0 + 5)
    assert kinds(reports) == ["fill"] and fills(reports) == [(D("50"), D("0.45"))]
    assert client_id not in ex.orders


def test_without_queue_position_the_first_decrease_at_the_price_fills() -> None:
    books = Books()
    books.set({"0.45": "100"}, {"0.47": "100"})
    ex = exchange(books, queue_position=False, trade_fraction="1")
    _resting_buy(ex, "0.45", "50")
    books.level("BUY", "0.45", "70", T0 + 1)
    assert fills(ex.on_book_update(ASSET, T0 + 1)) == [(D("30.00"), D("0.45"))]


def test_sell_side_queue_mirrors_the_buy_side() -> None:
    books = Books()
    books.set({"0.45": "100"}, {"0.47": "40"})
    ex = exchange(books)
    assert kinds(ex.on_order(order("SELL", "0.47", "20", post_only=True), T0)) == ["ack"]
    books.level("SELL", "0.47", "30", T0 + 1)
    assert ex.on_book_update(ASSET, T0 + 1) == []
    books.set({"0.47": "5"}, {"0.48": "100"}, ts=T0 + 2)  # a bid at our ask: a counterparty is there
    assert fills(ex.on_book_update(ASSET, T0 + 2)) == [(D("20"), D("0.47"))]


# ------------------------------------------------------------------------------- cancels, expiry


def test_cancel_replace_and_cancel_all() -> None:
    books = Books()
    books.set({"0.45": "100"}, {"0.50": "100"})
    ex = exchange(books)
    a = _resting_buy(ex, "0.44", "10")
    b = ex.on_order(order("BUY", "0.43", "10", bot_id="bot_08"), T0)[0].client_order_id
    c = _resting_buy(ex, "0.42", "10")
    cancel = order("BUY", "0.44", "10", action="cancel", replaces=a)
    assert [(r.kind, r.client_order_id) for r in ex.on_order(cancel, T0)] == [("cancel", a)]
    refused = ex.on_order(order("BUY", "0.44", "10", action="cancel", replaces=a), T0)
    assert kinds(refused) == ["reject"] and "not open" in (refused[0].reason or "")
    replace = order("BUY", "0.41", "10", action="replace", replaces=c, post_only=True)
    assert [(r.kind, r.client_order_id) for r in ex.on_order(replace, T0)] == [
        ("cancel", c),
        ("ack", replace.intent.client_order_id),
    ]
    everything = order("SELL", "0", "0", action="cancel_all", bot_id="*", market="*")
    cancelled = ex.on_order(everything, T0)
    assert sorted(r.client_order_id for r in cancelled) == sorted([b, replace.intent.client_order_id])
    assert kinds(cancelled) == ["cancel", "cancel"] and ex.orders == {}


def test_cancel_all_of_one_bot_leaves_the_others() -> None:
    books = Books()
    books.set({"0.45": "100"}, {"0.50": "100"})
    ex = exchange(books)
    _resting_buy(ex, "0.44", "10")
    other = ex.on_order(order("BUY", "0.43", "10", bot_id="bot_08"), T0)[0].client_order_id
    assert len(ex.cancel_all("bot_05")) == 1 and list(ex.orders) == [other]


def test_gtd_orders_expire_and_a_resolved_market_cancels_its_orders() -> None:
    books = Books()
    books.set({"0.45": "100"}, {"0.50": "100"})
    ex = exchange(books)
    gtd = order("BUY", "0.44", "10", order_type="GTD", expires_at_ms=T0 + 60_000)
    assert kinds(ex.on_order(gtd, T0)) == ["ack"]
    gtc = _resting_buy(ex, "0.43", "10")
    assert ex.on_timer(T0 + 59_999) == []
    expired = ex.on_timer(T0 + 60_000)
    assert [(r.kind, r.client_order_id) for r in expired] == [("expire", gtd.intent.client_order_id)]
    resolved = ex.on_market_resolved(MARKET, T0 + 70_000)
    assert [(r.kind, r.client_order_id, r.reason) for r in resolved] == [("cancel", gtc, "market resolved")]


def test_report_ids_are_deterministic_and_unique() -> None:
    def run() -> list[str]:
        books = Books()
        books.set({"0.48": "100"}, {"0.50": "100", "0.51": "50"})
        ex = exchange(books)
        ids = [r.report_id for r in ex.on_order(order("BUY", "0.51", "200", client_order_id="x-1"), T0)]
        books.set({"0.48": "100"}, {"0.50": "5"}, ts=T0 + 1)
        return ids + [r.report_id for r in ex.on_book_update(ASSET, T0 + 1)]

    first = run()
    assert first == run() and len(set(first)) == len(first) == 4
    assert first == ["x-1:ack:1", "x-1:partial_fill:1", "x-1:partial_fill:2", "x-1:fill:1"]
