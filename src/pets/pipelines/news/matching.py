"""Matching news items to open markets: BM25 (bm25s) over each market's question, outcomes, event title,
tags and the first sentence of its description, re-ranked with entity and number awareness.

A headline's numbers ("50 bps", "$100k", "2.5%") must agree with the numbers of a market's question:
every number the question names that the headline also names adds to the score, a question naming
only other numbers of the same kind loses (so "Fed cuts rates by 50 bps" ranks "... 50 bps ..." above
"... 25 bps ..."). Capitalised words of the headline (names) found in the question add too. The score
is the BM25 score times that factor; below `threshold` nothing is matched. With a time, only markets
open then count (started, not yet closed), as in the live flow.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import bm25s
import numpy as np

DEFAULT_THRESHOLD = 9.0  # chosen on the labeled set (tests/pipelines/news/labeled_headlines.csv)
CANDIDATES = 50  # BM25's best this many are re-ranked
NUMBER_BONUS = 0.35  # per number shared by headline and question
NUMBER_CLASH = 0.5  # the question names numbers, the headline others and none of the question's
ENTITY_BONUS = 0.15  # per name of the headline found in the question

_STOPWORDS = (
    "a an and are as at be been by can could did do does for from had has have he her his how i if in "
    "into is it its of on or our over she so than that the their them then there these they this to "
    "up was we were what when where which who why will with would you your after before about against "
    "says said say new more most no not yes just all any out off us"
)
STOPWORDS = frozenset(_STOPWORDS.split())
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*[a-z%]*")
_NUMBER = re.compile(r"\$?(\d+(?:[.,]\d+)*)\s*(k|m|bn|b|%|bps|bp)?\b", re.IGNORECASE)
_NAME = re.compile(r"\b([A-Z][a-zA-Z'\-]+)")
_ONE_TO_TWELVE = "one two three four five six seven eight nine ten eleven twelve"
_WORD_NUMBERS = {word: str(i) for i, word in enumerate(_ONE_TO_TWELVE.split(), start=1)}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)
_MULTIPLIER = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000, "bn": 1_000_000_000}


class Market(NamedTuple):
    condition_id: str
    question: str
    text: str  # what BM25 indexes
    open_ms: int | None
    close_ms: int | None


class Match(NamedTuple):
    condition_id: str
    question: str
    score: float

    def as_json(self) -> dict[str, Any]:
        return {"condition_id": self.condition_id, "question": self.question, "score": round(self.score, 4)}


def tokens(text: str) -> list[str]:
    """Lower-cased words and numbers without stopwords; a plural 's' is dropped (cuts -> cut)."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        tok = tok.rstrip(".,")
        if tok in STOPWORDS or not tok:
            continue
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") and tok.isalpha():
            tok = tok[:-1]
        out.append(tok)
    return out


def numbers(text: str) -> frozenset[str]:
    """The numbers of `text`, normalised ("$100k" -> "100000", "2.5%" -> "2.5", "five" -> "5")."""
    found = set()
    text = _WORD_NUMBER.sub(lambda m: _WORD_NUMBERS[m.group(1).lower()], text)
    for digits, unit in _NUMBER.findall(text):
        value = (
            float(digits.replace(",", ""))
            if digits.count(",") != 1 or len(digits) > 4
            else float(digits.replace(",", "."))
        )
        value *= _MULTIPLIER.get(unit.lower(), 1) if unit else 1
        found.add(f"{value:g}")
    return frozenset(found)


def names(text: str) -> frozenset[str]:
    """Capitalised words (names, places, institutions: headlines start with them), lower-cased."""
    return frozenset(t for n in _NAME.findall(text) for t in tokens(n))


def _ms(value: Any) -> int | None:
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    if text.endswith("+00"):
        text += ":00"
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return None


def parse_time_ms(value: str) -> int:
    """An ISO time (naive = UTC) as epoch ms."""
    ms = _ms(value if ("+" in value[10:] or value.endswith("Z")) else value + "+00:00")
    if ms is None:
        raise ValueError(f"not an ISO time: {value!r}")
    return ms


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.startswith("["):
        parsed = json.loads(value)
        return parsed if isinstance(parsed, list) else []
    return []


def market_from_gamma(raw: Mapping[str, Any]) -> Market | None:
    """A Gamma /markets object as an index entry; None without a condition id or question."""
    condition_id, question = raw.get("conditionId"), raw.get("question")
    if not condition_id or not question:
        return None
    events = raw.get("events") or []
    event_titles = [e.get("title", "") for e in events if isinstance(e, dict)]
    tags = [t.get("label", "") if isinstance(t, dict) else str(t) for t in raw.get("tags") or []]
    outcomes = [o for o in _json_list(raw.get("outcomes")) if o not in ("Yes", "No")]
    description = str(raw.get("description") or "").split(". ")[0][:300]
    text = " ".join([question, question, *outcomes, str(raw.get("groupItemTitle") or ""), *event_titles,
                     *tags, description])  # fmt: skip
    open_ms = _ms(raw.get("startDate")) or _ms(raw.get("createdAt"))
    close_ms = _ms(raw.get("closedTime")) if raw.get("closed") else None
    if close_ms is None and raw.get("closed"):
        close_ms = _ms(raw.get("umaEndDate")) or _ms(raw.get("endDate"))
    return Market(str(condition_id), str(question), text, open_ms, close_ms)


def read_gamma_dump(path: Path) -> Iterator[Mapping[str, Any]]:
    """The objects of a Gamma market dump: JSON lines (optionally gzipped) or one JSON list; anything
    else is a ValueError naming the file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        first = f.read(1)
        f.seek(0)
        if first == "[":
            yield from _json(path, 1, f.read())
            return
        for n, line in enumerate(f, 1):
            if line.strip():
                yield _json(path, n, line)


def _json(path: Path, line_no: int, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}:{line_no}: not a Gamma market dump (JSON lines or one JSON list): {exc}"
        ) from None


class MarketIndex:
    """The open markets, searchable. Build once (`from_gamma`/`from_markets`); `match` is read-only."""

    def __init__(self, markets: Sequence[Market], threshold: float = DEFAULT_THRESHOLD) -> None:
        self.markets = list(markets)
        self.threshold = threshold
        self.retriever = bm25s.BM25()
        corpus = [tokens(m.text) or ["\x00"] for m in self.markets]
        self.retriever.index(corpus, show_progress=False)
        self.vocab: dict[str, int] = dict(self.retriever.vocab_dict)
        self.question_numbers = [numbers(m.question) for m in self.markets]
        self.question_tokens = [frozenset(tokens(m.question)) for m in self.markets]
        self.open_ms = np.array([m.open_ms if m.open_ms is not None else -1 for m in self.markets], np.int64)
        self.close_ms = np.array(
            [m.close_ms if m.close_ms is not None else np.iinfo(np.int64).max for m in self.markets], np.int64
        )

    @classmethod
    def from_gamma(
        cls, raws: Iterable[Mapping[str, Any]], threshold: float = DEFAULT_THRESHOLD
    ) -> MarketIndex:
        return cls([m for raw in raws if (m := market_from_gamma(raw)) is not None], threshold)

    def open_mask(self, at_ms: int) -> np.ndarray:
        return (self.open_ms <= at_ms) & (at_ms < self.close_ms)

    def match(self, headline: str, top: int = 5, at_ms: int | None = None) -> list[Match]:
        """The best `top` markets for `headline` scoring at least the threshold, best first."""
        query = [t for t in dict.fromkeys(tokens(headline)) if t in self.vocab]
        if not query:
            return []
        scores = self.retriever.get_scores(query)
        if at_ms is not None:
            scores = np.where(self.open_mask(at_ms), scores, 0.0)
        n = min(CANDIDATES, len(scores))
        candidates = np.argpartition(-scores, n - 1)[:n]
        head_numbers, head_names = numbers(headline), names(headline)
        ranked: list[Match] = []
        for i in candidates.tolist():
            base = float(scores[i])
            if base <= 0:
                continue
            factor = 1.0
            market_numbers = self.question_numbers[i]
            shared = head_numbers & market_numbers
            factor += NUMBER_BONUS * len(shared)
            if market_numbers and head_numbers and not shared:
                factor -= NUMBER_CLASH
            factor += ENTITY_BONUS * len(head_names & self.question_tokens[i])
            score = base * factor
            if score >= self.threshold:
                market = self.markets[i]
                ranked.append(Match(market.condition_id, market.question, score))
        ranked.sort(key=lambda m: (-m.score, m.condition_id))
        return ranked[:top]
