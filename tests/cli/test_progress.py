"""Progress of long commands: a bar redrawn in place on a terminal, plain lines otherwise, nothing for
a short command or machine output."""

from __future__ import annotations

import io
from pathlib import Path

from pets.cli._progress import Progress, tracked


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_interval_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("replay", 1000, "frames", every_s=10, stream=out, tty=False, clock=clock)
    for n in range(1, 1001):
        clock.now = n * 0.025  # 25 s in all: lines at 10 s and 20 s, then the final one
        progress.update(n)
    progress.close()
    assert out.getvalue().splitlines() == [
        "replay: 400/1,000 frames (40%), 40 frames/s, 10 s",
        "replay: 800/1,000 frames (80%), 40 frames/s, 20 s",
        "replay: 1,000/1,000 frames (100%), 40 frames/s, 25 s",
    ]


def test_a_bar_redrawn_in_place_on_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("backtest", 4, "events", stream=out, tty=True, clock=clock, enabled=False)
    for _ in tracked(range(4), progress):
        clock.now += 1
    text = out.getvalue()
    assert "\n" not in text.rstrip("\n") and text.endswith("\n")  # one line, redrawn with \r
    # every step (a second apart, so none is skipped) and the final state
    assert [part[:29] for part in text.split("\r")[1:]] == [
        "backtest [" + "#" * 7 + "." * 12,
        "backtest [" + "#" * 15 + "." * 4,
        "backtest [" + "#" * 19,
        "backtest [" + "#" * 19,
        "backtest [" + "#" * 19,
    ]
    assert "\rbacktest [" + "#" * 30 + "] 4/4 events (100%)" in text


def test_nothing_for_a_short_command_or_for_machine_output() -> None:
    quick, clock = io.StringIO(), Clock()
    progress = Progress("replay", None, "frames", stream=quick, tty=False, clock=clock)
    for _ in tracked(range(100), progress):
        clock.now += 0.01  # 1 s in all: done before the first line is due
    assert quick.getvalue() == ""
    machine = io.StringIO()
    progress = Progress("replay", None, "frames", stream=machine, tty=False, clock=clock, enabled=False)
    for _ in tracked(range(100), progress):
        clock.now += 1
    assert machine.getvalue() == ""


def test_pets_replay_draws_a_bar_on_a_terminal(shared_data: Path) -> None:
    """The real command under a pseudo-terminal: its stderr carries the bar, its stdout the summary."""
    import os
    import pty
    import subprocess
    import sys

    recording = sorted((shared_data / "polymarket" / "l2").glob("*.jsonl.gz"))[0]
    master, slave = pty.openpty()
    pets = str(Path(sys.executable).parent / "pets")
    done = subprocess.run([pets, "replay", str(recording)], stderr=slave, stdout=subprocess.PIPE, timeout=120)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert done.returncode == 0
    frames = int(done.stdout.split()[1])  # "frames N  parsed ..."
    assert b"\rreplay: " in shown and f"replay: {frames:,} frames".encode() in shown, shown[-300:]
