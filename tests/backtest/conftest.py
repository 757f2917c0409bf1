"""The backtests reuse the bot tests' factories (tests/bots/value_factories.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bots"))
