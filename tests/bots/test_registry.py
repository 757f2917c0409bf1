from __future__ import annotations

import msgspec
import pytest
from bot_factories import CONFIG

from pets.bots.registry import STRATEGY_CLASSES, UnimplementedStrategyError, build_bots


def test_builds_only_enabled_bots() -> None:
    enabled = {b.id for b in CONFIG.bots if b.enabled}
    bots = build_bots(CONFIG)
    assert [b.bot_id for b in bots] == sorted(enabled)
    off = msgspec.structs.replace(
        CONFIG,
        bots=tuple(msgspec.structs.replace(b, enabled=False) if b.id == "bot_05" else b for b in CONFIG.bots),
    )
    assert "bot_05" not in [b.bot_id for b in build_bots(off)]


def test_an_enabled_bot_without_an_implementation_is_a_clear_error() -> None:
    on = msgspec.structs.replace(
        CONFIG,
        bots=tuple(msgspec.structs.replace(b, enabled=True) if b.id == "bot_03" else b for b in CONFIG.bots),
    )
    without = {name: cls for name, cls in STRATEGY_CLASSES.items() if name != "copy_trading"}
    with pytest.raises(UnimplementedStrategyError, match="bot_03 \\(copy_trading\\) is enabled"):
        build_bots(on, without)
