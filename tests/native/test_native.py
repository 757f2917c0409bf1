"""The compiled hot path: used only when built from the current sources, and trading exactly as the
pure-Python modules do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pets import native
from pets.native.build import up_to_date

PETS = str(Path(sys.executable).with_name("pets"))


@pytest.fixture(autouse=True)
def native_allowed(monkeypatch: Any) -> None:
    monkeypatch.delenv("PETS_NATIVE", raising=False)  # the suite may run with PETS_NATIVE=0


def write_manifest(directory: Path, **fields: Any) -> None:
    manifest = {
        "extension_suffix": native.EXTENSION_SUFFIX,
        "sources": native.source_digest(),
        "modules": {"pets.no_such_module": "src/none.so"},
    } | fields
    directory.mkdir(parents=True, exist_ok=True)
    (directory / native.MANIFEST).write_text(json.dumps(manifest))


def test_without_a_build_pets_runs_pure_python_silently(tmp_path: Path, capsys: Any) -> None:
    assert native.install(tmp_path / "none") is False
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"sources": "0" * 64}, "the sources changed since it was built"),
        ({"extension_suffix": ".cpython-39-x86_64-linux-gnu.so"}, "built for .cpython-39"),
    ],
)
def test_a_build_that_does_not_match_is_ignored_with_the_reason(
    tmp_path: Path, capsys: Any, fields: dict[str, str], why: str
) -> None:
    write_manifest(tmp_path, **fields)
    finders = list(sys.meta_path)
    assert native.install(tmp_path) is False
    assert sys.meta_path == finders
    err = capsys.readouterr().err
    assert why in err and "running pure Python" in err and "make native" in err


def test_pets_native_0_turns_a_matching_build_off(tmp_path: Path, monkeypatch: Any) -> None:
    write_manifest(tmp_path)
    monkeypatch.setenv("PETS_NATIVE", "0")
    assert native.install(tmp_path) is False


def test_a_matching_build_serves_its_modules(tmp_path: Path, monkeypatch: Any) -> None:
    write_manifest(tmp_path)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(native, "active", native.active)
    assert native.install(tmp_path) is True
    finder = sys.meta_path[0]
    spec = finder.find_spec("pets.no_such_module", None)
    assert spec is not None and spec.origin == str(tmp_path / "src/none.so")
    assert finder.find_spec("pets.settings", None) is None  # everything else: the sources


def test_the_digest_covers_every_source_file(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    before = native.source_digest(package)
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert native.source_digest(package) != before


class Plain:
    def __init__(self) -> None:
        self.a = 1


def test_attributes_of_an_interpreted_object() -> None:
    assert native.attributes(Plain()) == {"a": 1}


def need_compiled_build() -> None:
    if not up_to_date():
        if os.environ.get("PETS_REQUIRE_NATIVE") == "1":
            pytest.fail("the compiled hot path is not built from these sources (make native)")
        pytest.skip("the compiled hot path is not built from these sources: `make native` builds it")


def trade(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[dict[str, Any], Path]:
    journal = tmp_path / name
    out = subprocess.run(
        [PETS, "run", "--json", "--duration", "300", "--journal", str(journal)],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout), journal


def test_the_compiled_modules_trade_exactly_as_the_sources(tmp_path: Path) -> None:
    need_compiled_build()
    probe = "import pets, pets.runtime.loop as m; print(pets.native.active, m.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", probe],
        env=os.environ | {"PETS_NATIVE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[0] == "True" and where[1].endswith(native.EXTENSION_SUFFIX)
    compiled, compiled_journal = trade(tmp_path, "compiled", {"PETS_NATIVE": "1"})
    pure, pure_journal = trade(tmp_path, "pure", {"PETS_NATIVE": "0"})
    assert compiled == pure
    assert sum(bot["trades"] for bot in compiled.values()) > 0
    for table in ("intents", "approved", "denials", "fills", "positions", "pnl"):
        left = pl.read_parquet(compiled_journal / f"{table}.parquet")
        assert left.equals(pl.read_parquet(pure_journal / f"{table}.parquet")), table


HARNESS = Path(__file__).with_name("snapshot_harness.py")


@pytest.mark.parametrize(
    ("first", "then"), [("1", "0"), ("0", "1")], ids=["compiled_to_pure", "pure_to_compiled"]
)
def test_a_snapshot_resumes_in_the_other_mode(tmp_path: Path, first: str, then: str) -> None:
    """A flow restarted after a rebuild, or without one, resumes from its recovery store."""
    need_compiled_build()
    file = tmp_path / "snapshot.pickle"
    for command, mode in (("dump", first), ("load", then)):
        run = subprocess.run(
            [sys.executable, str(HARNESS), command, str(file)],
            env=os.environ | {"PETS_NATIVE": mode},
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
