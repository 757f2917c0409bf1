"""A small JSON-over-HTTP client for the venue's public REST APIs (Gamma, CLOB), with polite retries.

Cloudflare in front of Polymarket queues and then answers 429; gateways answer 5xx during deploys.
Both are retried with exponential backoff (honouring Retry-After); any other status is an error that
names the URL and the body, so a bad filter or a changed endpoint is obvious.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

QueryValue = str | int | float | bool | Sequence[str | int]
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class VenueHttpError(RuntimeError):
    """A venue REST call failed for good (after retries, or with a non-retryable status)."""

    def __init__(self, url: str, status: int | None, detail: str) -> None:
        super().__init__(f"{url}: {'HTTP ' + str(status) if status else 'request failed'}: {detail}")
        self.url = url
        self.status = status


def encode_query(params: Mapping[str, QueryValue | None]) -> str:
    """Query string as the venue expects it: lists repeat the key, lowercase booleans, no None values."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        for item in values:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return urllib.parse.urlencode(pairs)


@dataclass(frozen=True, slots=True)
class JsonHttpClient:
    base_url: str
    timeout_s: float = 10.0
    retries: int = 4
    backoff_s: float = 0.5
    user_agent: str = "pets/0.1"

    def get(self, path: str, params: Mapping[str, QueryValue | None] | None = None) -> Any:
        query = encode_query(params or {})
        return self._request("GET", f"{self.base_url.rstrip('/')}{path}" + (f"?{query}" if query else ""))

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", f"{self.base_url.rstrip('/')}{path}", json.dumps(body).encode())

    def _request(self, method: str, url: str, data: bytes | None = None) -> Any:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            delay = self.backoff_s * 2**attempt
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return msgspec.json.decode(response.read())
            except urllib.error.HTTPError as exc:
                body = exc.read().decode(errors="replace")[:500]
                if exc.code not in RETRYABLE_STATUS or attempt == self.retries:
                    raise VenueHttpError(url, exc.code, body) from None
                retry_after = exc.headers.get("Retry-After")
                if retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    raise VenueHttpError(url, None, str(exc)) from None
            except msgspec.DecodeError as exc:
                raise VenueHttpError(url, 200, f"response is not JSON: {exc}") from None
            time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises
