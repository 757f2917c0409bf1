"""`pets bench ...`: benchmarks. Each area adds its own subcommand to this group."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Measure speed (benchmarks, never timed tests)."""


@bench.command("faults")
@click.option("--json", "as_json", is_flag=True)
def bench_faults(as_json: bool) -> None:
    """The fault scenarios (docs/faults.md) on a Kafka broker and a PostgreSQL of their own, started
    for the run and stopped after it (never the shared ones): `kill -9` of risk, bots and
    market_state at several points of a stream, and the broker and the database stopped and started
    again under load. Per scenario: inputs, outputs, lost, duplicated (the target is zero of each)
    and seconds; exits 1 when anything was lost or duplicated."""
    import dataclasses

    from pets.cli import settings_from_env
    from pets.cli._output import echo_json
    from pets.runtime.faults import private_stack, run_all

    def progress(line: str) -> None:
        click.echo(line, err=True)

    progress("starting a private Kafka broker and PostgreSQL")
    with private_stack(settings_from_env()) as settings:
        results = run_all(settings, progress)
    if as_json:
        echo_json({"scenarios": [dataclasses.asdict(r) for r in results]})
    else:
        click.echo(f"{'scenario':36s} {'inputs':>7s} {'outputs':>7s} {'lost':>5s} {'dup':>5s} {'s':>6s}")
        for r in results:
            counts = f"{r.inputs:7d} {r.outputs:7d} {r.lost:5d} {r.duplicated:5d} {r.seconds:6.1f}"
            click.echo(f"{r.scenario:36s} {counts}  {r.detail}")
    if any(r.lost or r.duplicated for r in results):
        raise SystemExit(1)


commands = [bench]
