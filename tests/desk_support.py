"""Helpers of the desk's tests (control API and dashboard)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

TOKEN = "dashboard-token"


@dataclass
class ServedRun:
    url: str
    desk: object


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
