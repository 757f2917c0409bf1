"""`pets chain decode|follow` and `pets bench chain-decode`: whale-wallet fills from Polygon logs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from pets.cli._output import echo_json


@click.group()
def chain() -> None:
    """Polymarket exchange fills on Polygon (chain.fill)."""


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def fill_record(fill: Any) -> dict[str, Any]:
    """The `pets chain decode --json` shape of a WalletFill."""
    return {
        "tx_hash": fill.tx_hash,
        "log_index": fill.log_index,
        "exchange": fill.exchange,
        "wallet": fill.wallet,
        "counterparty": fill.counterparty,
        "token_id": fill.asset_id,
        "side": fill.side,
        "price": _plain(fill.price),
        "shares": _plain(fill.shares),
        "usdc": _plain(fill.usdc),
        "fee": _plain(fill.fee),
    }


@chain.command("decode")
@click.option(
    "--logs", "logs_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON list of eth_getLogs log objects.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of fills.")
def decode(logs_path: Path, as_json: bool) -> None:
    """Decode the OrderFilled logs of the Polymarket exchanges: one fill per OrderFilled (of its maker),
    none for OrdersMatched; any other log is reported on stderr with the reason."""
    from pets.pipelines.chain.decode import Undecodable, decode_log

    try:
        logs = json.loads(logs_path.read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{logs_path}: not a JSON list of logs ({exc})") from None
    if not isinstance(logs, list):
        raise click.ClickException(f"{logs_path}: not a JSON list of logs")
    fills = []
    for i, log in enumerate(logs):
        if not isinstance(log, dict):
            click.echo(f"log {i}: not a log object", err=True)
            continue
        out = decode_log(log)
        if isinstance(out, Undecodable):
            where = f"{log.get('transactionHash')}:{log.get('logIndex')}"
            click.echo(f"log {i} ({where}): {out.reason}", err=True)
        elif out is not None:
            fills.append(fill_record(out))
    if as_json:
        echo_json(fills)
        return
    for f in fills:
        click.echo(
            f"{f['tx_hash'][:12]}:{f['log_index']:<5} {f['exchange']:<10} {f['wallet']} {f['side']:<4} "
            f"{f['shares']:>12} @ {f['price']:<8} usdc {f['usdc']:<12} fee {f['fee']}"
        )


@chain.command("follow")
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="First block to read when no watermark is stored yet (default: the finalized head).",
)
@click.option(
    "--confirmations",
    type=click.Choice(["finalized", "latest"]),
    default="finalized",
    show_default=True,
    help="latest: also publish fills of unfinalized blocks (confirmed=false), retracted after a reorg.",
)
def follow(from_block: int | None, confirmations: str) -> None:
    """Follow the Polymarket exchanges on Polygon into chain.fill (resumes from its watermark)."""
    from pets.cli import settings_from_env
    from pets.cli.flow import configure_logging
    from pets.flows import chain as chain_flow

    configure_logging()
    stats = chain_flow.run(settings_from_env(), from_block=from_block, confirmations=confirmations)  # type: ignore[arg-type]
    done = f"published {stats.published} fill(s), {stats.dead_letters} dead letter(s)"
    click.echo(f"{done}; watermark {stats.watermark}")


commands = [chain]
