"""PETS's own deterministic market simulator: venue-shaped market-channel frames from a seed.

Same seed and parameters -> the same frames, byte for byte (one `random.Random(seed)` drives
everything, in a fixed order), so `pets run` on a fresh clone is reproducible without any data.

What it simulates (pets.yaml `simulator`):
- `binary_markets` YES/NO markets: a fair probability follows a random walk in log-odds whose
  volatility switches between a calm and a volatile regime; the YES book is a ladder of levels
  around it (spread 1-3 ticks, wider when volatile, sizes growing with depth), the NO book its
  mirror (a YES bid at p is a NO ask at 1 - p), as on the venue. About a fifth are tail markets
  (price 1-5 cents, tick 0.001). Takers trade at the best level (`last_trade_price` plus the level
  decrease), makers add and cancel size.
- One negative-risk event of `neg_risk_outcomes` markets whose YES probabilities sum to 1
  (softmax of log-odds random walks), each market with its own mirrored YES/NO books.
- Mispricings, the way they arise in practice, from a book that lags a jump: in a binary market
  the NO book freezes for a moment while YES jumps, so YES ask + NO ask < 1 (jump down) or the
  bids sum above 1 (jump up); in the event, one outcome's books freeze while its probability jumps
  and the others reprice, so the YES asks sum below 1 (or the YES bids above 1, i.e. the NO asks
  below N - 1). Each lasts a few hundred milliseconds to a few seconds, with limited size.
- Resolutions: a share of the markets (and the event) resolve during the span: the price runs to
  the outcome, then `market_resolved` names the winning token; nothing trades after that.
Frames: `book` snapshots (at the start and periodically; both sides best-last as the venue sends
them), `price_change` in the current `price_changes` schema (one frame per market and step with
the YES and NO entries and each token's best bid/ask; `wire="changes"`: the per-token `changes` schema
of the 2025 recordings, one frame per token), `last_trade_price`, `market_resolved`; plus
`MarketInfo` for every market. It is the project's one market generator: `SimParams.feed` sizes it
for tests and benchmarks of the market-data path, `take` cuts a run at whole steps. Prices use
integer units of 1e-4 internally, so every price is on its tick grid and every size on the 0.01 grid.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec

from pets.schemas.config import SimulatorConfig
from pets.schemas.market_data import MarketInfo
from pets.schemas.signals import NewsItem, Signal, SignalSource, WalletFill, WhaleRanking
from pets.venue.units import price_decimal, size_decimal

AltEvent = Signal | NewsItem | WalletFill | WhaleRanking
Wire = Literal["price_changes", "changes"]

ONE: Final = 10_000  # price 1.00 in units of 1e-4
SHARE: Final = 1_000_000  # one share in size units of 1e-6
START_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z: simulated time starts here
# "esports" has no fee rate of its own in pets.yaml: those markets pay the default rate
CATEGORIES: Final = ("crypto", "sports", "politics", "geopolitics", "esports")
_ENCODE = msgspec.json.Encoder().encode

Side = dict[int, int]  # price units -> size units


@dataclass(frozen=True, slots=True)
class SimParams:
    """Every knob of the simulation; `from_config` takes the pets.yaml section, the rest are defaults."""

    seed: int = 42
    binary_markets: int = 20
    neg_risk_outcomes: int = 5
    duration_ms: int = 600_000
    step_ms: int = 100
    start_ms: int = START_MS
    levels: int = 8
    tail_share: float = 0.2
    resolve_share: float = 0.4  # of the binary markets, resolved within the span
    update_prob: tuple[float, float] = (0.3, 0.6)  # per step: calm, volatile
    trade_prob: tuple[float, float] = (0.12, 0.3)
    sigma: tuple[float, float] = (0.0015, 0.006)  # log-odds step stdev: calm, volatile
    regime_switch: tuple[float, float] = (0.002, 0.01)  # calm -> volatile, volatile -> calm
    dislocation_prob: float = 0.001  # per market and step
    snapshot_every_ms: int = 60_000
    wire: Wire = "price_changes"

    @classmethod
    def feed(cls, markets: int = 4, seed: int = 7, wire: Wire = "price_changes") -> SimParams:
        """`markets` binary markets that never resolve within a month: a steady feed to cut with `take`."""
        return cls(
            seed=seed, binary_markets=markets, neg_risk_outcomes=0, duration_ms=30 * 86_400_000,
            resolve_share=0.0, wire=wire,
        )  # fmt: skip

    @classmethod
    def from_config(cls, config: SimulatorConfig, **overrides: Any) -> SimParams:
        values: dict[str, Any] = {
            "seed": config.seed,
            "binary_markets": config.binary_markets,
            "neg_risk_outcomes": config.neg_risk_outcomes,
            "duration_ms": int(config.duration_s * 1000),
            "step_ms": config.step_ms,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def steps(self) -> int:
        return self.duration_ms // self.step_ms


@dataclass(slots=True)
class _Book:
    """One token's book."""

    asset_id: str
    bids: Side = field(default_factory=dict)
    asks: Side = field(default_factory=dict)


@dataclass(slots=True)
class _Market:
    info: MarketInfo
    yes: _Book
    no: _Book
    tick: int
    depth: int  # typical size of the best level, in shares
    resolve_step: int | None
    snapshot_phase: int
    spread_ticks: int = 1
    regime: int = 0
    frozen_until: int = -1  # step until which a lagging book stays as it was
    frozen_yes: bool = False  # the YES (and NO) books freeze (event outcome) instead of only NO
    resolved: bool = False
    winner: int | None = None  # 0 = YES, 1 = NO, decided when the run-up to resolution starts

    @property
    def condition_id(self) -> str:
        return self.info.condition_id


class MarketSimulator:
    """Generates the frames of one simulation run (`frames()`), and the markets (`markets`)."""

    def __init__(self, params: SimParams | None = None) -> None:
        self.params = params or SimParams()
        self.rng = random.Random(self.params.seed)
        self.binaries: list[_Market] = []
        self.logits: list[float] = []  # binary markets' log-odds
        self.event: list[_Market] = []
        self.event_logits: list[float] = []
        self.event_resolve_step: int | None = None
        self.event_winner: int | None = None
        self.event_regime = 0
        self._build()

    @property
    def markets(self) -> list[MarketInfo]:
        return [m.info for m in self.binaries + self.event]

    # ------------------------------------------------------------------ setup

    def _build(self) -> None:
        p, rng = self.params, self.rng
        steps = p.steps
        for i in range(p.binary_markets):
            tail = rng.random() < p.tail_share
            prob = rng.uniform(0.01, 0.05) if tail else rng.uniform(0.15, 0.85)
            if tail and rng.random() < 0.5:
                prob = 1 - prob  # a near-certain favourite: its NO token is the tail
            tick = 10 if tail else 100
            resolve = rng.randrange(steps // 3, steps) if rng.random() < p.resolve_share else None
            category = CATEGORIES[i % len(CATEGORIES)]
            info = self._info(
                f"m{i}",
                f"Simulated binary market {i} ({category})",
                category,
                tick,
                resolve,
                neg_risk_id=None,
            )
            market = _Market(
                info,
                _Book(info.token_ids[0]),
                _Book(info.token_ids[1]),
                tick,
                depth=rng.choice((50, 100, 200, 500, 1000)),
                resolve_step=resolve,
                snapshot_phase=rng.randrange(max(1, p.snapshot_every_ms // p.step_ms)),
            )
            self.binaries.append(market)
            self.logits.append(math.log(prob / (1 - prob)))
        n = p.neg_risk_outcomes
        if n >= 2:
            group = "0x" + self._hex("event", 32)
            self.event_resolve_step = rng.randrange(steps * 2 // 3, steps) if rng.random() < 0.7 else None
            weights = [rng.uniform(0.5, 3.0) for _ in range(n)]
            self.event_logits = [math.log(w) for w in weights]
            for k in range(n):
                info = self._info(
                    f"e{k}",
                    f"Simulated event: outcome {k} wins?",
                    "politics",
                    100,
                    self.event_resolve_step,
                    neg_risk_id=group,
                )
                self.event.append(
                    _Market(
                        info,
                        _Book(info.token_ids[0]),
                        _Book(info.token_ids[1]),
                        100,
                        depth=rng.choice((100, 200, 400)),
                        resolve_step=self.event_resolve_step,
                        snapshot_phase=rng.randrange(max(1, p.snapshot_every_ms // p.step_ms)),
                    )
                )

    def _hex(self, label: str, nbytes: int) -> str:
        return hashlib.blake2b(f"{self.params.seed}|{label}".encode(), digest_size=nbytes).hexdigest()

    def _info(
        self,
        label: str,
        question: str,
        category: str,
        tick: int,
        resolve_step: int | None,
        neg_risk_id: str | None,
    ) -> MarketInfo:
        p = self.params
        token = [str(int(self._hex(f"{label}|{side}", 32), 16)) for side in ("yes", "no")]
        end_ms = p.start_ms + (resolve_step if resolve_step is not None else p.steps * 2) * p.step_ms
        return MarketInfo(
            condition_id="0x" + self._hex(label, 32),
            market_id=str(int(self._hex(label + "|id", 3), 16)),
            question=question,
            slug=f"sim-{label}",
            category=category,
            token_ids=(token[0], token[1]),
            outcomes=("Yes", "No"),
            neg_risk=neg_risk_id is not None,
            neg_risk_market_id=neg_risk_id,
            tick_size=price_decimal(tick),
            min_order_size=Decimal(5),
            end_date_ms=end_ms,
            active=True,
            closed=False,
            accepting_orders=True,
        )

    # ------------------------------------------------------------------ the run

    def frames(self) -> Iterator[bytes]:
        """Every frame of the run, in time order (JSON bytes of one venue event each)."""
        for _, frames in self._steps():
            yield from frames

    def take(self, count: int) -> list[bytes]:
        """The first frames of the run, at least `count`, ending at a step's end: the books then hold
        exactly what the frames describe (`book` is the oracle)."""
        taken: list[bytes] = []
        for _, frames in self._steps():
            taken += frames
            if len(taken) >= count:
                break
        return taken

    def book(self, asset_id: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """A token's book now as ({price: size} bids, asks) in Decimals."""
        [book] = [b for m in self.binaries + self.event for b in (m.yes, m.no) if b.asset_id == asset_id]
        return _decimals(book.bids), _decimals(book.asks)

    def events(self) -> Iterator[bytes | AltEvent]:
        """The frames of `frames()` (the same bytes) with the alternative data the signal-driven bots
        need among them, in time order: news and whale fills ahead of the price moves they announce,
        esports game events ahead of the moves of esports markets, model forecasts, the whale ranking
        and the whales' fills (AltData)."""
        alt = AltData(self)
        held: deque[tuple[int, list[bytes]]] = deque()  # the look-ahead: a move is seen before it is sent
        for step, frames in self._steps():
            alt.observe(step)
            held.append((step, frames))
            if len(held) > alt.lookahead:
                first, batch = held.popleft()
                yield from alt.due(first)
                yield from batch
        for first, batch in held:
            yield from alt.due(first)
            yield from batch

    def probabilities(self) -> list[tuple[_Market, float]]:
        """Each unresolved market with its YES token's fair probability now."""
        out = [(m, self._prob(x)) for m, x in zip(self.binaries, self.logits, strict=True) if not m.resolved]
        if self.event and not self.event[0].resolved:
            out += list(zip(self.event, self._softmax(), strict=True))
        return out

    def _steps(self) -> Iterator[tuple[int, list[bytes]]]:
        p = self.params
        snapshot_steps = max(1, p.snapshot_every_ms // p.step_ms)
        for step in range(p.steps + 1):
            ts = p.start_ms + step * p.step_ms
            frames: list[bytes] = []
            for index, market in enumerate(self.binaries):
                if not market.resolved:
                    frames += self._binary_step(index, market, step, ts, snapshot_steps)
            if self.event and not self.event[0].resolved:
                frames += self._event_step(step, ts, snapshot_steps)
            yield step, frames

    def _binary_step(
        self, index: int, m: _Market, step: int, ts: int, snapshot_steps: int
    ) -> Iterator[bytes]:
        p, rng = self.params, self.rng
        if step == 0:
            self._quote(m, self._prob(self.logits[index]))
            self._mirror(m)
            yield from self._snapshots(m, ts)
            return
        if m.resolve_step is not None and step >= m.resolve_step:
            yield self._resolved(m, ts, m.winner if m.winner is not None else 0)
            return
        m.regime = self._switch(m.regime)
        logit = self.logits[index]
        forced = False
        if m.resolve_step is not None and step >= m.resolve_step - 100:  # run-up: ~10 s to the outcome
            if m.winner is None:
                m.winner = 0 if rng.random() < self._prob(logit) else 1
            target = 5.0 if m.winner == 0 else -5.0
            logit += (target - logit) * 0.05
            forced = True
        else:
            logit += rng.gauss(0, p.sigma[m.regime])
            if m.frozen_until < step and rng.random() < p.dislocation_prob:
                logit = self._dislocate(m, logit, step)
                forced = True
        self.logits[index] = logit = max(-7.0, min(7.0, logit))
        thaw = m.frozen_until == step
        if not (forced or thaw or rng.random() < p.update_prob[m.regime]):
            return
        yield from self._update(
            m, self._prob(logit), step, ts, snapshot_steps, freeze_no=m.frozen_until > step
        )

    def _event_step(self, step: int, ts: int, snapshot_steps: int) -> Iterator[bytes]:
        p, rng = self.params, self.rng
        markets = self.event
        if step == 0:
            for m, prob in zip(markets, self._softmax(), strict=True):
                self._quote(m, prob)
                self._mirror(m)
                yield from self._snapshots(m, ts)
            return
        if self.event_resolve_step is not None and step >= self.event_resolve_step:
            winner = self.event_winner if self.event_winner is not None else 0
            for k, m in enumerate(markets):
                yield self._resolved(m, ts, 0 if k == winner else 1)
            return
        self.event_regime = self._switch(self.event_regime)
        logits = self.event_logits
        forced = False
        if self.event_resolve_step is not None and step >= self.event_resolve_step - 100:
            if self.event_winner is None:
                probs = self._softmax()
                draw, acc = rng.random(), 0.0
                self.event_winner = len(probs) - 1
                for k, prob in enumerate(probs):
                    acc += prob
                    if draw < acc:
                        self.event_winner = k
                        break
            for k in range(len(logits)):
                target = 6.0 if k == self.event_winner else -6.0
                logits[k] += (target - logits[k]) * 0.05
            forced = True
        else:
            for k in range(len(logits)):
                logits[k] += rng.gauss(0, p.sigma[self.event_regime])
            if all(m.frozen_until < step for m in markets) and rng.random() < p.dislocation_prob * 2:
                j = rng.randrange(len(markets))
                jump = rng.uniform(0.4, 0.9) * (1 if rng.random() < 0.5 else -1)
                logits[j] += jump
                markets[j].frozen_until = step + rng.randrange(5, 30)
                markets[j].frozen_yes = True
                forced = True
        thawed = any(m.frozen_until == step for m in markets)
        if not (forced or thawed or rng.random() < p.update_prob[self.event_regime]):
            return
        for m, prob in zip(markets, self._softmax(), strict=True):
            if m.frozen_until > step and m.frozen_yes:
                continue  # this outcome's book lags the jump
            m.frozen_yes = m.frozen_yes and m.frozen_until > step
            yield from self._update(m, prob, step, ts, snapshot_steps, freeze_no=False)

    # ------------------------------------------------------------------ market mechanics

    def _switch(self, regime: int) -> int:
        return 1 - regime if self.rng.random() < self.params.regime_switch[regime] else regime

    @staticmethod
    def _prob(logit: float) -> float:
        return 1 / (1 + math.exp(-logit))

    def _softmax(self) -> list[float]:
        top = max(self.event_logits)
        weights = [math.exp(x - top) for x in self.event_logits]
        total = sum(weights)
        return [w / total for w in weights]

    def _dislocate(self, m: _Market, logit: float, step: int) -> float:
        """A jump of YES while the NO book lags: a mispricing of 1-6 ticks for a few steps."""
        rng = self.rng
        edge = rng.randrange(1, 7) * m.tick
        best_bid, best_ask = max(m.yes.bids, default=m.tick), min(m.yes.asks, default=ONE - m.tick)
        if rng.random() < 0.5:  # down: the new YES ask sits `edge` below the old bid
            new_ask = best_bid - edge
            mid = new_ask - m.spread_ticks * m.tick / 2
        else:  # up: the new YES bid sits `edge` above the old ask
            new_bid = best_ask + edge
            mid = new_bid + m.spread_ticks * m.tick / 2
        prob = min(max(mid / ONE, 0.002), 0.998)
        m.frozen_until = step + rng.randrange(3, 30)
        return math.log(prob / (1 - prob))

    def _quote(self, m: _Market, prob: float) -> None:
        """Move the YES ladder to `prob`: levels kept keep their size, new ones get a fresh size."""
        rng, tick, levels = self.rng, m.tick, self.params.levels
        m.spread_ticks = rng.choice((1, 1, 2) if m.regime == 0 else (2, 3, 3))
        half = m.spread_ticks * tick / 2
        mid = prob * ONE
        bid = int((mid - half) // tick) * tick
        bid = min(max(bid, tick), ONE - tick * (m.spread_ticks + 1))
        ask = bid + m.spread_ticks * tick
        bids = {
            price: m.yes.bids.get(price) or self._size(m, k)
            for k, price in enumerate(range(bid, max(bid - levels * tick, 0), -tick))
        }
        asks = {
            price: m.yes.asks.get(price) or self._size(m, k)
            for k, price in enumerate(range(ask, min(ask + levels * tick, ONE), tick))
        }
        for side in (bids, asks):
            if side and rng.random() < 0.5:  # makers add or cancel some size somewhere
                price = rng.choice(list(side))
                side[price] = max(SHARE, int(side[price] * rng.uniform(0.6, 1.5)) // 10_000 * 10_000)
        m.yes.bids, m.yes.asks = bids, asks

    def _size(self, m: _Market, depth_index: int) -> int:
        shares = m.depth * (1 + 0.6 * depth_index) * self.rng.lognormvariate(0, 0.5)
        return max(5, int(shares)) * SHARE

    def _mirror(self, m: _Market) -> None:
        m.no.bids = {ONE - price: size for price, size in m.yes.asks.items()}
        m.no.asks = {ONE - price: size for price, size in m.yes.bids.items()}

    def _trade(self, m: _Market, market: str, ts: int, freeze_no: bool) -> bytes | None:
        """A taker hits the best level of a token; the level shrinks (or goes) in the YES ladder."""
        rng = self.rng
        on_no = not freeze_no and rng.random() < 0.5
        taker_buys = rng.random() < 0.5
        yes_side = m.yes.asks if taker_buys != on_no else m.yes.bids  # a NO buy takes a YES bid's mirror
        if not yes_side:
            return None
        yes_price = min(yes_side) if yes_side is m.yes.asks else max(yes_side)
        size = min(yes_side[yes_price], rng.randrange(5, max(6, m.depth)) * SHARE)
        left = yes_side[yes_price] - size
        if left > 0:
            yes_side[yes_price] = left
        else:
            del yes_side[yes_price]
        token = m.no if on_no else m.yes
        price = ONE - yes_price if on_no else yes_price
        return _ENCODE(
            {
                "event_type": "last_trade_price",
                "asset_id": token.asset_id,
                "market": market,
                "price": _price(price),
                "size": _size_text(size),
                "side": "BUY" if taker_buys else "SELL",
                "fee_rate_bps": "0",
                "timestamp": str(ts),
                "transaction_hash": "0x"
                + hashlib.blake2b(f"{market}{ts}{price}".encode(), digest_size=32).hexdigest(),
            }
        )

    def _update(
        self, m: _Market, prob: float, step: int, ts: int, snapshot_steps: int, *, freeze_no: bool
    ) -> Iterator[bytes]:
        market = m.condition_id
        old_yes = (dict(m.yes.bids), dict(m.yes.asks))
        old_no = (dict(m.no.bids), dict(m.no.asks))
        self._quote(m, prob)
        trade = (
            self._trade(m, market, ts, freeze_no)
            if self.rng.random() < self.params.trade_prob[m.regime]
            else None
        )
        if not freeze_no:
            self._mirror(m)
        if trade is not None:
            yield trade
        if step % snapshot_steps == m.snapshot_phase:
            yield from self._snapshots(m, ts)
            return
        if self.params.wire == "changes":
            yield from self._token_changes(m, ts, ((m.yes, old_yes), (m.no, old_no)))
            return
        changes = _diff(m.yes, old_yes) + _diff(m.no, old_no)
        if changes:
            yield _ENCODE(
                {
                    "event_type": "price_change",
                    "market": market,
                    "timestamp": str(ts),
                    "price_changes": changes,
                }
            )

    def _token_changes(
        self, m: _Market, ts: int, books: tuple[tuple[_Book, tuple[Side, Side]], ...]
    ) -> Iterator[bytes]:
        for book, old in books:
            levels = [{k: c[k] for k in ("price", "side", "size")} for c in _diff(book, old)]
            if levels:
                yield _ENCODE(
                    {
                        "event_type": "price_change",
                        "asset_id": book.asset_id,
                        "market": m.condition_id,
                        "timestamp": str(ts),
                        "hash": hashlib.blake2b(f"{book.asset_id}{ts}c".encode(), digest_size=20).hexdigest(),
                        "changes": levels,
                    }
                )

    def _snapshots(self, m: _Market, ts: int) -> Iterator[bytes]:
        for book in (m.yes, m.no):
            yield _ENCODE(
                {
                    "event_type": "book",
                    "asset_id": book.asset_id,
                    "market": m.condition_id,
                    "timestamp": str(ts),
                    "hash": hashlib.blake2b(f"{book.asset_id}{ts}".encode(), digest_size=20).hexdigest(),
                    "bids": [
                        {"price": _price(p), "size": _size_text(s)} for p, s in sorted(book.bids.items())
                    ],
                    "asks": [
                        {"price": _price(p), "size": _size_text(s)}
                        for p, s in sorted(book.asks.items(), reverse=True)
                    ],
                    "tick_size": _price(m.tick),
                }
            )

    def _resolved(self, m: _Market, ts: int, winner: int) -> bytes:
        m.resolved = True
        m.yes.bids, m.yes.asks, m.no.bids, m.no.asks = {}, {}, {}, {}
        return _ENCODE(
            {
                "event_type": "market_resolved",
                "id": m.info.market_id,
                "market": m.condition_id,
                "assets_ids": list(m.info.token_ids),
                "winning_asset_id": m.info.token_ids[winner],
                "winning_outcome": m.info.outcomes[winner],
                "timestamp": str(ts),
            }
        )


def simulated_frames(
    count: int, *, markets: int = 4, seed: int = 7, wire: Wire = "price_changes"
) -> list[bytes]:
    """At least `count` frames of `markets` binary markets (`SimParams.feed`), alike for alike arguments."""
    return MarketSimulator(SimParams.feed(markets, seed, wire)).take(count)


def _decimals(side: Side) -> dict[Decimal, Decimal]:
    return {price_decimal(price): size_decimal(size) for price, size in side.items()}


def _diff(book: _Book, old: tuple[Side, Side]) -> list[dict[str, str]]:
    """price_changes entries turning `old` into the book's current levels (size "0" removes)."""
    best_bid = _price(max(book.bids)) if book.bids else "0"
    best_ask = _price(min(book.asks)) if book.asks else "1"
    out: list[dict[str, str]] = []
    for side_name, new, previous in (("BUY", book.bids, old[0]), ("SELL", book.asks, old[1])):
        for price in sorted(new.keys() | previous.keys()):
            size = new.get(price, 0)
            if size != previous.get(price, 0):
                out.append(
                    {
                        "asset_id": book.asset_id,
                        "price": _price(price),
                        "size": _size_text(size),
                        "side": side_name,
                        "best_bid": best_bid,
                        "best_ask": best_ask,
                    }
                )
    return out


_PRICE_TEXT: dict[int, str] = {}


def _price(units: int) -> str:
    text = _PRICE_TEXT.get(units)
    if text is None:
        text = _PRICE_TEXT[units] = str(price_decimal(units))
    return text


def _size_text(units: int) -> str:
    return str(size_decimal(units)) if units else "0"


class AltData:
    """The simulated alternative data of one MarketSimulator run: news items (as the feeds would put
    them on news.item) and the Signals the other signal flows would publish (signal.esports / .whale
    / .model), from its own seeded RNG (the frames stay byte for byte those of `frames()`).

    A market whose fair probability moves by `move` or more within `window` steps gets a news item
    (an esports game event for an esports market) `window` steps before the move's end, i.e. when
    the move starts. The item is a headline about the market (its question) whose wording favours
    the side that will rise ("Yes looking likely" / "unlikely": forecaster.polarity), published
    2-20 s before it is seen; `pets run` matches and forecasts it as the news flow does. The esports
    event says which token will rise and to what probability. Half of them also get a
    whale-wallet fill on that token a few steps later (a whale.signal and the WalletFill of one of
    `WHALES` simulated wallets, which a WhaleRanking ranks at the start). Every `forecast_every` steps
    each market gets a model forecast: the fair probability plus noise, with the model version.
    """

    MODEL_VERSION: Final = "sim-calibration@1"
    WHALES: Final = 5
    NEWS_SOURCE: Final = "sim-wire"
    # BM25 on the simulator's 25 near-identical questions scores the right market 3.4-6.0 and the
    # others at most 2.7 (seeds 3, 7, 42; the real universe of 16,233 markets: 9-30, docs/news.md):
    # matching at that scale, a right match's confidence is 0.76-1
    MATCH_THRESHOLD: Final = 3.0
    FULL_SCORE: Final = 4.5

    def __init__(
        self,
        sim: MarketSimulator,
        *,
        window: int = 100,
        move: float = 0.03,
        forecast_every: int = 300,
        forecast_noise: float = 0.02,
    ) -> None:
        self.sim = sim
        self.rng = random.Random(f"{sim.params.seed}|alt")
        self.window = window
        self.lookahead = window  # the events() buffer: a signal is scheduled at most this far back
        self.move = move
        self.forecast_every = forecast_every
        self.forecast_noise = forecast_noise
        self.history: dict[str, deque[float]] = {}  # condition id -> its last `window` + 1 probabilities
        self.quiet_until: dict[str, int] = {}  # no second announcement of the same move
        self.scheduled: dict[int, list[AltEvent]] = {}
        self.whales = [
            "0x" + hashlib.blake2b(f"sim{sim.params.seed}-whale{i}".encode(), digest_size=20).hexdigest()
            for i in range(self.WHALES)
        ]
        day = time.strftime("%Y-%m-%d", time.gmtime(sim.params.start_ms // 1000))
        self.scheduled[0] = [
            WhaleRanking(
                ranking_date=day,
                rank=i + 1,
                wallet=w,
                pnl=Decimal(50_000 - 5_000 * i),
                volume=Decimal(10**6),
                trades=400,
                markets=60,
                win_rate=Decimal("0.62"),
                roi=Decimal("0.08"),
            )
            for i, w in enumerate(self.whales)
        ]

    def observe(self, step: int) -> None:
        """The simulator just generated `step`: announce the moves that ended now, forecast."""
        for m, prob in self.sim.probabilities():
            market = m.condition_id
            past = self.history.setdefault(market, deque(maxlen=self.window + 1))
            past.append(prob)
            start = step - self.window
            if len(past) > self.window and step >= self.quiet_until.get(market, 0):
                change = prob - past[0]
                if abs(change) >= self.move:
                    self.quiet_until[market] = step + self.window
                    self._announce(m, start, prob, change)
            if step % self.forecast_every == 0 and step > 0:
                self._forecast(m, step, prob)

    def due(self, step: int) -> list[AltEvent]:
        return self.scheduled.pop(step, [])

    def _announce(self, m: _Market, step: int, prob: float, change: float) -> None:
        up = change > 0
        token = m.info.token_ids[0 if up else 1]
        target = prob if up else 1 - prob
        if m.info.category == "esports":
            event = self.rng.choice(("baron", "dragon", "inhibitor", "tower"))
            note = f"{event}: {m.info.question} moves {change:+.3f}"
            self._add("esports", m, step, token, target, note, 90_000)
        else:
            self._news(m, step, up)
        if self.rng.random() < 0.5:
            lag = self.rng.randrange(1, 20)
            digest = hashlib.blake2b(f"{m.condition_id}{step}".encode(), digest_size=20).hexdigest()
            wallet = self.whales[int(digest, 16) % len(self.whales)]
            self._add("whale", m, step + lag, token, target, f"wallet {wallet} bought {token[:8]}", 60_000)
            # it buys across the spread at about the price before the move (a cent above the fair price)
            before = prob - change if up else 1 - (prob - change)
            price = Decimal(f"{min(max(before, 0.01), 0.98):.2f}") + Decimal("0.01")
            shares = Decimal(500 + int(digest[:8], 16) % 2000)
            params = self.sim.params
            self.scheduled.setdefault(step + lag, []).append(WalletFill(
                tx_hash="0x" + digest + digest[:24], log_index=0, block_number=step + lag, exchange="ctf_v2",
                wallet=wallet, counterparty=None, asset_id=token, side="BUY", price=price, shares=shares,
                usdc=price * shares, fee=Decimal(0), ts_ms=params.start_ms + (step + lag) * params.step_ms,
            ))  # fmt: skip

    def _news(self, m: _Market, step: int, up: bool) -> None:
        params = self.sim.params
        ts_ms = params.start_ms + step * params.step_ms
        latency_ms = int(self.rng.uniform(2_000, 20_000))
        item_id = f"sim{params.seed}-news-{m.info.slug}-{step}"
        self.scheduled.setdefault(step, []).append(NewsItem(
            item_id=item_id, source=self.NEWS_SOURCE, feed_url="sim://news", link="", story_id=item_id,
            title=f"{m.info.question.rstrip('?')}: Yes looking {'likely' if up else 'unlikely'}, traders say",
            summary="", published_ms=ts_ms - latency_ms, received_ns=ts_ms * 1_000_000,
        ))  # fmt: skip

    def _forecast(self, m: _Market, step: int, prob: float) -> None:
        forecast = min(max(prob + self.rng.gauss(0, self.forecast_noise), 0.001), 0.999)
        token = m.info.token_ids[0 if forecast >= prob else 1]
        p = forecast if forecast >= prob else 1 - forecast
        self._add("model", m, step, token, p, f"forecast {forecast:.4f} vs fair {prob:.4f}", 60_000,
                  model_version=self.MODEL_VERSION)  # fmt: skip

    def _add(
        self,
        source: SignalSource,
        m: _Market,
        step: int,
        token: str,
        probability: float,
        rationale: str,
        ttl_ms: int,
        model_version: str | None = None,
    ) -> None:
        params = self.sim.params
        ts_ms = params.start_ms + step * params.step_ms
        signal = Signal(
            signal_id=f"sim{params.seed}-{source}-{m.info.slug}-{step}",
            source=source,
            market=m.condition_id,
            asset_id=token,
            side="BUY",
            probability=Decimal(f"{min(max(probability, 0.0001), 0.9999):.4f}"),
            confidence=Decimal(f"{self.rng.uniform(0.6, 0.95):.2f}"),
            rationale=rationale,
            ts_ns=ts_ms * 1_000_000,
            expires_ns=(ts_ms + ttl_ms) * 1_000_000,
            model_version=model_version,
        )
        self.scheduled.setdefault(step, []).append(signal)
