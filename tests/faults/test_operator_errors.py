"""What an operator sees when something goes wrong: one clear line, a clean exit, reasons kept."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from pets.cli.bot import bot
from pets.cli.run import report_command, run
from pets.infra.procs import running_flows
from pets.schemas.control import DeadLetter
from pets.settings import Settings, SettingsError, load_settings, project_root

PETS = str(Path(sys.executable).parent / "pets")

MARKET, YES, NO = "0xcut", "8001", "8002"
T0 = 1_750_000_000_000


def _recording(path: Path, lines: int) -> list[bytes]:
    frames = []
    for i in range(lines):
        asset = YES if i % 2 == 0 else NO
        bid, ask = ("0.40", "0.45") if asset == YES else ("0.55", "0.60")
        frames.append(json.dumps({
            "event_type": "book", "asset_id": asset, "market": MARKET, "timestamp": str(T0 + i * 100),
            "hash": f"h{i}", "bids": [{"price": bid, "size": str(100 + i)}],
            "asks": [{"price": ask, "size": str(200 + i)}],
        }).encode())  # fmt: skip
    frames[3] = b'{"event_type":"book","asset_id":'  # a malformed line in the middle
    path.write_bytes(gzip.compress(b"\n".join(frames) + b"\n"))
    return frames


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_MODE", "embedded")
    monkeypatch.delenv("PETS_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("PETS_KAFKA_BOOTSTRAP", raising=False)


def test_run_replay_of_a_truncated_recording_dead_letters_the_cut_and_goes_on(
    tmp_path: Path, embedded: None
) -> None:
    # before: a traceback (TruncatedRecording) and no journal at all
    whole = tmp_path / "whole.jsonl.gz"
    _recording(whole, 4000)
    cut = tmp_path / "cut.jsonl.gz"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--replay", str(cut), "--journal", str(journal), "--json"])
    assert result.exit_code == 0, result.output
    letters = [
        msgspec.json.decode(line, type=DeadLetter)
        for line in (journal / "dead_letters.jsonl").read_bytes().splitlines()
    ]
    reasons = [letter.reason for letter in letters]
    assert len(letters) == 2, reasons
    assert any("recording truncated after line" in r for r in reasons)
    (bad,) = [letter for letter in letters if letter.source == "run.parse"]
    assert bad.raw_bytes() == b'{"event_type":"book","asset_id":'
    assert "2 dead-lettered" in result.stderr and "dead letters by reason:" in result.stderr
    assert "       1 x " + reasons[0][:80] in result.stderr
    assert (journal / "fills.parquet").is_file()  # the journal is written
    again = CliRunner().invoke(report_command, ["--journal", str(journal)])
    assert again.exit_code == 0 and "recording truncated after line" in again.stderr


def test_pause_for_a_non_positive_duration_is_refused() -> None:
    for value in ("-5", "0"):
        result = CliRunner().invoke(bot, ["pause", "bot_05", "--for", value])
        assert result.exit_code == 2 and "--for" in result.output, result.output


def _flow_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETS_")}
    env.update({"PETS_MODE": "local", "PETS_STATE_DIR": str(tmp_path / "state"), "PETS_NATIVE": "0", **extra})
    return env


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_flow_run_with_kafka_down_is_one_line(tmp_path: Path) -> None:
    # before: a 354-line traceback after 10 s
    env = _flow_env(tmp_path, PETS_KAFKA_BOOTSTRAP="127.0.0.1:9")  # nothing listens on the discard port
    result = subprocess.run(
        [PETS, "flow", "run", "risk"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "Kafka at 127.0.0.1:9 is not answering" in _one_line_error(result)


@pytest.mark.integration
def test_flow_run_with_a_bad_config_is_one_line_and_creates_nothing(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    # before: a 35-line traceback, after the recovery store was created
    config = tmp_path / "config"
    shutil.copytree(project_root() / "config", config)
    risk = config / "risk_management.yaml"
    risk.write_text(risk.read_text().replace("max_orders_per_second: 20", "max_orders_per_second: lots"))
    env = _flow_env(tmp_path, PETS_KAFKA_BOOTSTRAP=kafka_bootstrap, PETS_CONFIG_DIR=str(config))
    result = subprocess.run(
        [PETS, "flow", "run", "risk"], env=env, capture_output=True, text=True, timeout=60
    )
    line = _one_line_error(result)
    assert "invalid configuration" in line and "max_orders_per_second" in line
    assert not (tmp_path / "state" / "recovery").exists()


@pytest.mark.integration
def test_flow_run_live_with_a_bad_private_key_is_one_line(tmp_path: Path, kafka_bootstrap: str) -> None:
    # before: a 62-line traceback from the signing library
    key = "0xnot-a-key-" + "ab" * 20
    env = _flow_env(
        tmp_path, PETS_KAFKA_BOOTSTRAP=kafka_bootstrap, PETS_LIVE="true", PETS_PRIVATE_KEY=key,
        PETS_FUNDER="0x" + "11" * 20, PETS_SIGNATURE_TYPE="1",
    )  # fmt: skip
    result = subprocess.run(
        [PETS, "flow", "run", "executor", "--live"], env=env, capture_output=True, text=True, timeout=60
    )
    line = _one_line_error(result)
    assert "PETS_PRIVATE_KEY is not a private key" in line and key not in result.stderr


@pytest.mark.integration
def test_ctrl_c_on_a_running_flow_exits_130_quietly(prefixed_settings: Settings, tmp_path: Path) -> None:
    # before: a 142-line Rust panic
    from pets.flows import risk
    from pets.pipelines.kafka_io import ensure_topics

    ensure_topics(
        prefixed_settings, [*risk.INPUT_TOPICS, "order.exec", "order.denied", "risk.alert", "dlq.trading"]
    )
    env = _flow_env(
        tmp_path,
        PETS_KAFKA_BOOTSTRAP=prefixed_settings.require_kafka(),
        PETS_TOPIC_PREFIX=prefixed_settings.topic_prefix,
    )
    log = tmp_path / "risk.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([PETS, "flow", "run", "risk", "--no-recovery"], env=env, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while b"flow risk starting" not in log.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2)  # inside Bytewax's run loop by now
            proc.send_signal(signal.SIGINT)
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert code == 130, text
    assert "flow risk starting" in text and "panicked" not in text and "Traceback" not in text, text


def test_infra_down_warns_about_running_flows(tmp_path: Path) -> None:
    # a stand-in with the command line of a flow process (`pets flow run risk`)
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "/x/bin/pets", "flow", "run", "risk"]
    )
    try:
        deadline = time.monotonic() + 10
        while (fake.pid, "risk") not in running_flows() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = _flow_env(tmp_path)  # an empty state dir: there is nothing of ours to stop
        result = subprocess.run([PETS, "infra", "down"], env=env, capture_output=True, text=True, timeout=60)
    finally:
        fake.kill()
        fake.wait()
    assert result.returncode == 0, result.stderr
    assert f"risk (pid {fake.pid})" in result.stderr and result.stderr.startswith(
        "warning: flows still running"
    )


def test_the_risk_flow_logs_its_start_each_command_and_each_dead_letter(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from bytewax.connectors.kafka import KafkaSourceMessage
    from bytewax.testing import TestingSink, TestingSource, run_main

    from pets.flows import risk
    from pets.schemas.codec import encode
    from pets.schemas.control import ControlCommand

    halt = ControlCommand(
        command_id="c1", command="halt", bot_id="*", reason="drill", issued_by="cli:me", ts_ns=1
    )
    items = [
        KafkaSourceMessage(key=None, value=encode(halt), topic="bot.control"),
        KafkaSourceMessage(key=None, value=b"{oops", topic="order.intent", offset=7),
    ]
    flow = risk.build_flow(
        dataclasses.replace(settings, topic_prefix=""),
        TestingSource(items),
        TestingSink([]),
        db_sink=TestingSink([]),
    )
    with caplog.at_level(logging.INFO):
        run_main(flow)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pets.")]
    assert any(line.startswith("risk engine new") for line in lines), lines
    assert "halt * by cli:me: drill" in lines
    assert any(line.startswith("dead letter from risk.decode (order.intent@7, 5 bytes)") for line in lines), (
        lines
    )


def test_the_fault_limits_are_settings_and_bad_values_name_the_variable() -> None:
    base = {"PETS_MODE": "embedded"}
    defaults = load_settings(base)
    assert (defaults.max_message_bytes, defaults.clock_tolerance_s) == (512 * 1024, 300.0)
    tuned = load_settings({**base, "PETS_MAX_MESSAGE_BYTES": "100000", "PETS_CLOCK_TOLERANCE_S": "2.5"})
    assert (tuned.max_message_bytes, tuned.clock_tolerance_s) == (100_000, 2.5)
    for name, value in (("PETS_MAX_MESSAGE_BYTES", "-1"), ("PETS_CLOCK_TOLERANCE_S", "soon")):
        with pytest.raises(SettingsError, match=name):
            load_settings({**base, name: value})


def test_a_command_with_kafka_down_is_one_line(tmp_path: Path) -> None:
    # pets halt with the broker down: kafka-python's timeout used to surface as a traceback
    env = _flow_env(tmp_path, PETS_MODE="production", PETS_KAFKA_BOOTSTRAP="127.0.0.1:9")
    result = subprocess.run(
        [PETS, "halt", "--timeout", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    line = _one_line_error(result)
    assert line.startswith("Error: Kafka not answering (") and "127.0.0.1:9" in line
