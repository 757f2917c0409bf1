"""Just enough of the Chrome DevTools Protocol to drive Debian's headless Chromium from a test:
open a URL, run JavaScript, take a screenshot (no browser download, no driver)."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect


class Browser:
    def __init__(self, binary: str, port: int, profile: Path) -> None:
        self.process = subprocess.Popen(
            [
                binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--window-size=1400,1000", f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                pages = [
                    t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"
                ]
                if pages:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromium's DevTools endpoint did not come up")
            time.sleep(0.2)
        self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for_text(self, text: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        probe = f"document.body !== null && document.body.innerText.includes({json.dumps(text)})"
        while not self.evaluate(probe):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {text!r}")
            time.sleep(0.2)

    def click_text(self, selector: str, text: str, timeout_s: float = 15) -> bool:
        """Click the first `selector` element whose text is `text` (trimmed), waiting for it to render."""
        script = f"""(() => {{
            const el = [...document.querySelectorAll({json.dumps(selector)})]
                .find(e => e.innerText.trim() === {json.dumps(text)});
            if (!el) return false;
            el.click();
            return true;
        }})()"""
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(script):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(10)
