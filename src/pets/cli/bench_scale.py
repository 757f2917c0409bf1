"""`pets bench scale`: market_state as a cluster of 1, 2 and 4 workers on 5,000 simulated markets."""

from __future__ import annotations

import dataclasses

import click

from pets.cli import settings_from_env
from pets.cli.bench import bench
from pets.settings import SettingsError


@bench.command("scale")
@click.option("--markets", default=5_000, show_default=True, help="Binary markets in the simulated universe.")
@click.option("--frames", default=60_000, show_default=True, help="Backlog frames replayed for frames/s.")
@click.option("--paced-frames", default=5_000, show_default=True, help="Frames timed for the latency.")
@click.option("--rate", default=1_000, show_default=True, help="Frames per second of the timed frames.")
@click.option(
    "--config",
    "configs",
    multiple=True,
    default=("1x1", "2x1", "2x2"),
    show_default=True,
    help="PROCESSESxWORKERS per process, repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def bench_scale(
    markets: int, frames: int, paced_frames: int, rate: int, configs: tuple[str, ...], as_json: bool
) -> None:
    """The market_state flow as a Bytewax cluster (`pets flow run --process-id --addresses`) over the
    broker of PETS_KAFKA_BOOTSTRAP, per configuration: frames/s replaying a backlog of the seeded
    simulator's frames, then p50/p99 md.book -> md.tob at a steady rate (docs/deploy.md)."""
    from pets.cli._output import echo_json
    from pets.runtime.scale import run

    shapes = []
    for config in configs:
        processes, _, workers = config.partition("x")
        if not (processes.isdigit() and workers.isdigit()) or "0" in (processes, workers):
            message = f"{config!r}: expected PROCESSESxWORKERS, e.g. 2x2"
            raise click.BadParameter(message, param_hint="--config")
        shapes.append((int(processes), int(workers)))
    settings = settings_from_env()
    try:
        out = run(
            settings, markets, frames, paced_frames, rate, tuple(shapes),
            progress=lambda line: click.echo(line, err=True),
        )  # fmt: skip
    except (RuntimeError, TimeoutError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    results = [dataclasses.asdict(r) for r in out.pop("results")]
    if as_json:
        echo_json({**out, "results": results})
        return
    click.echo(
        f"{out['markets']} markets, {out['cpus']} CPUs, load average {out['load_average_before']} -> "
        f"{out['load_average_after']}"
    )
    click.echo(
        f"{'processes x workers':>20s} {'frames/s':>9s} {'per CPU s':>9s} {'p50 ms':>7s} {'p99 ms':>7s} "
        f"{'timed':>6s}"
    )
    for r in results:
        shape = f"{r['processes']} x {r['workers_per_process']}"
        figures = (
            f"{r['frames_per_s']:9d} {r['frames_per_cpu_s']:9d} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['tops_timed']:6d}"
        )
        click.echo(f"{shape:>20s} {figures}")


commands: list[click.Command] = []  # the subcommand above lives on `pets bench`
