"""Logs: one JSON object per line (or readable lines), configured by the root group for every command;
recognisable secrets set in the environment never appear in any log or output of a paper run and of a
live run against the local trading venue."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main
from eth_account import Account

from pets.observability import logs
from pets.schemas.codec import encode
from pets.schemas.config import TradingMode, load_config
from pets.schemas.orders import ApprovedOrder, OrderIntent
from pets.settings import Settings, VenueEndpoints, project_root

PETS = str(Path(sys.executable).parent / "pets")
PRIVATE_KEY = "0x" + "5ec7e7" * 10 + "5ec7"  # made up for this test: "secret" in hex, recognisable
CANARIES = {
    "PETS_PRIVATE_KEY": PRIVATE_KEY,
    "PETS_CLOB_API_KEY": "canary-api-key-0001",
    "PETS_CLOB_SECRET": "Y2FuYXJ5LWNsb2Itc2VjcmV0LTMyLWJ5dGVzLWxvbmch",  # base64, 32 bytes
    "PETS_CLOB_PASSPHRASE": "canary-passphrase-0002",
    "PETS_TELEGRAM_BOT_TOKEN": "987654:canary-telegram-token-0003",
    "PETS_DISCORD_WEBHOOK_URL": "http://127.0.0.1:9/api/webhooks/1/canary-discord-0004",
}
DSN_PASSWORD = "canary-db-password-0005"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("json", logging.DEBUG, stream)
    yield stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def test_a_json_line_has_time_level_flow_bot_market_message_and_fields(json_logs: io.StringIO) -> None:
    logs.set_flow("risk")
    try:
        logging.getLogger("pets.test").warning(
            "denied %s", "o1", extra={"bot": "bot_01", "market": "m1", "rule": "tick"}
        )
    finally:
        logs.set_flow("pets")
    line = json.loads(json_logs.getvalue().splitlines()[-1])
    assert set(line) == {"time", "level", "flow", "bot", "market", "logger", "message", "fields"}
    assert (line["level"], line["flow"], line["bot"], line["market"]) == ("warning", "risk", "bot_01", "m1")
    assert (line["message"], line["fields"]) == ("denied o1", {"rule": "tick"})
    assert line["time"].endswith("+00:00")


def test_secrets_are_scrubbed_from_every_line_whoever_logs_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "secrets.env").write_text("PETS_FROM_FILE_ONLY='canary-file-secret-0006'\n")
    monkeypatch.setenv("PETS_ROOT", str(tmp_path))
    monkeypatch.setenv("PETS_POSTGRES_DSN", f"postgresql://pets:{DSN_PASSWORD}@db:5432/pets")
    for key, value in CANARIES.items():
        monkeypatch.setenv(key, value)
    stream = io.StringIO()
    logs.configure("console", logging.INFO, stream)
    try:
        logging.getLogger("httpx").warning(
            "POST %s/bot%s/sendMessage", "https://api.telegram.org", CANARIES["PETS_TELEGRAM_BOT_TOKEN"]
        )
        logging.getLogger("pets.x").error("dsn %s, key %s", os.environ["PETS_POSTGRES_DSN"], PRIVATE_KEY)
        logging.getLogger("pets.x").error("file secret canary-file-secret-0006")
    finally:
        logs.configure("console", logging.WARNING, io.StringIO())
    text = stream.getvalue()
    assert text.count(logs.REDACTED) == 4, text
    for secret in [*CANARIES.values(), DSN_PASSWORD, "canary-file-secret-0006"]:
        assert secret not in text


def assert_no_secret(where: str, data: bytes) -> None:
    for secret in [*CANARIES.values(), DSN_PASSWORD]:
        assert secret.encode() not in data, f"{secret!r} appears in {where}"


def test_a_paper_run_with_json_logs_shows_no_secret(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **CANARIES,
        "PETS_POSTGRES_DSN": f"postgresql://pets:{DSN_PASSWORD}@127.0.0.1:1/pets",
    }
    journal = tmp_path / "journal"
    done = subprocess.run(
        [PETS, "--log-format", "json", "run", "--duration", "30", "--journal", str(journal), "--json"],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["portfolio"]["trades"] > 0
    assert_no_secret("stdout", done.stdout)
    assert_no_secret("stderr", done.stderr)
    for path in journal.iterdir():
        assert_no_secret(path.name, path.read_bytes())


def test_a_live_run_at_the_local_venue_logs_no_secret(
    json_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pets.flows.executor import build_flow
    from pets.pipelines.venue_sim.user_server import binary_market, serve_trading_venue

    for key, value in CANARIES.items():
        monkeypatch.setenv(key, value)
    logs.configure("json", logging.DEBUG, json_logs)  # again: the scrubber reads the secrets now set
    env = {
        **CANARIES, "PETS_LIVE": "true", "PETS_FUNDER": Account.from_key(PRIVATE_KEY).address,
        "PETS_SIGNATURE_TYPE": "0",
    }  # fmt: skip
    config = load_config(project_root() / "config")
    live = msgspec.structs.replace(
        config,
        system=msgspec.structs.replace(
            config.system, trading=msgspec.structs.replace(config.system.trading, mode=TradingMode.LIVE)
        ),
    )
    market, yes, no = "0xcond1", "1234", "5678"
    intent = OrderIntent(
        client_order_id="a", bot_id="bot_05", strategy_type="market_making", action="place", market=market,
        asset_id=yes, side="BUY", price=D("0.45"), size=D(10), source_ts_ms=1_750_000_000_000,
        created_ns=1_750_000_000_000_000_000,
    )  # fmt: skip
    approved = ApprovedOrder(intent=intent, size=D(10), approved_ns=intent.created_ns, sequence=1)
    message = KafkaSourceMessage(key=market.encode(), value=encode(approved), topic="order.exec")
    out: list[Any] = []
    with serve_trading_venue(
        binary_market(market, yes, no),
        api_key=CANARIES["PETS_CLOB_API_KEY"],
        api_secret=CANARIES["PETS_CLOB_SECRET"],
        api_passphrase=CANARIES["PETS_CLOB_PASSPHRASE"],
    ) as venue:
        def fill(order: Any) -> None:
            venue.fill(order.id, "10")

        venue.on_post = fill
        settings = Settings(
            config_dir=project_root() / "config", topic_prefix="",
            venue=VenueEndpoints(clob_url=venue.rest_url, ws_user_url=venue.ws_url),
        )  # fmt: skip
        flow = build_flow(
            settings, TestingSource([message]), TestingSink(out), db_sink=TestingSink([]), config=live,
            live=True, environ=env, heartbeat_s=0.1, user_idle_stop_s=1.5,
        )  # fmt: skip
        run_main(flow)
    kinds = [r.message.kind for r in out if r.topic == "exec.report"]
    assert kinds == ["ack", "fill"], kinds  # it really traded at the venue
    text = json_logs.getvalue()
    assert text, "the live run logged nothing at DEBUG"
    assert all(json.loads(line)["level"] for line in text.splitlines())
    assert_no_secret("the live run's logs", text.encode())
    assert_no_secret("the live run's outputs", b"\n".join(encode(r.message) for r in out))
