"""A local feed server for tests and benchmarks: serves RSS/Atom bodies (for example the real feeds
of data/news/) over loopback HTTP like a news site's CDN.

ETag (a digest of the body) and Last-Modified with conditional GET (304), gzip when asked,
`Cache-Control: max-age` when set. Test hooks per path: `set_feed(path, body)` (the feed changes
between polls), `slow(path, seconds)` (answers late), `throttle(path, count, retry_after)` (the next
`count` requests get 429 with Retry-After), and `requests` lists (path, status) served.

    with serve_feeds({"/guardian.rss": body}) as server:
        FeedPoller([FeedConfig(url=server.url + "/guardian.rss", source="guardian")])
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FeedServer:
    def __init__(self, feeds: Mapping[str, bytes], max_age_s: int | None = None) -> None:
        self.lock = threading.Lock()
        self.feeds: dict[str, tuple[bytes, str, str]] = {}
        self.delays: dict[str, float] = {}
        self.throttled: dict[str, tuple[int, int]] = {}
        self.requests: list[tuple[str, int]] = []
        self.max_age_s = max_age_s
        for path, body in feeds.items():
            self.set_feed(path, body)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def set_feed(self, path: str, body: bytes) -> None:
        with self.lock:
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            self.feeds[path] = (body, etag, formatdate(time.time(), usegmt=True))

    def slow(self, path: str, seconds: float) -> None:
        self.delays[path] = seconds

    def throttle(self, path: str, count: int, retry_after_s: int = 1) -> None:
        self.throttled[path] = (count, retry_after_s)

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                delay = server.delays.get(path)
                if delay:
                    time.sleep(delay)
                with server.lock:
                    throttled = server.throttled.get(path)
                    if throttled and throttled[0] > 0:
                        server.throttled[path] = (throttled[0] - 1, throttled[1])
                        server.requests.append((path, 429))
                        self.send_response(429)
                        self.send_header("Retry-After", str(throttled[1]))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    feed = server.feeds.get(path)
                if feed is None:
                    server.requests.append((path, 404))
                    self.send_error(404)
                    return
                body, etag, modified = feed
                match = self.headers.get("If-None-Match")
                if match == etag or (match is None and self.headers.get("If-Modified-Since") == modified):
                    server.requests.append((path, 304))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                server.requests.append((path, 200))
                encoded = "gzip" in (self.headers.get("Accept-Encoding") or "")
                payload = gzip.compress(body) if encoded else body
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
                if server.max_age_s is not None:
                    self.send_header("Cache-Control", f"max-age={server.max_age_s}")
                if encoded:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
                    self.wfile.write(payload)

        return Handler


@contextmanager
def serve_feeds(feeds: Mapping[str, bytes], max_age_s: int | None = None) -> Iterator[FeedServer]:
    server = FeedServer(feeds, max_age_s).start()
    try:
        yield server
    finally:
        server.stop()
