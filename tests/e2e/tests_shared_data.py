"""Where the shared recordings are (the e2e test falls back to the simulator without them)."""

from __future__ import annotations

import os
from pathlib import Path

from pets.settings import project_root


def shared_dir() -> Path:
    return Path(os.environ.get("PETS_SHARED_DATA", str(project_root().parent / "shared" / "data")))
