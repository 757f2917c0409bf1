"""The dashboard's only way to PETS: the control API over HTTP."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(RuntimeError):
    """The API refused or did not answer; the message says which and why."""


class DeskClient:
    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def get(self, path: str, **params: Any) -> Any:
        try:
            answer = self._http.get(path, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as exc:
            raise ApiError(f"the control API at {self.base_url} does not answer: {exc}") from None
        if answer.status_code != 200:
            raise ApiError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def control(self, path: str, reason: str = "", **extra: Any) -> dict[str, Any]:
        """POST a control action with the token; an ApiError says why it was refused."""
        headers = {"X-Pets-Operator": "dashboard"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            answer = self._http.post(path, json={"reason": reason, **extra}, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"the control API at {self.base_url} does not answer: {exc}") from None
        if answer.status_code != 200:
            detail = answer.json().get("detail", answer.text) if answer.content else ""
            raise ApiError(f"POST {path}: {answer.status_code} {detail}")
        result: dict[str, Any] = answer.json()
        return result
