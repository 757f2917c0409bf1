"""`pets report --journal DIR --html FILE` over a real paper run: self-contained, and its figures are
the report's (one definition of each measure); each market's chart draws its mids under the orders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import polars as pl

from pets.runtime.html_report import UNDER

PETS = str(Path(sys.executable).parent / "pets")


def section(page: str, title: str) -> str:
    start = page.index(title)
    end = page.find("<h2>", start)
    return page[start : end if end > 0 else len(page)]


def test_the_html_report_of_a_paper_run(tmp_path: Path) -> None:
    journal, out = tmp_path / "run", tmp_path / "report.html"
    run = subprocess.run([PETS, "run", "--duration", "60", "--journal", str(journal), "--json"],
                         capture_output=True, timeout=120, check=True)  # fmt: skip
    report = json.loads(run.stdout)
    done = subprocess.run([PETS, "report", "--journal", str(journal), "--html", str(out), "--json"],
                          capture_output=True, timeout=120, check=True)  # fmt: skip
    again = json.loads(done.stdout)  # the same figures (markouts and edges need the books: run only)
    for bot, line in report.items():
        assert {k: again[bot][k] for k in ("trades", "pnl", "win_rate", "max_drawdown")} == {
            k: line[k] for k in ("trades", "pnl", "win_rate", "max_drawdown")
        }
    page = out.read_text()
    # self-contained: no script, no stylesheet or image fetched from anywhere
    assert "<script" not in page and not re.search(r'(src|href)="', page)
    traded = [bot for bot, line in report.items() if line["trades"] and bot != "portfolio"]
    assert traded
    equity = section(page, "Equity per bot")
    assert equity.count("<polyline") == len([b for b in report if b != "portfolio" and b in equity]) + 1
    bars = section(page, "P&amp;L by bot")
    for bot in traded:
        assert f"{D(str(report[bot]['pnl'])):,.2f} $" in bars, bot
    # realized P&L by zone adds up to what the bots realized net of fees (their last snapshots)
    zones = [D(v.replace(",", "")) for v in re.findall(r">(-?[\d,]+\.\d\d) \$<", section(page, "by zone"))]
    last = pl.read_parquet(journal / "pnl.parquet").filter(pl.col("bot_id") != "portfolio")
    last = last.group_by("bot_id").last()
    realized = sum((r["realized_pnl"] - r["fees"] + r["rebates"] for r in last.to_dicts()), D(0))
    assert abs(sum(zones, D(0)) - realized) <= D("0.01") * len(zones), (zones, realized)
    fills = pl.read_parquet(journal / "fills.parquet")
    markets = section(page, "Fills over each market")
    assert markets.count("<circle") == fills.height  # every fill on its market's chart
    # under each market's orders, its tokens' mid paths from the journal (grey, first on the chart)
    mids = pl.read_parquet(journal / "mids.parquet")
    per_second = mids.with_columns(pl.col("ts_ms") // 1000).group_by("asset_id", "ts_ms").len()
    assert mids.height > 0 and per_second["len"].max() == 1
    charts = markets.split("<h3>")[1:]
    reports = pl.read_parquet(journal / "reports.parquet")
    charted = set(reports.filter(pl.col("kind") == "ack")["market"]) | set(fills["market"])
    assert len(charts) == len(charted)
    drawn = mids.filter(pl.col("market").is_in(charted))["asset_id"].n_unique()
    assert sum(chart.count(f'stroke="{UNDER}"') for chart in charts) == drawn > 0
    for chart in charts:
        strokes = re.findall(r'stroke="([^"]+)"', chart)
        assert UNDER not in strokes or strokes[0] == UNDER  # the mids first: beneath the orders
    # a journal from before the mids were kept: the same charts, orders and fills only
    (journal / "mids.parquet").unlink()
    subprocess.run([PETS, "report", "--journal", str(journal), "--html", str(out)],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    older = section(out.read_text(), "Fills over each market")
    assert f'stroke="{UNDER}"' not in older and older.count("<circle") == fills.height
