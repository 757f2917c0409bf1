"""Shared CLI output helpers."""

from __future__ import annotations

import resource
import sys
from collections.abc import Mapping
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


def echo_result(result: Mapping[str, Any], as_json: bool) -> None:
    """A benchmark's result: one JSON object, or one `key  value` line per entry, keys aligned."""
    if as_json:
        echo_json(result)
        return
    width = max((len(key) for key in result), default=0)
    for key, value in result.items():
        click.echo(f"{key:{width}s}  {value}")
