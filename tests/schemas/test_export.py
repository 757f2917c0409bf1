"""`pets schemas export`: one JSON Schema per topic that any Kafka consumer can validate messages with."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pets.cli import main
from pets.schemas.codec import encode
from pets.schemas.orders import OrderIntent
from pets.schemas.topics import TopicSpec, default_registry
from pets.settings import project_root

PREFIX = "exporttest."


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schemas")
    result = CliRunner().invoke(main, ["schemas", "export", str(out)], env={"PETS_TOPIC_PREFIX": PREFIX})
    assert result.exit_code == 0, result.output
    return out


def _validator(exported: Path, topic: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((exported / f"{topic}.schema.json").read_text()))


def test_index_maps_every_topic_to_its_file_key_and_partitions(exported: Path) -> None:
    index = json.loads((exported / "index.json").read_text())
    registry = default_registry()
    assert set(index["topics"]) == set(registry.names)
    for spec in registry.topics:
        entry = index["topics"][spec.name]
        assert entry["file"] == f"{spec.name}.schema.json"
        assert (exported / entry["file"]).is_file()
        assert (entry["key"], entry["partitions"], entry["schema"]) == (
            spec.key,
            spec.partitions,
            spec.schema,
        )
        assert entry["kafka_topic"] == PREFIX + spec.name
    assert "Decimal" in index["encoding"]
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        ["index.json", *(f"{name}.schema.json" for name in registry.names)]
    )


def test_each_file_is_a_valid_json_schema_with_registry_text(exported: Path) -> None:
    for spec in default_registry().topics:
        document = json.loads((exported / f"{spec.name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["title"] == spec.name
        assert spec.description in document["description"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_encoded_messages_validate_against_the_exported_schema(
    exported: Path,
    topic: tuple[TopicSpec, Any],
    wire_strategy: Callable[[Any], st.SearchStrategy[Any]],
    data: st.DataObject,
) -> None:
    spec, schema_type = topic
    message = json.loads(encode(data.draw(wire_strategy(schema_type))))
    _validator(exported, spec.name).validate(message)


def test_exported_schema_rejects_bad_messages(
    exported: Path, make_intent: Callable[..., OrderIntent]
) -> None:
    validator = _validator(exported, "order.intent")
    good = json.loads(encode(make_intent(price=Decimal("0.45"))))
    validator.validate(good)

    missing = {k: v for k, v in good.items() if k != "created_ns"}
    assert any("created_ns" in e.message for e in validator.iter_errors(missing))

    float_price = {**good, "price": 0.45}  # Decimals travel as strings
    assert [list(e.path) for e in validator.iter_errors(float_price)] == [["price"]]

    bad_side = {**good, "side": "HOLD"}
    assert [list(e.path) for e in validator.iter_errors(bad_side)] == [["side"]]

    extra = {**good, "surprise_field": 1}
    assert any("surprise_field" in e.message for e in validator.iter_errors(extra))


def test_missing_schema_module_fails_naming_topic_and_module(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "topics.yaml").write_text(
        "topics:\n"
        "  - {name: order.intent, partitions: 1, key: market, retention_ms: -1,\n"
        "     schema: 'pets.schemas.orders:OrderIntent', description: ok}\n"
        "  - {name: later.topic, partitions: 1, key: k, retention_ms: -1,\n"
        "     schema: 'pets.schemas.not_written_yet:Thing', description: missing}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["schemas", "export", str(out)], env={"PETS_CONFIG_DIR": str(config)})
    assert result.exit_code == 1
    assert "later.topic" in result.output
    assert "pets.schemas.not_written_yet" in result.output
    assert not out.exists()  # nothing half-written


def test_bad_registry_file_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "topics.yaml").write_text("topics:\n  - {name: x}\n")
    result = CliRunner().invoke(
        main, ["schemas", "export", str(tmp_path / "out")], env={"PETS_CONFIG_DIR": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "topics.yaml" in result.output and "Traceback" not in result.output


def test_docs_table_lists_every_topic_with_its_type_and_key() -> None:
    docs = (project_root() / "docs" / "schemas.md").read_text()
    rows = {
        cells[0].strip("` "): cells
        for line in docs.splitlines()
        if line.startswith("| `") and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 4
    }
    for spec in default_registry().topics:
        assert spec.name in rows, f"docs/schemas.md has no row for {spec.name}"
        module, _, type_name = spec.schema.partition(":")
        assert rows[spec.name][1] == f"`{module.removeprefix('pets.schemas.')}:{type_name}`", spec.name
        assert rows[spec.name][2].split()[0] == spec.key, spec.name
