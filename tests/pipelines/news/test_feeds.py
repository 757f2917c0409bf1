"""The feed poller against a local feed server serving the real feeds of ../shared/data/news/: ETag/304,
gzip, max-age, slow answers, 429 + Retry-After, a feed that changes, a broken feed, one story on two wires."""

from __future__ import annotations

from pathlib import Path

import feedparser
import httpx
import pytest

from pets.pipelines.news.feed_server import FeedServer, serve_feeds
from pets.pipelines.news.feeds import FeedConfig, FeedPoller, load_feeds, retry_after_s

pytestmark = pytest.mark.shared_data


@pytest.fixture
def news_dir(shared_data: Path) -> Path:
    return shared_data / "news"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def poller(server: FeedServer, *paths: str, clock: Clock, timeout_s: float = 5.0) -> FeedPoller:
    feeds = [FeedConfig(url=server.url + p, source=p.strip("/").split(".")[0], poll_interval_s=30)
             for p in paths]  # fmt: skip
    return FeedPoller(feeds, httpx.Client(timeout=timeout_s), clock=clock)


def test_first_poll_parses_every_entry_then_304_parses_nothing(news_dir: Path) -> None:
    body = (news_dir / "guardian.rss").read_bytes()
    entries = feedparser.parse(body).entries
    clock = Clock()
    with serve_feeds({"/guardian.rss": body}) as server:
        p = poller(server, "/guardian.rss", clock=clock)
        first = p.poll_due()
        assert len(first.items) == len(entries) == 55
        assert len({i.item_id for i in first.items}) == 55
        assert [i.title for i in first.items] == [e.title.strip() for e in entries]
        assert all(i.published_ms is not None and i.story_id for i in first.items)
        assert p.poll_due().items == []  # not due yet: poll_interval_s 30
        clock.now += 30
        assert p.poll_due().items == []
        assert server.requests == [("/guardian.rss", 200), ("/guardian.rss", 304)]
        stats = p.stats["guardian"]
        assert (stats.polls, stats.not_modified, stats.items) == (2, 1, 55)
        # the source's latency: first seen (the test clock) - published (the feed's 2018 dates)
        assert stats.latency_p50_ms() is not None and stats.latency_p50_ms() > 0  # type: ignore[operator]


def test_cache_control_max_age_delays_the_next_poll(news_dir: Path) -> None:
    clock = Clock()
    with serve_feeds({"/narro.rss": (news_dir / "narro.rss").read_bytes()}, max_age_s=120) as server:
        p = poller(server, "/narro.rss", clock=clock)
        p.poll_due()
        assert p.next_due_s() == clock.now + 120  # max-age 120 over poll_interval_s 30


def test_a_feed_that_changes_yields_only_its_new_entries(news_dir: Path) -> None:
    clock = Clock()
    guardian = (news_dir / "guardian.rss").read_bytes()
    with serve_feeds({"/feed.rss": guardian}) as server:
        p = poller(server, "/feed.rss", clock=clock)
        assert len(p.poll_due().items) == 55
        server.set_feed("/feed.rss", (news_dir / "reddit.rss").read_bytes())  # new ETag
        clock.now += 30
        assert len(p.poll_due().items) == 24
        server.set_feed("/feed.rss", guardian)  # back to entries already seen: duplicates
        clock.now += 30
        assert p.poll_due().items == []
        assert p.stats["feed"].duplicates == 55


def test_a_slow_feed_times_out_backs_off_its_host_and_is_polled_again(news_dir: Path) -> None:
    clock = Clock()
    with serve_feeds({"/slow.rss": (news_dir / "narro.rss").read_bytes()}) as server:
        server.slow("/slow.rss", 1.0)
        p = poller(server, "/slow.rss", clock=clock, timeout_s=0.2)
        result = p.poll_due()
        assert (result.items, result.status, p.stats["slow"].errors) == ([], None, 1)
        server.slow("/slow.rss", 0)
        clock.now += 30
        assert len(p.poll_due().items) == 1


def test_429_retry_after_is_honoured(news_dir: Path) -> None:
    clock = Clock()
    with serve_feeds({"/busy.rss": (news_dir / "narro.rss").read_bytes()}) as server:
        server.throttle("/busy.rss", 1, retry_after_s=45)
        p = poller(server, "/busy.rss", clock=clock)
        assert p.poll_due().status == 429
        clock.now += 30  # poll_interval_s has passed, Retry-After (45 s) has not
        assert p.due(clock.now) == []
        clock.now += 16
        assert len(p.poll_due().items) == 1
        assert [status for _, status in server.requests] == [429, 200]


def test_a_broken_feed_dead_letters_and_keeps_being_polled(news_dir: Path) -> None:
    clock = Clock()
    with serve_feeds({"/broken.rss": b"<html><body>502 Bad Gateway</body></html>"}) as server:
        p = poller(server, "/broken.rss", clock=clock)
        result = p.poll_due()
        [dead] = result.dead_letters
        assert result.items == [] and dead.reason.startswith("broken: not a feed")
        assert "502 Bad Gateway" in dead.payload
        server.set_feed("/broken.rss", (news_dir / "narro.rss").read_bytes())
        clock.now += 30
        assert len(p.poll_due().items) == 1


def test_one_story_on_two_wires_is_one_story_with_two_sightings(news_dir: Path) -> None:
    clock = Clock()
    guardian = (news_dir / "guardian.rss").read_bytes()
    with serve_feeds({"/wire_a.rss": guardian, "/wire_b.rss": guardian}) as server:
        p = poller(server, "/wire_a.rss", "/wire_b.rss", clock=clock)
        items = p.poll_due().items
        a = [i for i in items if i.source == "wire_a"]
        b = [i for i in items if i.source == "wire_b"]
        assert len(a) == len(b) == 55
        assert {i.item_id for i in a}.isdisjoint(i.item_id for i in b)  # two sources: two item ids
        assert all(i.sighting == 1 and i.story_id == i.item_id for i in a)
        # titles of 3+ words find their story; shorter ones stay their own
        joined = [(x, y) for x, y in zip(a, b, strict=True) if y.sighting == 2]
        assert len(joined) >= 50 and all(y.story_id == x.item_id for x, y in joined)


def test_retry_after_forms_and_the_shipped_feed_list() -> None:
    assert retry_after_s("120", 0) == 120
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert retry_after_s("soon", 0) is None
    feeds = load_feeds(Path(__file__).resolve().parents[3] / "config" / "news.yaml")
    assert feeds and all(0 < f.reliability <= 1 for f in feeds)
