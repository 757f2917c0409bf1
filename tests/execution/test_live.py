"""The live CLOB adapter with the real py-clob-client-v2 against the local trading venue
(pets.pipelines.venue_sim.user_server): L2 HMAC headers, EIP-712 V2 signatures (recovered against the
regular or neg-risk exchange), exact signed amounts, batches, cancels, heartbeats, opt-in refusals."""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from eth_account import Account

from pets.execution.live import (
    API_KEYS,
    LiveExchange,
    LiveRefusedError,
    clob_client,
    live_environment,
    preflight,
    require_live,
)
from pets.pipelines.venue_sim.user_server import LocalTradingVenue, binary_market, serve_trading_venue
from pets.schemas.config import TradingMode, load_config
from pets.schemas.orders import ApprovedOrder, OrderAction, OrderIntent, OrderType, Side
from pets.settings import project_root

D = Decimal
TEST_KEY = "0x" + "4c" * 32  # a throwaway key made up for these tests, not a secret
ADDRESS = Account.from_key(TEST_KEY).address
SECRET = base64.urlsafe_b64encode(b"local-clob-test-secret-32-bytes!").decode()
CREDS = {"api_key": "test-api-key", "api_secret": SECRET, "api_passphrase": "pass"}
MARKET, YES, NO = "0xcond1", "1234", "5678"
NEG_MARKET, NEG_YES, NEG_NO = "0xcond2", "2001", "2002"
ENV = {
    "PETS_LIVE": "true",
    "PETS_PRIVATE_KEY": TEST_KEY,
    "PETS_FUNDER": ADDRESS,
    "PETS_SIGNATURE_TYPE": "0",
    "PETS_CLOB_API_KEY": "test-api-key",
    "PETS_CLOB_SECRET": SECRET,
    "PETS_CLOB_PASSPHRASE": "pass",
}
CONFIG = load_config(project_root() / "config")
LIVE_CONFIG = msgspec.structs.replace(
    CONFIG,
    system=msgspec.structs.replace(
        CONFIG.system, trading=msgspec.structs.replace(CONFIG.system.trading, mode=TradingMode.LIVE)
    ),
)


def tokens() -> list:  # type: ignore[type-arg]
    return binary_market(MARKET, YES, NO) + binary_market(NEG_MARKET, NEG_YES, NEG_NO, "0.001", neg_risk=True)


@pytest.fixture
def venue() -> Iterator[LocalTradingVenue]:
    with serve_trading_venue(tokens(), **CREDS) as server:
        yield server


def exchange_at(venue: LocalTradingVenue, env: dict[str, str] = ENV) -> LiveExchange:
    return LiveExchange(clob_client(venue.rest_url, require_live(True, env, LIVE_CONFIG)))


def approved(
    client_id: str,
    side: Side = "BUY",
    price: str = "0.45",
    size: str = "10",
    *,
    action: OrderAction = "place",
    asset: str = YES,
    market: str = MARKET,
    order_type: OrderType = "GTC",
    post_only: bool = True,
    replaces: str | None = None,
    bot: str = "bot_05",
    created_ns: int = 1,
) -> ApprovedOrder:
    intent = OrderIntent(
        client_order_id=client_id,
        bot_id=bot,
        strategy_type="market_making",
        action=action,
        market=market,
        asset_id=asset,
        side=side,
        price=D(price),
        size=D(size),
        order_type=order_type,
        post_only=post_only,
        replaces=replaces,
        source_ts_ms=1,
        created_ns=created_ns,
    )
    return ApprovedOrder(intent=intent, size=D(size), approved_ns=1, sequence=1)


PIECES = {
    "the --live flag": ("flag", None),
    "PETS_LIVE": ("PETS_LIVE", None),
    "trading.mode: live": ("mode", None),
    "PETS_PRIVATE_KEY": ("PETS_PRIVATE_KEY", None),
    "PETS_FUNDER": ("PETS_FUNDER", None),
    "PETS_SIGNATURE_TYPE": ("PETS_SIGNATURE_TYPE", None),
    "PETS_CLOB_PASSPHRASE": ("PETS_CLOB_PASSPHRASE", None),  # two of three API credentials
}


@pytest.mark.parametrize("named", list(PIECES))
def test_live_is_refused_naming_each_missing_piece_and_no_secret(named: str) -> None:
    removed = PIECES[named][0]
    env = {k: v for k, v in ENV.items() if k != removed}
    config = CONFIG if removed == "mode" else LIVE_CONFIG
    with pytest.raises(LiveRefusedError) as refused:
        require_live(removed != "flag", env, config)
    message = str(refused.value)
    assert named in message
    others = [n for n in PIECES if n != named]
    assert not any(other in message for other in others)
    assert TEST_KEY not in message and SECRET not in message


def test_a_complete_opt_in_gives_the_wallet_without_showing_secrets(tmp_path: Path) -> None:
    wallet = require_live(True, ENV, LIVE_CONFIG)
    assert (wallet.funder, wallet.signature_type, wallet.api_key) == (ADDRESS, 0, "test-api-key")
    assert TEST_KEY not in repr(wallet) and SECRET not in repr(wallet)
    no_creds = {k: v for k, v in ENV.items() if k not in API_KEYS}
    assert require_live(True, no_creds, LIVE_CONFIG).api_key is None  # derived with the key (L1)
    with pytest.raises(LiveRefusedError, match="must be 0, 1, 2 or 3"):
        require_live(True, {**ENV, "PETS_SIGNATURE_TYPE": "7"}, LIVE_CONFIG)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"PETS_PRIVATE_KEY={TEST_KEY}\nPETS_FUNDER='{ADDRESS}'\nPETS_SIGNATURE_TYPE=1\n")
    merged = live_environment({"PETS_SIGNATURE_TYPE": "2"}, secrets)  # the environment wins
    assert (merged["PETS_FUNDER"], merged["PETS_SIGNATURE_TYPE"]) == (ADDRESS, "2")


def test_api_credentials_are_derived_with_the_key_when_not_given(venue: LocalTradingVenue) -> None:
    no_creds = {k: v for k, v in ENV.items() if k not in API_KEYS}
    client = clob_client(venue.rest_url, require_live(True, no_creds, LIVE_CONFIG))
    assert client.creds.api_key == "test-api-key"
    assert [path for _, path, _, _ in venue.requests][:1] == ["/auth/api-key"]
    preflight(client)  # the derived credentials pass the venue's L2 check


def test_preflight_checks_the_venue_version_and_the_collateral(venue: LocalTradingVenue) -> None:
    client = clob_client(venue.rest_url, require_live(True, ENV, LIVE_CONFIG))
    preflight(client)
    asked = [(path, query) for _, path, query, _ in venue.requests]
    assert ("/balance-allowance", {"asset_type": "COLLATERAL", "signature_type": "0"}) in asked
    venue.balance = "0"
    with pytest.raises(LiveRefusedError, match="no pUSD balance"):
        preflight(client)
    venue.balance, venue.allowance = "5000000", "0"
    with pytest.raises(LiveRefusedError, match="no pUSD allowance"):
        preflight(client)
    venue.version = 1
    with pytest.raises(LiveRefusedError, match="/version 1"):
        preflight(client)


def test_signed_amounts_are_exact_and_signed_for_the_right_exchange(venue: LocalTradingVenue) -> None:
    exchange = exchange_at(venue)
    # 1.13 shares: the client's float helper would sign 1.12 (floor(1.13 * 100) = 112)
    assert exchange.on_order(approved("a", "SELL", "0.57", "1.13", post_only=False), 1_000) == []
    assert (
        exchange.on_order(approved("b", "BUY", "0.455", "7.77", asset=NEG_NO, market=NEG_MARKET), 1_001) == []
    )
    [sell, neg_buy] = venue.orders.values()  # the venue recovered each signer for its exchange domain
    assert (sell.side, sell.size, sell.price, sell.order_type) == ("SELL", D("1.13"), D("0.57"), "GTC")
    assert (neg_buy.side, neg_buy.size, neg_buy.price) == ("BUY", D("7.77"), D("0.455"))
    posted = [body for method, path, _, body in venue.requests if path == "/order"]
    assert (posted[0]["order"]["makerAmount"], posted[0]["order"]["takerAmount"]) == ("1130000", "644100")
    assert (posted[1]["order"]["makerAmount"], posted[1]["order"]["takerAmount"]) == ("3535350", "7770000")
    assert [p["postOnly"] for p in posted] == [False, True] and posted[0]["owner"] == "test-api-key"
    assert set(exchange.open) == {"a", "b"}
    restored = pickle.loads(pickle.dumps(exchange))  # what a Bytewax recovery snapshot keeps
    assert restored.client is None and set(restored.open) == {"a", "b"}


def test_refusals_by_the_venue_and_before_sending(venue: LocalTradingVenue) -> None:
    exchange = exchange_at(venue)
    venue.refuse_next("not enough balance / allowance")
    [refused] = exchange.on_order(approved("a"), 1)
    assert refused.kind == "reject" and "not enough balance / allowance" in (refused.reason or "")
    [stale] = exchange.on_order(approved("b", price="0.455"), 2)  # the venue's tick is 0.01
    assert stale.kind == "reject" and "tick grid 0.01" in (stale.reason or "")
    [unknown] = exchange.on_order(approved("c", asset="999"), 3)
    assert unknown.kind == "reject" and "token 999" in (unknown.reason or "")
    assert exchange.on_order(approved("a"), 4) == []  # a re-delivered approval is not sent again
    assert venue.orders == {} and exchange.open == {}


def test_batches_cancels_cancel_all_and_heartbeats(venue: LocalTradingVenue) -> None:
    exchange = exchange_at(venue)
    places = [approved(f"p{n}", price=f"0.{10 + n}", post_only=False) for n in range(20)]
    assert exchange.on_orders(places, 1) == []
    batches = [
        len(body) for method, path, _, body in venue.requests if path == "/orders" and method == "POST"
    ]
    assert batches == [15, 5] and len(venue.open_orders()) == 20

    [cancel] = exchange.on_order(approved("x", action="cancel", replaces="p0"), 2)
    assert (cancel.client_order_id, cancel.kind, cancel.leaves_qty) == ("p0", "cancel", D(0))
    [refused] = exchange.on_order(approved("y", action="cancel", replaces="p0"), 3)
    assert refused.kind == "reject" and "not open" in (refused.reason or "")
    replaced, _ = exchange.on_order(approved("p1b", price="0.12", action="replace", replaces="p1"), 4), None
    assert [(r.client_order_id, r.kind) for r in replaced] == [("p1", "cancel")] and "p1b" in exchange.open

    other = exchange.on_orders([approved("q1", bot="bot_07"), approved("q2", bot="bot_07")], 5)
    assert other == []
    bot_halt = exchange.on_order(approved("h1", action="cancel_all", bot="bot_07"), 6)
    assert sorted(r.client_order_id for r in bot_halt) == ["q1", "q2"]
    assert ("DELETE", "/orders") in [(m, p) for m, p, _, _ in venue.requests]
    halt = exchange.on_order(approved("h2", action="cancel_all", bot="*"), 7)
    assert sorted(r.client_order_id for r in halt) == sorted([f"p{n}" for n in range(2, 20)] + ["p1b"])
    assert {r.kind for r in halt} == {"cancel"} and venue.open_orders() == [] and exchange.open == {}

    assert exchange.heartbeat() == "hb-1" and exchange.heartbeat() == "hb-2"
    beats = [body for _, path, _, body in venue.requests if path == "/v1/heartbeats"]
    assert beats == [{"heartbeat_id": ""}, {"heartbeat_id": "hb-1"}]  # each heartbeat chains the last id


def test_a_wrong_api_secret_is_refused_by_the_venue(venue: LocalTradingVenue) -> None:
    wrong = {**ENV, "PETS_CLOB_SECRET": base64.urlsafe_b64encode(b"x" * 32).decode()}
    [report] = exchange_at(venue, wrong).on_order(approved("a"), 1)
    assert report.kind == "reject" and "HTTP 401" in (report.reason or "")
