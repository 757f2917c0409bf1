"""The alert rules (`promtool check rules`, `promtool test rules`) and the Grafana provisioning files."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from pets.settings import project_root

ROOT = project_root()
RULES = ROOT / "ops/prometheus/rules"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (scripts/system-deps.sh installs Debian's prometheus)")
    return found


def test_promtool_checks_the_rules_and_the_config() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES / "pets.yml")], capture_output=True, text=True
    )
    assert done.returncode == 0 and "SUCCESS: 6 rules found" in done.stdout, done.stdout + done.stderr
    names = {
        r["alert"] for g in yaml.safe_load((RULES / "pets.yml").read_text())["groups"] for r in g["rules"]
    }
    assert names == {
        "PetsFlowDown", "PetsFeedStalled", "PetsConsumerLag", "PetsDeadLettersGrowing",
        "PetsBotDrawdownNearLimit", "PetsPortfolioDrawdownNearLimit",
    }  # fmt: skip


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "pets_test.yml"], cwd=RULES, capture_output=True, text=True
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_grafana_provisions_the_four_dashboards_on_the_provisioned_datasources() -> None:
    sources = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/pets.yml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    provider = yaml.safe_load((ROOT / "ops/grafana/provisioning/dashboards/pets.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]["volumes"]
    assert f"./ops/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in compose
    titles = set()
    for path in sorted((ROOT / "ops/grafana/dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        titles.add(board["title"])
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
    assert titles == {
        "PETS - bot performance",
        "PETS - system health",
        "PETS - order execution",
        "PETS - risk",
    }
