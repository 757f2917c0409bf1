"""`pets bench ...`: benchmarks. Each area adds its own subcommand to this group."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Measure speed (benchmarks, never timed tests)."""


commands = [bench]
