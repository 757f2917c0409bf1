"""`pets report --journal DIR --html FILE`: a finished run as one self-contained HTML page (inline
SVG and CSS, no script, nothing fetched): the per-bot table of `execution.metrics.build_report`, the
equity curve and the drawdown of every bot and the portfolio (drawdown: `drawdown_after`, the one
definition), P&L by bot, realized P&L by zone, and each market's price path: its tokens' mids (the
journal's sampled series, grey) under the run's order prices (lines) and fills (dots).

P&L by zone: the executor's own `Portfolio` books the run's fills again; what each fill realizes, net
of its fee and rebate, goes to the zone (config/zone_framework.yaml) of the price the holding was
bought at (a buy's fee: the zone of its price).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pets.execution.metrics import PORTFOLIO, ZERO, BotReport, drawdown_after
from pets.execution.portfolio import Portfolio
from pets.risk.zones import zone_for
from pets.schemas.config import PetsConfig
from pets.schemas.market_data import MarketInfo
from pets.schemas.orders import ExecutionReport, PnlSnapshot

WIDTH, HEIGHT, PAD = 640, 180, 36
UNDER = "#bbbbbb"  # the mids, drawn under the orders and fills
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#000000")  # fmt: skip
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}
h2{font-size:1.15em;margin-top:2em}table{border-collapse:collapse;font-size:.85em}
td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}svg{background:#fafafa;border:1px solid #eee;margin:.3em 0}
.neg{color:#c00}.legend span{margin-right:1em;font-size:.8em}.note{color:#666;font-size:.85em}
"""


def _x(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    return low, (high - low) or 1.0


def svg_lines(
    series: Mapping[str, Sequence[tuple[float, float]]],
    y_label: str,
    dots: Sequence[tuple[float, float]] = (),
    under: Mapping[str, Sequence[tuple[float, float]]] | None = None,
) -> str:
    """Lines (and dots) on shared axes: one polyline per series, x and y scaled to the data; the
    `under` series first, in grey, beneath the rest."""
    under = under or {}
    points = [p for lines in (under, series) for line in lines.values() for p in line] + list(dots)
    if not points:
        return '<p class="note">no data</p>'
    x0, xs = _x([p[0] for p in points])
    y0, ys = _x([p[1] for p in points])

    def at(p: tuple[float, float]) -> str:
        x = PAD + (p[0] - x0) / xs * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD + 8 - (p[1] - y0) / ys * (HEIGHT - 2 * PAD)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">']
    parts.append(
        f'<text x="4" y="14" font-size="11">{html.escape(y_label)}: {y0:,.4g} .. {y0 + ys:,.4g}</text>'
    )
    legend = []
    coloured = [(UNDER, name, line) for name, line in under.items()]
    coloured += [(COLOURS[n % len(COLOURS)], name, line) for n, (name, line) in enumerate(series.items())]
    for colour, name, line in coloured:
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(map(at, line))}"/>'
        )
        legend.append(f'<span style="color:{colour}">■ {html.escape(name)}</span>')
    for dot in dots:
        x, y = at(dot).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="#d62728"/>')
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'


def svg_bars(values: Mapping[str, Decimal], label: str) -> str:
    if not values:
        return '<p class="note">no data</p>'
    top = max(abs(v) for v in values.values()) or Decimal(1)
    row = 22
    parts = [f'<svg width="{WIDTH}" height="{row * len(values) + 10}" xmlns="http://www.w3.org/2000/svg">']
    middle = WIDTH // 2
    for n, (name, value) in enumerate(values.items()):
        size = float(abs(value) / top) * (middle - 120)
        x = middle if value >= 0 else middle - size
        colour = "#2ca02c" if value >= 0 else "#d62728"
        y = 5 + n * row
        parts.append(f'<text x="4" y="{y + 14}" font-size="12">{html.escape(name)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{size:.1f}" height="{row - 8}" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - 110}" y="{y + 14}" font-size="12">{value:,.2f} {label}</text>')
    return "".join(parts) + "</svg>"


def equity_and_drawdown(
    snapshots: Sequence[PnlSnapshot],
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
    equity: dict[str, list[tuple[float, float]]] = {}
    drawdown: dict[str, list[tuple[float, float]]] = {}
    peaks: dict[str, Decimal] = {}
    for snap in snapshots:
        t = snap.ts_ns / 1e9
        peak, current = drawdown_after(peaks.get(snap.bot_id, snap.equity), ZERO, snap.equity)
        peaks[snap.bot_id] = peak
        equity.setdefault(snap.bot_id, []).append((t, float(snap.equity)))
        drawdown.setdefault(snap.bot_id, []).append((t, float(current)))
    return equity, drawdown


def pnl_by_zone(
    config: PetsConfig, fills: Sequence[ExecutionReport], markets: Sequence[MarketInfo]
) -> dict[str, Decimal]:
    """Realized P&L net of fees per zone of the entry price: the run's fills booked again, then the
    resolved markets settled (a held token pays 1 or 0 at resolution)."""
    trading = config.system.trading
    allocations = {bot.id: bot.capital_allocation * trading.starting_capital for bot in config.bots}
    portfolio = Portfolio(trading.starting_capital, allocations)
    zones = config.zones.zones
    by_zone: dict[str, Decimal] = {}

    def add(price: Decimal, amount: Decimal) -> None:
        zone = zone_for(price, zones)
        name = f"zone {zone.zone} ({zone.name})" if zone is not None else "no zone"
        by_zone[name] = by_zone.get(name, ZERO) + amount

    for fill in fills:
        account = portfolio.account(fill.bot_id)
        holding = account.holdings.get(fill.asset_id)
        bought_at = fill.last_px or fill.order_price
        if holding is not None and holding.qty:
            bought_at = holding.avg_price
        before = account.realized
        if portfolio.on_report(fill) is not None:
            add(bought_at, account.realized - before - fill.fee + fill.rebate)
    for info in markets:
        payouts = info.payouts()
        if payouts is None:
            continue
        held = [
            (holding, holding.avg_price, holding.realized)
            for account in portfolio.accounts.values()
            for token in payouts
            if (holding := account.holdings.get(token)) is not None and holding.qty
        ]
        portfolio.settle(info.condition_id, payouts, 0)
        for holding, bought_at, before in held:
            add(bought_at, holding.realized - before)
    return dict(sorted(by_zone.items()))


def render(
    title: str,
    report: Mapping[str, BotReport],
    names: Mapping[str, str],
    snapshots: Sequence[PnlSnapshot],
    fills: Sequence[ExecutionReport],
    reports: Sequence[ExecutionReport],
    markets: Sequence[MarketInfo],
    config: PetsConfig,
    mids: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]] | None = None,
) -> str:
    """The page; `mids`: market -> series of its tokens' mids (`mid_paths`), none for an older journal."""
    questions = {info.condition_id: info.question for info in markets}
    equity, drawdown = equity_and_drawdown(snapshots)
    body = [f"<h1>{html.escape(title)}</h1>", _table(report, names)]
    body.append("<h2>Equity per bot</h2>")
    body += [
        f"<h3>{html.escape(names.get(b, b))}</h3>" + svg_lines({b: line}, "equity $")
        for b, line in equity.items()
    ]
    body.append("<h2>Drawdown (fall from the equity peak, fraction)</h2>")
    body.append(svg_lines(drawdown, "drawdown"))
    body.append("<h2>P&amp;L by bot</h2>")
    body.append(svg_bars({b: line.pnl for b, line in report.items() if b != PORTFOLIO}, "$"))
    body.append("<h2>Realized P&amp;L by zone (zone of the entry price, net of fees)</h2>")
    body.append(svg_bars(pnl_by_zone(config, fills, markets), "$"))
    body.append("<h2>Fills over each market's order prices and mids</h2>")
    body += _markets(reports, fills, questions, mids or {})
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style>'
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(body)}</body></html>"


def _table(report: Mapping[str, BotReport], names: Mapping[str, str]) -> str:
    columns = (
        "bot",
        "trades",
        "win rate",
        "P&amp;L $",
        "ROI",
        "Sharpe",
        "max drawdown",
        "fees $",
        "denials",
        "breakers",
    )
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    rows = []
    for bot_id, line in report.items():
        cls = ' class="neg"' if line.pnl < 0 else ""
        sharpe = "n/a" if line.sharpe is None else f"{line.sharpe:.2f}"
        cells = (
            html.escape(names.get(bot_id, bot_id)), line.trades, f"{line.win_rate:.0%}", f"{line.pnl:,.2f}",
            f"{line.roi:.2%}", sharpe, f"{line.max_drawdown:.2%}", f"{line.fees:,.2f}",
            sum(line.denials_by_reason.values()), line.breaker_events,
        )  # fmt: skip
        rows.append(
            "<tr>" + "".join(f"<td{cls if n == 3 else ''}>{c}</td>" for n, c in enumerate(cells)) + "</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _markets(
    reports: Sequence[ExecutionReport],
    fills: Sequence[ExecutionReport],
    questions: Mapping[str, str],
    mids: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
) -> list[str]:
    """A chart per market the run ordered in: its mids under its order prices and fills."""
    paths: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for report in reports:
        if report.kind == "ack":
            line = paths.setdefault(report.market, {}).setdefault(f"{report.asset_id[:10]} {report.side}", [])
            line.append((report.ts_ns / 1e9, float(report.order_price)))
    dots: dict[str, list[tuple[float, float]]] = {}
    for fill in fills:
        if fill.last_px is not None:
            dots.setdefault(fill.market, []).append((fill.ts_ns / 1e9, float(fill.last_px)))
    out = []
    for market in sorted(set(paths) | set(dots)):
        out.append(f"<h3>{html.escape(questions.get(market, market))}</h3>")
        out.append(svg_lines(paths.get(market, {}), "price", dots.get(market, []), mids.get(market)))
    return out or ['<p class="note">no orders</p>']


def mid_paths(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """market -> "mid <token>" -> (venue seconds, mid), from the journal's mids table."""
    paths: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in rows:
        line = paths.setdefault(row["market"], {}).setdefault(f"mid {row['asset_id'][:10]}", [])
        line.append((row["ts_ms"] / 1e3, float(row["mid"])))
    return paths


def journal_inputs(
    rows: Mapping[str, list[dict[str, Any]]],
) -> tuple[list[ExecutionReport], list[ExecutionReport], list[MarketInfo]]:
    """The run's fills and reports (in journal order) and its markets' last states, from its tables
    (the journal joins a market's lists with commas)."""
    import msgspec

    reports = [msgspec.convert(r, ExecutionReport) for r in rows["reports"]]
    fills = [r for r in reports if r.last_qty > 0]
    markets = []
    for row in rows["markets"]:
        prices = row["outcome_prices"]
        fields = {
            **row,
            "token_ids": tuple(row["token_ids"].split(",")),
            "outcomes": tuple(row["outcomes"].split(",")),
            "outcome_prices": None if prices is None else tuple(Decimal(p) for p in prices.split(",")),
        }
        markets.append(msgspec.convert({k: v for k, v in fields.items() if v is not None}, MarketInfo))
    return fills, reports, markets
