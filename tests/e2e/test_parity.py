"""Issue 11 finding 5: the embedded main job and the Kafka flows compute the same thing.

The same recordings go through `pets run --replay FILES --journal DIR` (one process, the embedded
bus) and through the four flows as `pets flow run NAME` processes on the real broker, fed by
`pets replay FILES --to kafka`. The intents, approvals, denials and fills must be equal: client
order ids, prices and sizes, in order per market and bot (docs/running.md, "Same input, same
decisions": the bots flow runs each bot as its own keyed state, so two bots' answers to one frame
reach risk in either order). Three short shared recordings (two of them settle); skipped without
them (the simulator's frames are not yet decided alike: docs/running.md, "Pace").
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from e2e_harness import PETS, Flows, settle, topic_messages, wait_for

from pets.pipelines.kafka_io import ensure_topics
from pets.pipelines.migrations import migrate
from pets.schemas.orders import ApprovedOrder, ExecutionReport, OrderDenied, OrderIntent
from pets.settings import Mode, Settings, project_root

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CONFIG_DIR = project_root() / "config"
RECORDINGS = (  # short ones (80-278 frames); pit-mil and chc-stl run to settlement
    "20250624_mlb-pit-mil-2025-06-24.jsonl.gz",
    "20250624_mlb-chc-stl-2025-06-24.jsonl.gz",
    "20250701_mlb-det-wsh-2025-07-01.jsonl.gz",
)

TRADING_TOPICS = ("order.intent", "order.exec", "order.denied", "exec.report")
Row = tuple[Any, ...]
_TIMESTAMP = re.compile(rb'"timestamp":"(\d+)"')
# one distinct venue time per 200 ms of wall clock at least (more when there are few): each frame's
# consequences (tops, intents, verdicts, fills, the bots' answers to them) cross the four flows
# before the next frame arrives, on a 2-core machine shared with other work (docs/running.md, "Pace")
STEP_MS = 1000
WARM_UP_MS = 10_000
MAX_SPEED = 5.0
REPLAY_S = 40  # the replay's wall-clock length when MAX_SPEED leaves room
Tables = dict[str, dict[str, list[Row]]]  # table -> "market bot" -> rows in order


def _recordings(settings: Settings, tmp_path: Path) -> tuple[list[Path], float]:
    """The shared recordings, retimed (below) into `tmp_path`, never into the repository."""
    l2 = settings.shared_data_dir / "polymarket" / "l2"
    paths = [l2 / name for name in RECORDINGS]
    if not all(p.is_file() for p in paths):
        # the simulator's frames are not yet decided alike at any pace this machine can hold: a fill
        # can reach the flows' market maker after the next top (docs/running.md, "Pace")
        pytest.skip(f"parity needs the shared recordings {', '.join(RECORDINGS)} in {l2}")
    return _retimed(paths, tmp_path / "retimed")


def _retimed(paths: list[Path], out_dir: Path) -> tuple[list[Path], float]:
    """The recordings with their k-th distinct venue time (over all of them) moved to first + k x
    STEP_MS (+ WARM_UP_MS after the first): the same frames in the same merged order, hours played
    in seconds. Both paths read these files: what is compared is how they compute, not the
    recordings' clock. With the replay speed that plays them in REPLAY_S, MAX_SPEED at most."""
    out_dir.mkdir()
    lines = {p: gzip.decompress(p.read_bytes()).splitlines() for p in paths}
    stamps = sorted({int(m) for ls in lines.values() for line in ls for m in _TIMESTAMP.findall(line)})
    first = stamps[0]
    # the first frame's consequences meet flows that have not handled a message yet: a longer gap
    times = [first + k * STEP_MS + (WARM_UP_MS if k else 0) for k in range(len(stamps))]
    moved = {str(ts).encode(): str(at).encode() for ts, at in zip(stamps, times, strict=True)}
    out = []
    for path, content in lines.items():
        target = out_dir / path.name
        retimed = [
            _TIMESTAMP.sub(lambda m: b'"timestamp":"' + moved[m.group(1)] + b'"', line) for line in content
        ]
        target.write_bytes(gzip.compress(b"\n".join(retimed) + b"\n"))
        meta = path.with_name(path.name.replace(".jsonl.gz", ".meta.json"))
        if meta.is_file():  # the market, its tokens and the settled winner
            target.with_name(meta.name).write_bytes(meta.read_bytes())
        out.append(target)
    return out, min(MAX_SPEED, (times[-1] - first) / 1000 / REPLAY_S)


def _intent_row(intent: OrderIntent) -> Row:
    return (intent.client_order_id, intent.action, intent.asset_id, intent.side, intent.price, intent.size)


def _fill_row(report: ExecutionReport) -> Row:
    return (report.client_order_id, report.trade_id, report.liquidity, report.last_px, report.last_qty)


def _by_market(rows: Iterable[tuple[str, Row]]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for market, row in rows:
        out[market].append(row)
    return dict(out)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value).normalize()


def _journal_tables(journal: Path) -> Tables:
    def read(name: str) -> list[dict[str, Any]]:
        return pq.read_table(journal / f"{name}.parquet").to_pylist()  # type: ignore[no-any-return]

    def intent(r: dict[str, Any]) -> Row:
        size = r["requested_size"] if "requested_size" in r else r["size"]
        return (r["client_order_id"], r["action"], r["asset_id"], r["side"], _money(r["price"]), _money(size))

    return {
        "intents": _by_market((_key(r), intent(r)) for r in read("intents")),
        "approved": _by_market((_key(r), (*intent(r), _money(r["size"]))) for r in read("approved")),
        "denials": _by_market((_key(r), (*intent(r), r["rule"])) for r in read("denials")),
        "fills": _by_market((_key(r), _fill_record(r)) for r in read("fills")),
    }


def _key(r: Any) -> str:
    """Rows are compared in order per market and bot (a journal row or a message)."""
    if isinstance(r, dict):
        return f"{r['market']} {r['bot_id']}"
    return f"{r.market} {r.bot_id}"


def _fill_record(r: dict[str, Any]) -> Row:
    return (r["client_order_id"], r["trade_id"], r["liquidity"], _money(r["last_px"]), _money(r["last_qty"]))


def _kafka_tables(settings: Settings) -> Tables:
    def norm(row: Row) -> Row:
        return tuple(_money(v) if isinstance(v, Decimal) else v for v in row)

    messages = topic_messages(settings, "order.intent")
    approved: list[ApprovedOrder] = topic_messages(settings, "order.exec")
    denied: list[OrderDenied] = topic_messages(settings, "order.denied")
    reports: list[ExecutionReport] = topic_messages(settings, "exec.report")
    return {
        "intents": _by_market((_key(i), norm(_intent_row(i))) for i in messages),
        "approved": _by_market((_key(a.intent), norm((*_intent_row(a.intent), a.size))) for a in approved),
        "denials": _by_market((_key(d.intent), norm((*_intent_row(d.intent), d.rule))) for d in denied),
        "fills": _by_market((_key(r), norm(_fill_row(r))) for r in reports if r.last_qty > 0),
    }


@pytest.fixture
def flow_settings(prefixed_settings: Settings, fresh_db: str, tmp_path: Path) -> Settings:
    migrate(fresh_db)
    settings = replace(
        prefixed_settings, mode=Mode.PRODUCTION, config_dir=CONFIG_DIR, state_dir=tmp_path / "state",
        postgres_dsn=fresh_db,
    )  # fmt: skip
    ensure_topics(settings)
    return settings


def test_pets_run_replay_and_the_four_flows_decide_the_same(
    flow_settings: Settings, settings: Settings, tmp_path: Path
) -> None:
    recordings, speed = _recordings(settings, tmp_path)
    paths = [str(p) for p in recordings]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
    journal = tmp_path / "journal"
    embedded = subprocess.run(
        [PETS, "run", "--replay", *paths, "--journal", str(journal)],
        env={**env, "PETS_CONFIG_DIR": str(CONFIG_DIR), "PETS_STATE_DIR": str(tmp_path / "run_state")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert embedded.returncode == 0, embedded.stderr
    expected = _journal_tables(journal)
    assert sum(map(len, expected["intents"].values())) > 10, "the recordings must make the bots trade"
    assert expected["fills"], "and some orders fill"

    flows = Flows(flow_settings, tmp_path)
    try:
        for name in ("market_state", "bots", "risk", "executor"):
            flows.start(name)
        wait_for("the flows to start", lambda: flows.logs().count("starting") >= 4, 60, flows)
        time.sleep(5)  # their consumers join the topics: a paced replay should not queue up behind them
        replayed = subprocess.run(
            [PETS, "replay", *paths, "--to", "kafka", "--speed", str(speed), "--json"],
            env=flows.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stderr

        def count() -> int:
            return len(topic_messages(flow_settings, *TRADING_TOPICS))

        wait_for("order intents", lambda: topic_messages(flow_settings, "order.intent"), 90, flows)
        settle(count, flows, quiet_s=5.0, timeout=150)
        actual = _kafka_tables(flow_settings)
    finally:
        flows.stop_all()

    differences = [
        _diff(table, market, expected[table].get(market, []), actual[table].get(market, []))
        for table in ("intents", "approved", "denials", "fills")
        for market in sorted(set(expected[table]) | set(actual[table]))
        if expected[table].get(market, []) != actual[table].get(market, [])
    ]
    assert not differences, "\n".join(differences)


def _diff(table: str, market: str, want: list[Row], got: list[Row]) -> str:
    pairs = zip(want, got, strict=False)
    first = next((i for i, (w, g) in enumerate(pairs) if w != g), min(len(want), len(got)))
    return (
        f"{table} of {market}: {len(want)} in the journal, {len(got)} from the flows; first difference at "
        f"#{first}:\n  journal: {want[first : first + 3]}\n  flows:   {got[first : first + 3]}"
    )
