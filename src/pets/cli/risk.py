"""`pets risk ...`: the risk gate's own arithmetic, for scripts.

pets risk kelly --probability P --price Q --fee-rate R --bankroll B [--fraction F] [--held S] [--json]
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import click


class _DecimalParam(click.ParamType):
    name = "decimal"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal number", param, ctx)
        if not result.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return result


DECIMAL = _DecimalParam()


@click.group("risk")
def risk_group() -> None:
    """The risk gate's sizing rules, computed by the code the gate runs."""


@risk_group.command("kelly")
@click.option("--probability", type=DECIMAL, required=True, help="Win probability of the token bought.")
@click.option("--price", type=DECIMAL, required=True, help="Price per share, in (0, 1).")
@click.option("--fee-rate", type=DECIMAL, required=True, help="The market's taker feeRate (0 for post-only).")
@click.option("--bankroll", type=DECIMAL, required=True, help="The bot's current equity, pUSD.")
@click.option(
    "--fraction", type=DECIMAL, default=None, help="Kelly fraction [default: kelly.default_fraction]."
)
@click.option("--held", type=DECIMAL, default=Decimal(0), show_default=True, help="Shares already held.")
@click.option("--json", "as_json", is_flag=True, help='One JSON object {"f_star", "shares", "cost"}.')
def kelly(
    probability: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    bankroll: Decimal,
    fraction: Decimal | None,
    held: Decimal,
    as_json: bool,
) -> None:
    """Exact Kelly with fees: f* = (p - c) / (1 - c) with c = price + fee per share; the shares to buy
    (fraction x f* x bankroll / c, less those held) and their cost. No bet (p <= c, or nothing left to
    buy) prints the reason and exits 0."""
    from pets.cli._output import echo_json
    from pets.risk.denial import Denial
    from pets.risk.kelly import kelly_optimal, kelly_stake, share_cost

    if not Decimal(0) < price < Decimal(1):
        raise click.BadParameter(f"{price} is outside (0, 1)", param_hint="--price")
    if fraction is None:
        from pets.cli import settings_from_env
        from pets.cli.run import _load_config

        fraction = _load_config(settings_from_env().config_dir).risk.kelly.default_fraction
    stake = kelly_stake(probability, price, fee_rate, bankroll, fraction, held)
    if isinstance(stake, Denial):
        f_star = kelly_optimal(probability, share_cost(price, fee_rate))
        if as_json:
            echo_json({"f_star": _plain(f_star), "shares": "0", "cost": "0", "reason": stake.reason})
        else:
            click.echo(f"no bet: {stake.reason}")
        return
    if as_json:
        row = {"f_star": stake.f_star, "shares": stake.shares, "cost": stake.cost}
        echo_json({key: _plain(value) for key, value in row.items()})
    else:
        click.echo(
            f"f* {stake.f_star:.6f}: buy {stake.shares} shares for {stake.cost} "
            f"({fraction} Kelly of {bankroll}, {held} held)"
        )


def _plain(value: Decimal) -> str:
    """Without trailing zeros or an exponent: 40.835700 -> "40.8357", 100.00 -> "100"."""
    return f"{value.normalize():f}"


commands = [risk_group]
