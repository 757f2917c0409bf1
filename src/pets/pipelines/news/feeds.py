"""Polling RSS/Atom feeds into news items.

Fetching is httpx (feedparser has no timeouts): a timeout per request, conditional GET (the feed's
ETag / Last-Modified; a 304 parses nothing), gzip, `Retry-After` on 429/503 and `Cache-Control:
max-age` honoured as the earliest next poll, and a per-host backoff after failures (doubling from
`BACKOFF_MIN_S` to `BACKOFF_MAX_S`, reset by a success). Parsing is feedparser (RSS 0.9x/1.0/2.0, Atom).

Each entry becomes a NewsItem with a stable id (feed url + the entry's guid, else link, else title),
its published time and the time we first saw it; an id seen before (a re-poll) is dropped. A story
carried by several sources (near-duplicate titles from different sources: Jaccard >= `NEAR_DUPLICATE`
of their word sets within `STORY_WINDOW_S`) is one story: every sighting keeps the first item's
`story_id` and counts its `sighting`. A body that is no feed dead-letters with the reason, and the
feed keeps being polled.
"""

from __future__ import annotations

import calendar
import email.utils
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx
import msgspec
import yaml

from pets.pipelines.news.matching import tokens
from pets.schemas.control import DeadLetter
from pets.schemas.signals import NewsItem, news_item_id

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 300.0
SEEN_IDS = 200_000  # ids remembered for the duplicate check (oldest forgotten first)
NEAR_DUPLICATE = 0.6
STORY_WINDOW_S = 6 * 3600
DLQ_SOURCE = "news.feeds"


class FeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str
    source: str
    reliability: Decimal = Decimal(1)
    poll_interval_s: float = 60.0
    categories: tuple[str, ...] = ()


class _FeedsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    feeds: tuple[FeedConfig, ...]


def load_feeds(path: Path) -> tuple[FeedConfig, ...]:
    """config/news.yaml: the feeds; a bad file raises ValueError naming it."""
    try:
        feeds = msgspec.convert(yaml.safe_load(path.read_text()), _FeedsFile, strict=False).feeds
    except (OSError, yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    for feed in feeds:
        if not Decimal(0) < feed.reliability <= 1 or feed.poll_interval_s <= 0:
            raise ValueError(f"{path}: feed {feed.source}: reliability in (0, 1] and poll_interval_s > 0")
    return feeds


@dataclass
class FeedStats:
    """Per feed: what its polls did and how late its items reach us (first seen - published)."""

    polls: int = 0
    not_modified: int = 0
    errors: int = 0
    dead_letters: int = 0
    items: int = 0
    duplicates: int = 0
    latency_ms: list[int] = field(default_factory=list)

    def latency_p50_ms(self) -> int | None:
        values = sorted(self.latency_ms)
        return values[len(values) // 2] if values else None


@dataclass
class _FeedState:
    etag: str | None = None
    last_modified: str | None = None
    next_poll_s: float = 0.0


@dataclass
class PollResult:
    items: list[NewsItem]
    dead_letters: list[DeadLetter]
    status: int | None  # None: no answer (timeout, connection error)


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now_s, 0.0)


def max_age_s(cache_control: str | None) -> float | None:
    match = re.search(r"max-age=(\d+)", cache_control or "")
    return float(match.group(1)) if match else None


def _struct_ms(value: Any) -> int | None:
    return calendar.timegm(value) * 1000 if value else None


def title_words(title: str) -> frozenset[str]:
    return frozenset(tokens(title))


class Stories:
    """Near-duplicate titles from different sources -> one story id (the first item's). Within one
    source two items are two stories (an update is news of its own)."""

    def __init__(self) -> None:
        # story id -> (title words, first seen ms, sightings, sources)
        self.recent: OrderedDict[str, tuple[frozenset[str], int, int, frozenset[str]]] = OrderedDict()

    def sighting(self, item_id: str, source: str, title: str, now_ms: int) -> tuple[str, int]:
        words = title_words(title)
        horizon = now_ms - STORY_WINDOW_S * 1000
        while self.recent and next(iter(self.recent.values()))[1] < horizon:
            self.recent.popitem(last=False)
        if len(words) >= 3:
            for story_id, (seen, first_ms, count, sources) in self.recent.items():
                if source not in sources and len(words & seen) / len(words | seen) >= NEAR_DUPLICATE:
                    self.recent[story_id] = (seen, first_ms, count + 1, sources | {source})
                    return story_id, count + 1
        self.recent[item_id] = (words, now_ms, 1, frozenset({source}))
        return item_id, 1


class FeedPoller:
    """Polls the feeds that are due; `poll_due(now)` returns the new items and dead letters."""

    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.feeds = list(feeds)
        self.client = client or httpx.Client(timeout=timeout_s, follow_redirects=True,
                                             headers={"User-Agent": "pets-news/0.1"})  # fmt: skip
        self.clock = clock
        self.state = {f.url: _FeedState() for f in self.feeds}
        self.stats = {f.source: FeedStats() for f in self.feeds}
        self.host_until: dict[str, float] = {}
        self.host_failures: dict[str, int] = {}
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.stories = Stories()

    def close(self) -> None:
        self.client.close()

    def due(self, now_s: float) -> list[FeedConfig]:
        hosts = self.host_until
        return [
            f for f in self.feeds
            if self.state[f.url].next_poll_s <= now_s and hosts.get(urlsplit(f.url).netloc, 0) <= now_s
        ]  # fmt: skip

    def next_due_s(self) -> float:
        return min((self.state[f.url].next_poll_s for f in self.feeds), default=self.clock() + 60)

    def poll_due(self) -> PollResult:
        now = self.clock()
        out = PollResult([], [], None)
        for feed in self.due(now):
            result = self.poll(feed)
            out.items += result.items
            out.dead_letters += result.dead_letters
            out.status = result.status  # the last feed's (one feed: its answer)
        return out

    def poll(self, feed: FeedConfig) -> PollResult:
        state, stats = self.state[feed.url], self.stats[feed.source]
        host = urlsplit(feed.url).netloc
        headers = {"Accept-Encoding": "gzip"}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        stats.polls += 1
        now = self.clock()
        state.next_poll_s = now + feed.poll_interval_s
        try:
            response = self.client.get(feed.url, headers=headers)
        except httpx.HTTPError as exc:
            stats.errors += 1
            self._back_off(host, now, None)
            log.warning("news feed %s: %s: %s", feed.source, type(exc).__name__, exc)
            return PollResult([], [], None)
        age = max_age_s(response.headers.get("Cache-Control"))
        if age is not None:
            state.next_poll_s = max(state.next_poll_s, now + age)
        if response.status_code == 304:
            stats.not_modified += 1
            self._succeeded(host)
            return PollResult([], [], 304)
        if response.status_code in (429, 503) or response.status_code >= 500:
            stats.errors += 1
            self._back_off(host, now, retry_after_s(response.headers.get("Retry-After"), now))
            log.warning("news feed %s: HTTP %d", feed.source, response.status_code)
            return PollResult([], [], response.status_code)
        if response.status_code != 200:
            stats.errors += 1
            log.warning("news feed %s: HTTP %d", feed.source, response.status_code)
            return PollResult([], [], response.status_code)
        self._succeeded(host)
        body = response.content
        parsed = feedparser.parse(body)
        if not parsed.get("version") or (parsed.get("bozo") and not parsed.entries):
            stats.dead_letters += 1
            reason = f"not a feed: {parsed.get('bozo_exception') or 'no RSS/Atom version found'}"
            log.warning("news feed %s: %s (dead-lettered)", feed.source, reason)
            dead = DeadLetter.from_bytes(DLQ_SOURCE, f"{feed.source}: {reason}", body, ts_ns=time.time_ns(),
                                         key=feed.source)  # fmt: skip
            return PollResult([], [dead], 200)
        state.etag = response.headers.get("ETag") or state.etag
        state.last_modified = response.headers.get("Last-Modified") or state.last_modified
        return PollResult(self._items(feed, parsed.entries), [], 200)

    def _items(self, feed: FeedConfig, entries: Iterable[Any]) -> list[NewsItem]:
        stats = self.stats[feed.source]
        received_ns = int(self.clock() * 1e9)
        out = []
        for entry in entries:
            guid = entry.get("id") or entry.get("link") or entry.get("title")
            if not guid:
                continue
            item_id = news_item_id(feed.url, str(guid))
            if item_id in self.seen:
                stats.duplicates += 1
                continue
            self.seen[item_id] = None
            if len(self.seen) > SEEN_IDS:
                self.seen.popitem(last=False)
            published_ms = _struct_ms(entry.get("published_parsed") or entry.get("updated_parsed"))
            if published_ms is not None:
                stats.latency_ms.append(received_ns // 1_000_000 - published_ms)
            title = str(entry.get("title") or "").strip()
            story_id, sighting = self.stories.sighting(item_id, feed.source, title, received_ns // 1_000_000)
            tags = tuple(str(t.get("term")) for t in entry.get("tags") or () if t.get("term"))
            out.append(NewsItem(
                item_id=item_id, source=feed.source, feed_url=feed.url, title=title,
                summary=re.sub(r"<[^>]+>", " ", str(entry.get("summary") or ""))[:2000].strip(),
                link=str(entry.get("link") or ""), published_ms=published_ms, received_ns=received_ns,
                tags=tags, story_id=story_id, sighting=sighting,
            ))  # fmt: skip
            stats.items += 1
        return out

    def _back_off(self, host: str, now: float, retry_after: float | None) -> None:
        failures = self.host_failures.get(host, 0) + 1
        self.host_failures[host] = failures
        wait = min(BACKOFF_MIN_S * 2 ** (failures - 1), BACKOFF_MAX_S)
        if retry_after is not None:
            wait = max(wait, retry_after)
        self.host_until[host] = now + wait

    def _succeeded(self, host: str) -> None:
        self.host_failures.pop(host, None)
        self.host_until.pop(host, None)
