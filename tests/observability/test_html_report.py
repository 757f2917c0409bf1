"""`pets report --journal DIR --html FILE` over a real paper run: self-contained, and its figures are
the report's (one definition of each measure)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import polars as pl

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
