"""The desk's commands and make targets: `pets api health`, `pets api events`, and every product make
target a thin call of one `pets` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from desk_support import ServedRun, free_port
from pets.cli import main
from pets.settings import project_root


def test_health_check(served_run: ServedRun) -> None:
    ok = CliRunner().invoke(main, ["api", "health", "--api", served_run.url])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["status"] == "ok"
    down = CliRunner().invoke(main, ["api", "health", "--api", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 1 and "does not answer" in down.output


def test_events_follow(served_run: ServedRun) -> None:
    """`pets api events` prints the kept events one JSON object a line (read until the first few)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pets.cli", "api", "events", "--api", served_run.url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [json.loads(process.stdout.readline()) for _ in range(3)]
    finally:
        process.terminate()
        process.wait(10)
    first = lines[0]["seq"]  # the oldest event the API still keeps
    assert [e["seq"] for e in lines] == [first, first + 1, first + 2]
    assert all(e["type"] in {"fill", "denial", "alert", "bot_state"} for e in lines)


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("start", "run --api-port 8000 --speed 1"),
        ("start-bot BOT_ID=3", "bot start bot_03"),
        ("stop-bot BOT_ID=bot_10", "bot stop bot_10"),
        ("start-all-bots", "bot start '*'"),
        ("emergency-halt", 'halt --reason "make emergency-halt"'),
        ("health-check", "api health --api http://127.0.0.1:8000"),
        ("logs", "api events --api http://127.0.0.1:8000"),
        ("shell-db", "db shell"),
        ("backup-db", "db backup"),
        ("dashboard", "dashboard --api http://127.0.0.1:8000 --port 8501"),
    ],
)
def test_make_targets_are_one_pets_command(target: str, command: str) -> None:
    # -n: print the recipe; the install prerequisites are made up to date by `-o`
    prerequisites = ["-o", ".venv/.installed", "-o", "install", "-o", "native"]
    printed = subprocess.run(
        ["make", "-s", "-n", *prerequisites, *target.split()],
        cwd=project_root(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert printed.splitlines()[-1] == f".venv/bin/pets {command}"
