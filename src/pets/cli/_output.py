"""Shared CLI output helpers."""

from __future__ import annotations

import resource
import sys
from typing import Any

import click
import msgspec


def echo_json(obj: Any) -> None:
    """One JSON object on stdout (Decimals as strings)."""
    click.echo(msgspec.json.encode(obj).decode())


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
