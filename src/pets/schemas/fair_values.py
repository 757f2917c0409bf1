"""config/fair_values.yaml: the trader's own fair probabilities, which Bot 10 prefers to the model.

    fair_values:
      - market: "0xabc..."          # condition id
        probability: "0.62"         # of the market's first outcome (YES); the other token gets 1 - p
        note: "polls + incumbency"  # why: shown in the intent's cause
        valid_until: "2027-01-31T00:00:00Z"   # ignored after this time (the model takes over)

Loaded into frozen typed objects; every problem is reported with the file and the key, as the rest of
the configuration is (schemas/config.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from pets.schemas.config import (
    _MISSING,
    ConfigError,
    InvalidConfigError,
    Probability,
    _convert,
    _display,
    _read_yaml,
)


class FairValue(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    market: str  # condition id
    probability: Probability  # of the first outcome (token_ids[0])
    note: str = ""
    valid_until: datetime  # timezone-aware

    @property
    def valid_until_ms(self) -> int:
        return int(self.valid_until.timestamp() * 1000)

    def of(self, token_index: int) -> Decimal:
        """The fair probability of the market's token at `token_index` (binary markets)."""
        return self.probability if token_index == 0 else 1 - self.probability


class FairValueFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    fair_values: tuple[FairValue, ...] = ()


class FairValues(msgspec.Struct, frozen=True, kw_only=True):
    """Fair values by condition id."""

    by_market: dict[str, FairValue] = msgspec.field(default_factory=dict)

    def current(self, market: str, now_ms: int) -> FairValue | None:
        """The market's fair value while it is valid, else None."""
        fair = self.by_market.get(market)
        return fair if fair is not None and now_ms < fair.valid_until_ms else None


def load_fair_values(path: Path) -> FairValues:
    """The file's fair values; InvalidConfigError listing every problem (file: key: message)."""
    errors: list[ConfigError] = []
    data = _read_yaml(path, errors)
    if data is _MISSING:
        raise InvalidConfigError(errors)
    file = _display(path)
    parsed = _convert({} if data is None else data, FairValueFile, file, (), errors)
    if parsed is None:
        raise InvalidConfigError(errors)
    first: dict[str, int] = {}
    for i, fair in enumerate(parsed.fair_values):
        if fair.valid_until.tzinfo is None:
            errors.append(
                ConfigError(
                    file,
                    f"fair_values[{i}].valid_until",
                    f"{fair.valid_until.isoformat()} has no time zone (add Z for UTC)",
                )
            )
        if fair.market in first:
            errors.append(
                ConfigError(
                    file,
                    f"fair_values[{i}].market",
                    f"duplicate market {fair.market!r} (also fair_values[{first[fair.market]}])",
                )
            )
        first.setdefault(fair.market, i)
    if errors:
        raise InvalidConfigError(errors)
    return FairValues(by_market={fair.market: fair for fair in parsed.fair_values})
