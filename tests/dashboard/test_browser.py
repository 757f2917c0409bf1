"""The real thing: `pets run --api-port` (a paced paper run) and `pets dashboard` as processes, every
page opened in headless Chromium with a screenshot saved under artifacts/dashboard/, the EMERGENCY HALT
ALL button pressed and the halt seen through the API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from desk_support import free_port
from pets.settings import project_root

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = project_root() / "artifacts" / "dashboard"
PAGES = {"Overview": "Total ROI", "P&L": "Candlesticks of", "Positions": "Positions",
         "Bot control": "bot_01", "Risk monitor": "Drawdown against limits"}  # fmt: skip


def _wait(url: str, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered (exit code {process.poll()})")
        time.sleep(0.3)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(API URL, dashboard URL): a paper run paced at 10x, and the dashboard over it."""
    token = "browser-token"
    env = {**os.environ, "PETS_API_TOKEN": token}  # `pets run` needs no service: the test's settings do
    api_port, ui_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    pets = [sys.executable, "-m", "pets.cli"]
    run = subprocess.Popen(
        [*pets, "run", "--duration", "3600", "--speed", "10", "--api-port", str(api_port),
         "--journal", str(tmp_path / "journal")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ui = subprocess.Popen(
        [*pets, "dashboard", "--api", api, "--port", str(ui_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(f"{api}/health", 60, run)
        _wait(f"http://127.0.0.1:{ui_port}/_stcore/health", 60, ui)
        yield api, f"http://127.0.0.1:{ui_port}"
    finally:
        for process in (ui, run):
            process.terminate()
        for process in (ui, run):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_every_page_in_chromium_and_the_halt_button(desk: tuple[str, str], tmp_path: Path) -> None:
    from cdp import Browser

    api, ui = desk
    assert CHROMIUM is not None
    browser = Browser(CHROMIUM, free_port(), tmp_path / "profile")
    try:
        browser.open(ui)
        browser.wait_for_text("SIMULATED", 40)
        for n, (page, text) in enumerate(PAGES.items(), 1):
            assert browser.click_text('[role="radiogroup"] label', page), page
            browser.wait_for_text(text, 30)
            time.sleep(1.0)  # charts draw after the text
            browser.screenshot(ARTIFACTS / f"{n}_{page.replace(' ', '_').replace('&', 'and')}.png")
        assert httpx.get(f"{api}/risk").json()["portfolio_state"] != "HALTED"
        assert browser.click_text('[role="radiogroup"] label', "Overview")
        browser.wait_for_text("EMERGENCY HALT ALL", 30)
        assert browser.click_text("button", "EMERGENCY HALT ALL")
        browser.wait_for_text("emergency halt: sent", 30)
        deadline = time.monotonic() + 15
        while httpx.get(f"{api}/risk").json()["trading_state"] != "halted" and time.monotonic() < deadline:
            time.sleep(0.2)
        risk = httpx.get(f"{api}/risk").json()
        assert (risk["trading_state"], risk["portfolio_state"]) == ("halted", "HALTED")
        assert "dashboard" in risk["reason"]
        browser.wait_for_text("Trading: HALTED", 15)
        browser.screenshot(ARTIFACTS / "6_Overview_halted.png")
        audit = httpx.get(f"{api}/audit").json()
        assert audit[0]["action"] == "halt" and audit[0]["outcome"] == "sent"
    finally:
        browser.close()
