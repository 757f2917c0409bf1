"""`pets run` (the main job in one process), `pets report`, and the loop benchmarks.

pets run                                   simulator (pets.yaml `simulator`), journal under .pets/runs/
pets run --replay FILE... --journal DIR    recordings instead of the simulator
pets run --json                            the report as one JSON object keyed by bot id, and "portfolio"
pets run --api-port P [--speed X]          the control API over the run (docs/desk.md), paced at X x venue
pets report --journal DIR [--json]         the report of a finished run (or of the database)
pets bench loop [--json]                   frames/s of the whole loop in one process
pets bench loop-latency [--json]           md.book -> order.exec latency with each flow a process
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pets.cli import settings_from_env
from pets.cli._output import echo_result, peak_rss_mb
from pets.cli.bench import bench
from pets.runtime.journal import DEAD_LETTERS_FILE


def _echo_report_json(report: dict[str, Any]) -> None:
    import msgspec

    click.echo(msgspec.json.Encoder(decimal_format="number").encode(report).decode())


def _load_config(config_dir: Path) -> Any:
    from pets.schemas.config import InvalidConfigError, load_config

    try:
        return load_config(config_dir)
    except InvalidConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from None


def _status(message: str) -> None:
    click.echo(message, err=True)


@click.command("run")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--replay", "replay_flag", is_flag=True, help="Replay the recordings FILE... (l2 format).")
@click.option(
    "--journal",
    "journal_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Run folder for the Parquet journal [default: .pets/runs/<time>].",
)
@click.option(
    "--json", "as_json", is_flag=True, help='The report as one JSON object keyed by bot id, and "portfolio".'
)
@click.option("--seed", type=int, default=None, help="Simulator seed [default: pets.yaml simulator.seed].")
@click.option(
    "--duration", type=float, default=None, help="Simulated seconds [default: simulator.duration_s]."
)
@click.option(
    "--api-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve the control API (and so the dashboard) over the run on this port, on localhost; it keeps "
    "serving the final state after the run until interrupted.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --api-port: pace the run at X times venue time [default: as fast as it goes].",
)
def run(
    files: tuple[Path, ...],
    replay_flag: bool,
    journal_dir: Path | None,
    as_json: bool,
    seed: int | None,
    duration: float | None,
    api_port: int | None,
    speed: float | None,
) -> None:
    """The main job: market state, bots, risk, paper execution and P&L in one process, on the
    simulator or on recordings; prints the per-bot report and writes the journal (its only output:
    the database is the live flows', never a simulated run's)."""
    from pets.runtime import sources
    from pets.runtime.journal import Journal
    from pets.runtime.loop import TradingLoop
    from pets.schemas.control import DeadLetter

    settings = settings_from_env()
    config = _load_config(settings.config_dir)
    if replay_flag and not files:
        raise click.UsageError("--replay needs at least one recording FILE")
    if speed is not None and api_port is None:
        raise click.UsageError("--speed paces a run served with --api-port")
    try:
        source = (
            sources.replay(list(files))
            if files
            else sources.simulated(config, seed=seed, duration_s=duration)
        )
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if journal_dir is None:
        journal_dir = settings.state_dir / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    _status(f"pets run: {source.name}")
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal, news=_news_signaller(settings))
    loop.bus.subscribe("md.tob", journal.on_top_of_book)  # the markets' mid paths, for `pets report --html`
    # the simulator's news, esports events, whale fills and forecasts reach the signal-driven bots
    inputs = source.events() if source.events is not None else source.frames
    service = None
    if api_port is not None:
        from pets.api.run_desk import RunService

        try:
            service = RunService.start(
                loop, journal, speed, "127.0.0.1", api_port, journal_dir / "api_audit.jsonl"
            )
        except OSError as exc:  # the port is taken
            raise click.ClickException(str(exc)) from None
        inputs = service.desk.feed(inputs)
        _status(f"pets run: control API on {service.url} (dashboard: pets dashboard --api {service.url})")
    started = time.perf_counter()
    loop.run(inputs)
    for fault in source.faults:
        loop.dead_letter(DeadLetter.from_bytes("run.replay", fault, b"", ts_ns=loop.clock_ms * 1_000_000))
    stats = loop.stats
    seconds = time.perf_counter() - started
    positions = loop.portfolio.positions(loop.clock_ms * 1_000_000)
    journal.write_parquet(journal_dir, positions)
    _status(
        f"{stats.frames} frames ({stats.dead_letters} dead-lettered), "
        f"{(stats.last_ms - stats.first_ms) / 1000:.0f} s of venue time in {seconds:.1f} s; "
        f"{len(journal.intents)} intents, {len(journal.approved)} approved, {len(journal.denials)} denied, "
        f"{len(journal.fills)} fills; journal: {journal_dir}"
    )
    published = {t: n for t, n in sorted(stats.topics.items()) if t.startswith("signal.")}
    if published:
        gate = ", ".join(f"{kind} {n}" for kind, n in stats.signals.items()) or "no bot reads signals"
        _status(f"signals: {', '.join(f'{t} {n}' for t, n in published.items())} ({gate})")
    for line in dead_letter_lines(journal.dead_letters):
        _status(line)
    report = loop.report()
    if as_json:
        _echo_report_json(report)
    else:
        from pets.execution.metrics import format_report

        names = {bot.id: bot.name for bot in config.bots}
        click.echo(format_report(report, names))
    if service is not None:
        _status(f"pets run: finished; serving the final state on {service.url} until interrupted (Ctrl-C)")
        service.serve_until_interrupted()


def _news_signaller(settings: Any) -> Any:
    """The news flow's signaller for the simulator's items: the LLM forecaster when PETS_LLM_BASE_URL
    is set, else the baseline (the promoted calibration model, if any); the feeds' reliabilities;
    matching at the scale of the simulator's few markets."""
    from pets.pipelines.forecasts import default_model_source
    from pets.pipelines.news.feeds import load_feeds
    from pets.pipelines.news.forecaster import forecaster_from_env
    from pets.pipelines.news.signals import NewsSignaller
    from pets.pipelines.simulator import AltData

    reliability = {f.source: f.reliability for f in load_feeds(settings.config_dir / "news.yaml")}
    forecaster = forecaster_from_env(default_model_source("calibration"))
    return NewsSignaller(forecaster, reliability, AltData.MATCH_THRESHOLD, AltData.FULL_SCORE)


def dead_letter_lines(letters: Iterable[Any], top: int = 10) -> list[str]:
    """The refused inputs grouped by reason (the reason's first 80 characters), most frequent first."""
    counts = Counter(letter.reason[:80] for letter in letters)
    lines = [f"  {n:6d} x {reason}" for reason, n in counts.most_common(top)]
    if len(counts) > top:
        lines.append(f"  ... and {len(counts) - top} other reasons ({DEAD_LETTERS_FILE} in the journal)")
    return (["dead letters by reason:", *lines]) if lines else []


@click.command("report")
@click.option(
    "--journal",
    "journal_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="A run folder written by `pets run` [default: the database].",
)
@click.option("--json", "as_json", is_flag=True, help='One JSON object keyed by bot id, and "portfolio".')
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write a self-contained HTML report of the run (--journal only): equity, drawdowns, "
    "P&L by bot and zone, fills per market over its mids.",
)
def report_command(journal_dir: Path | None, as_json: bool, html_file: Path | None) -> None:
    """Per-bot performance: trades, win rate, P&L, ROI, Sharpe, drawdown, fees, denials, breakers."""
    from pets.execution.metrics import build_report, format_report, with_forecasts

    settings = settings_from_env()
    config = _load_config(settings.config_dir)
    if html_file is not None and journal_dir is None:
        raise click.ClickException("--html needs --journal DIR (a run folder written by `pets run`)")
    if journal_dir is not None:
        snapshots, denials, alerts = _from_journal(journal_dir)
        for line in dead_letter_lines(_dead_letters(journal_dir)):
            _status(line)
    else:
        dsn = settings.postgres_dsn
        if not dsn:
            raise click.ClickException(
                "no --journal and no database configured (PETS_POSTGRES_DSN / pets infra up)"
            )
        snapshots, denials, alerts = _from_database(dsn)
    capital = config.system.trading.starting_capital
    allocations = {bot.id: bot.capital_allocation * capital for bot in config.bots}
    bot_ids = sorted(
        {s.bot_id for s in snapshots if s.bot_id != "portfolio"}
        | {bot.id for bot in config.bots if bot.enabled}
    )
    report = build_report(bot_ids, allocations, capital, snapshots, denials, alerts)
    if journal_dir is not None:  # the forecasters of the trades; the LLM cost is not in the journal
        intents = _journal_rows(journal_dir, "intents")
        forecaster = {r["client_order_id"]: r["cause_model_version"] for r in intents
                      if r.get("cause_model_version")}  # fmt: skip
        filled = [(r["bot_id"], r["client_order_id"]) for r in _journal_rows(journal_dir, "fills")]
        report = with_forecasts(report, forecaster, filled, {})
    names = {bot.id: bot.name for bot in config.bots}
    if html_file is not None and journal_dir is not None:
        from pets.runtime.html_report import journal_inputs, mid_paths, render

        tables = {name: _journal_rows(journal_dir, name) for name in ("reports", "markets")}
        fills, reports, markets = journal_inputs(tables)
        # a journal written before the run kept mids has none: its charts show the orders only
        has_mids = (journal_dir / "mids.parquet").is_file()
        mids = mid_paths(_journal_rows(journal_dir, "mids")) if has_mids else {}
        title = f"PETS run {journal_dir.name}"
        page = render(title, report, names, snapshots, fills, reports, markets, config, mids)
        html_file.write_text(page, encoding="utf-8")
        _status(f"HTML report: {html_file}")
    if as_json:
        _echo_report_json(report)
    else:
        click.echo(format_report(report, names))


def _from_journal(directory: Path) -> tuple[list[Any], list[tuple[str, str]], list[Any]]:
    import msgspec

    from pets.schemas.control import RiskAlert
    from pets.schemas.orders import PnlSnapshot

    snapshots = [msgspec.convert(r, PnlSnapshot) for r in _journal_rows(directory, "pnl")]
    denials = [(r["bot_id"], r["rule"]) for r in _journal_rows(directory, "denials")]
    alerts = [msgspec.convert(r, RiskAlert) for r in _journal_rows(directory, "alerts")]
    return snapshots, denials, alerts


def _journal_rows(directory: Path, name: str) -> list[dict[str, Any]]:
    import polars as pl

    path = directory / f"{name}.parquet"
    if not path.is_file():
        raise click.ClickException(f"{path}: missing (not a run folder written by `pets run`)")
    return pl.read_parquet(path).to_dicts()


def _dead_letters(directory: Path) -> list[Any]:
    """The run's dead letters (none for a journal written before they were kept)."""
    import msgspec

    from pets.schemas.control import DeadLetter

    path = directory / DEAD_LETTERS_FILE
    if not path.is_file():
        return []
    decoder = msgspec.json.Decoder(DeadLetter)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def _from_database(dsn: str) -> tuple[list[Any], list[tuple[str, str]], list[Any]]:
    import psycopg

    from pets.pipelines.tables import PNL_SNAPSHOTS
    from pets.schemas.control import RiskAlert
    from pets.schemas.orders import PnlSnapshot

    ns = "(extract(epoch from ts) * 1000000)::bigint * 1000"
    columns = [c for c in PNL_SNAPSHOTS.column_names if c != "ts"]
    try:
        with psycopg.connect(dsn) as conn:
            pnl = conn.execute(f"SELECT {ns}, {', '.join(columns)} FROM pnl_snapshots ORDER BY ts").fetchall()
            denials = conn.execute("SELECT bot_id, rule FROM order_denials").fetchall()
            events = conn.execute(
                f"SELECT alert_id, kind, bot_id, rule, message, severity, {ns} FROM risk_events"
            ).fetchall()
    except psycopg.Error as exc:
        raise click.ClickException(
            f"reading the database failed: {str(exc).strip().splitlines()[0]}"
        ) from None
    snapshots = [PnlSnapshot(ts_ns=row[0], **dict(zip(columns, row[1:], strict=True))) for row in pnl]
    alerts = [
        RiskAlert(alert_id=a, kind=k, bot_id=b, rule=r, message=m, severity=s, ts_ns=t)
        for a, k, b, r, m, s, t in events
    ]
    return snapshots, [(b, r) for b, r in denials], alerts


# ---------------------------------------------------------------------------------------- benchmarks


@bench.command("loop")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--repeat", default=1, show_default=True, help="Replay the input this many times (fresh state)."
)
def bench_loop(files: tuple[Path, ...], as_json: bool, repeat: int) -> None:
    """Frames/s through market state + the enabled bots + risk + paper execution + portfolio in one
    process, over FILES or the shared recordings (../shared/data/polymarket/l2), else the simulator."""
    from pets import native
    from pets.runtime import sources
    from pets.runtime.loop import TradingLoop

    settings = settings_from_env()
    config = _load_config(settings.config_dir)
    paths = list(files) or _shared_recordings(settings)
    if paths:
        replayed = sources.replay(paths)
        markets, frames = replayed.markets, list(replayed.frames)
        input_name = f"{len(paths)} recordings"
    else:
        source = sources.simulated(config)
        markets, frames = source.markets, list(source.frames)
        input_name = "simulator (no shared recordings found)"
    total = seconds = 0.0
    counts: dict[str, int] = {}
    for _ in range(repeat):
        loop = TradingLoop(config, markets)
        started = time.perf_counter()
        loop.run(frames)
        seconds += time.perf_counter() - started
        total += len(frames)
        counts = loop.stats.topics
    result = {
        "input": input_name,
        "frames": int(total),
        "seconds": round(seconds, 3),
        "frames_per_s": round(total / seconds) if seconds else 0,
        "top_of_book": counts.get("md.tob", 0),
        "intents": counts.get("order.intent", 0),
        "approved": counts.get("order.exec", 0),
        "reports": counts.get("exec.report", 0),
        "bots": [bot.id for bot in config.bots if bot.enabled],
        "compiled": native.active,  # the hot path from build/native (pets.native) or pure Python
        "peak_rss_mb": peak_rss_mb(),
    }
    echo_result(result, as_json)


def _shared_recordings(settings: Any) -> list[Path]:
    directory = settings.shared_data_dir / "polymarket" / "l2"
    return sorted(directory.glob("*.jsonl.gz")) if directory.is_dir() else []


@bench.command("loop-latency")
@click.option("--rate", default=2000, show_default=True, help="md.book frames per second to produce.")
@click.option("--seconds", "duration_s", default=40.0, show_default=True, help="How long to produce.")
@click.option(
    "--epoch-ms", default=5000, show_default=True, help="The flows' Bytewax epoch (as `pets flow run`)."
)
@click.option(
    "--no-recovery", is_flag=True, help="Run the flows without their recovery stores (not as deployed)."
)
@click.option("--hops", is_flag=True, help="Also time md.tob and order.intent (costs this process CPU).")
@click.option("--partitions", type=int, default=None, help="Partitions per topic [default: the registry's].")
@click.option(
    "--runs", default=3, show_default=True, help="Runs in a row (each its own topics and flow processes)."
)
@click.option(
    "--broker-warmup-s", default=15.0, show_default=True, help="Frames through the broker first (its JIT)."
)
@click.option("--json", "as_json", is_flag=True)
def bench_loop_latency(
    rate: int,
    duration_s: float,
    epoch_ms: int,
    no_recovery: bool,
    hops: bool,
    partitions: int | None,
    runs: int,
    broker_warmup_s: float,
    as_json: bool,
) -> None:
    """md.book frame -> approved order on order.exec, with market_state, bots and risk each a process
    (`pets flow run`) on the real broker: p50/p99/max of the time from producing a frame to consuming
    the first approved order priced off it (matched by the frame's venue timestamp), for each of
    `--runs` runs, so a slow run cannot hide behind the others."""
    from pets.cli._output import echo_json
    from pets.runtime.latency import measure_latency, warm_broker

    settings = settings_from_env()
    _status(f"broker warm-up: {warm_broker(settings, broker_warmup_s):,} frames through it")
    results = []
    for n in range(1, runs + 1):
        result = measure_latency(
            settings,
            rate=rate,
            duration_s=duration_s,
            progress=_status,
            epoch_ms=epoch_ms,
            recovery=not no_recovery,
            hops=hops,
            partitions=partitions,
        )
        _status(f"run {n}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
        results.append(result)
    if as_json:
        echo_json({"runs": results, "peak_rss_mb": peak_rss_mb()})
        return
    for n, result in enumerate(results, 1):
        click.echo(f"--- run {n}")
        echo_result(result, False)
    click.echo(f"peak_rss_mb  {peak_rss_mb()}")


commands = [run, report_command]
