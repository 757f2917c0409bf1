"""From game events to trading signals: the schedule -> Polymarket market mapping and the win model.

Mapping (`link_markets`): a match is two teams (names from the schedule) and a best-of; a Polymarket
market belongs to it when both normalised team names are in its question and each outcome is one of the
teams (its token pays if that team wins). "Game N" in the question makes it the game-N winner market,
otherwise it is the series (match winner) market. A match with no such market is logged and left
unmapped: never guessed from one team's name.

`SignalMaker` (one per match): after every event of a League of Legends game in progress,
p = P(blue wins the game) from the promoted model (winmodel.blue_win_probability); the game-N market
gets p, the series market the series probability from p and the series score. A stalled feed or a
finished game gives a signal without probability for the markets it concerns (the bot stops trading
them); a finished game with a known winner adds a game to the series score. Other games' states are
reported but not priced (no model for them).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec

from pets.pipelines.esports.winmodel import WinModel, blue_win_probability, series_probability
from pets.schemas.market_data import MarketInfo
from pets.schemas.signals import EsportsEvent, Signal

log = logging.getLogger(__name__)
GAME_N = re.compile(r"\bgame\s*(\d+)\b", re.IGNORECASE)
NOISE_WORDS = ("esports", "esport", "gaming", "team", "club", "academy")
SIGNAL_TTL_MS = 30_000  # a game-state probability is worth acting on for this long
PROBABILITY_STEP = Decimal("0.0001")
NO_TRADE_EVENTS = frozenset({"pause", "resume", "recovered", "game_start"})


def normalize_team(name: str) -> str:
    """Lowercase ASCII letters and digits, without the words teams add to their names ("T1 Esports",
    "t1" and "T1" are one team; "Gen.G" is "geng")."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", text.replace(".", "")) if w and w not in NOISE_WORDS]
    return "".join(words)


class Match(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled match: the feed's team ids with their display names, and the series length."""

    match_id: str
    teams: dict[str, str]  # feed team id -> name
    best_of: int = 1


class MarketLink(msgspec.Struct, frozen=True, kw_only=True):
    market: str  # condition id
    match_id: str
    game_number: int | None  # None: the series (match winner) market
    tokens: dict[str, str]  # feed team id -> the token that pays when it wins


def link_markets(match: Match, markets: Iterable[MarketInfo]) -> list[MarketLink]:
    names = {team: normalize_team(name) for team, name in match.teams.items()}
    links = []
    for info in markets:
        question = normalize_team(info.question)
        if len(names) != 2 or not all(n and n in question for n in names.values()):
            continue
        outcomes = [normalize_team(o) for o in info.outcomes]
        tokens = {team: info.token_ids[outcomes.index(n)] for team, n in names.items() if n in outcomes}
        if len(tokens) != 2:
            continue  # a yes/no market on one team, or outcomes we cannot tell apart
        game = GAME_N.search(info.question)
        links.append(
            MarketLink(market=info.condition_id, match_id=match.match_id,
                       game_number=int(game.group(1)) if game else None, tokens=tokens)
        )  # fmt: skip
    if not links:
        log.warning("esports match %s (%s) has no Polymarket market: unmapped", match.match_id,
                    " vs ".join(match.teams.values()))  # fmt: skip
    return links


class SignalMaker:
    """Signals of one match's markets from its events (pure: time comes from the events)."""

    def __init__(self, match: Match, links: list[MarketLink], model: WinModel, model_version: str) -> None:
        self.match = match
        self.links = links
        self.model = model
        self.model_version = model_version
        self.wins: dict[str, int] = dict.fromkeys(match.teams, 0)
        self.finished: set[int] = set()

    def _signal(
        self, event: EsportsEvent, link: MarketLink, team: str | None, p: float | None, why: str
    ) -> Signal:
        ts_ns = event.received_ns
        return Signal(
            signal_id=f"{event.event_id}>{link.market}",
            source="esports",
            market=link.market,
            asset_id=link.tokens.get(team) if team is not None and p is not None else None,
            side="BUY" if p is not None else None,
            probability=Decimal(p).quantize(PROBABILITY_STEP) if p is not None else None,
            confidence=Decimal(1),
            rationale=why,
            ts_ns=ts_ns,
            expires_ns=ts_ns + SIGNAL_TTL_MS * 1_000_000,
            model_version=self.model_version if p is not None else None,
            feed_lag_ms=event.feed_lag_ms,
        )

    def on_event(self, event: EsportsEvent) -> list[Signal]:
        kind, game = event.event_type, event.game_number
        snap = event.snapshot
        if kind == "stall":
            return [self._signal(event, link, None, None, "feed stalled") for link in self.links]
        if kind == "game_end":
            self.finished.add(game)
            if event.team in self.wins:
                self.wins[event.team] += 1
            out = [self._signal(event, link, None, None, f"game {game} ended")
                   for link in self.links if link.game_number == game]  # fmt: skip
            return out + self._series(event, 0.5, f"game {game} won by {event.team}")
        if kind in NO_TRADE_EVENTS or snap is None or snap.state != "in_game" or game in self.finished:
            return []
        if event.game != "lol":
            return []  # the win model is League of Legends': other games' states are not priced
        p_blue = blue_win_probability(self.model, snap)
        minute = event.game_time_ms / 60_000
        why = f"{kind} {event.team or ''} at {minute:.1f} min: blue {p_blue:.3f}".replace("  ", " ")
        out = [self._signal(event, link, snap.blue.team, p_blue, why)
               for link in self.links if link.game_number == game]  # fmt: skip
        return out + self._series(event, p_blue, why)

    def _series(self, event: EsportsEvent, p_game: float, why: str) -> list[Signal]:
        """The series markets: blue's chance of taking the series from this game's p (0.5 for games
        not yet started) and the score."""
        snap = event.snapshot
        if snap is None:
            return []
        blue, red = snap.blue.team, snap.red.team
        need = self.match.best_of // 2 + 1
        won, lost = self.wins.get(blue, 0), self.wins.get(red, 0)
        if event.event_type == "game_end":
            p = series_probability(0.5, need, won, lost)
        else:  # win this game (p_game) then the rest at 0.5 each, or lose it
            p = p_game * series_probability(0.5, need, won + 1, lost) + (1 - p_game) * series_probability(
                0.5, need, won, lost + 1
            )
        return [self._signal(event, link, blue, p, f"series {won}-{lost}; {why}")
                for link in self.links if link.game_number is None]  # fmt: skip


class MatchLinks:
    """Which markets each match trades: the esports flow's one key ahead of its match keys (a lookup
    per event; the match keys price the events). A match is known from its events' payload (`teams`:
    feed team id -> name, `best_of`, which the feed poller puts on every event); its markets are linked
    at its first event and again when a new esports market arrives while it is unmapped."""

    def __init__(self) -> None:
        self.markets: dict[str, MarketInfo] = {}
        self.matches: dict[str, Match] = {}
        self.links: dict[str, list[MarketLink]] = {}
        self.unmapped: set[str] = set()

    def on_market(self, info: MarketInfo) -> None:
        if info.category != "esports":
            return
        new = info.condition_id not in self.markets
        self.markets[info.condition_id] = info
        if new and self.unmapped:
            for match_id in list(self.unmapped):
                self.links[match_id] = link_markets(self.matches[match_id], self.markets.values())
                if self.links[match_id]:
                    self.unmapped.discard(match_id)

    def on_event(self, event: EsportsEvent) -> list[MarketLink] | None:
        """The links of the event's match; None when the match has no schedule to map it by."""
        links = self.links.get(event.match_id)
        if links is None:
            match = match_of(event)
            if match is None:
                return None
            self.matches[match.match_id] = match
            links = self.links[match.match_id] = link_markets(match, self.markets.values())
            if not links:
                self.unmapped.add(match.match_id)
        return links


def match_of(event: EsportsEvent) -> Match | None:
    """The match an event's payload describes, None without its two teams."""
    teams = event.payload.get("teams")
    if not isinstance(teams, dict) or len(teams) != 2:
        return None
    best_of = int(event.payload.get("best_of", 1))
    return Match(match_id=event.match_id, teams={str(k): str(v) for k, v in teams.items()}, best_of=best_of)


def match_signals(
    maker: SignalMaker | None,
    event: EsportsEvent,
    links: list[MarketLink],
    load_model: Callable[[], tuple[WinModel, str] | None],
) -> tuple[SignalMaker | None, list[Signal]]:
    """One event of a match (its links from MatchLinks) on the match's SignalMaker, made at its first
    event. The model is the promoted version `load_model` gives now (None: no model yet, no signal)."""
    loaded = load_model()
    if loaded is None:
        return maker, []
    model, version = loaded
    if maker is None:
        match = match_of(event)
        if match is None:
            return None, []
        maker = SignalMaker(match, links, model, version)
    maker.links, maker.model, maker.model_version = links, model, version
    return maker, maker.on_event(event)
