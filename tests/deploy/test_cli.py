"""config/deploy.yaml's checks, `pets deploy scale` against the partitions, and apply/status/diff when
kubectl or docker is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from pets.cli import main
from pets.deploy.description import load_deploy
from pets.schemas.config import InvalidConfigError
from pets.settings import project_root

ROOT = project_root()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of config/ the test may edit."""
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    return folder


def _pets(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _set_partitions(config_dir: Path, topic: str, partitions: int) -> None:
    path = config_dir / "topics.yaml"
    data = yaml.safe_load(path.read_text())
    for spec in data["topics"]:
        if spec["name"] == topic:
            spec["partitions"] = partitions
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _edit(config_dir: Path, old: str, new: str) -> None:
    path = config_dir / "deploy.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_errors_name_the_file_and_the_key(config_dir: Path) -> None:
    _edit(config_dir, "  market_state:\n    workers: 1\n", "  market_state:\n    workerz: 1\n")
    _edit(config_dir, "  esports:\n", "  esport:\n")
    with pytest.raises(InvalidConfigError) as caught:
        load_deploy(config_dir)
    text = str(caught.value)
    assert "deploy.yaml" in text and "flows.market_state" in text and "workerz" in text


def test_unknown_flow_and_unknown_topic_are_reported(config_dir: Path) -> None:
    _edit(config_dir, "  esports:\n", "  esport:\n")
    _edit(config_dir, "partitioned_by: md.tob", "partitioned_by: md.tobb")
    with pytest.raises(InvalidConfigError) as caught:
        load_deploy(config_dir)
    keys = {error.key for error in caught.value.errors}
    assert keys == {"flows.esport", "flows.bots.partitioned_by"}


def test_more_workers_than_partitions_is_refused_in_the_file_too(config_dir: Path) -> None:
    _edit(config_dir, "  market_state:\n    workers: 1\n", "  market_state:\n    workers: 3\n")
    _set_partitions(config_dir, "md.book", 2)
    with pytest.raises(InvalidConfigError) as caught:
        load_deploy(config_dir)
    (error,) = caught.value.errors
    assert error.key == "flows.market_state.workers"
    assert "3 workers but md.book has 2 partition(s)" in error.message


def test_scale_checks_the_partitions_then_writes_the_workers(config_dir: Path) -> None:
    _set_partitions(config_dir, "md.book", 1)
    before = (config_dir / "deploy.yaml").read_text()
    refused = _pets("deploy", "scale", "market_state", "2", "--config-dir", str(config_dir))
    assert refused.exit_code == 1
    assert "2 workers but md.book has 1 partition(s)" in refused.output
    assert (config_dir / "deploy.yaml").read_text() == before

    _set_partitions(config_dir, "md.book", 4)
    done = _pets("deploy", "scale", "market_state", "4", "--config-dir", str(config_dir))
    assert done.exit_code == 0, done.output
    after = (config_dir / "deploy.yaml").read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [("    workers: 1", "    workers: 4")]  # comments and other flows untouched
    description = load_deploy(config_dir)
    assert description.flows["market_state"].workers == 4
    assert description.flows["bots"].workers == 1

    out = config_dir.parent / "out"
    assert (
        _pets(
            "deploy", "render", "--target", "compose", "--out", str(out), "--config-dir", str(config_dir)
        ).exit_code
        == 0
    )
    command = yaml.safe_load((out / "docker-compose.yml").read_text())["services"]["market-state"]["command"]
    assert command[command.index("--workers") + 1] == "4"


def test_scale_keeps_risk_in_one_worker(config_dir: Path) -> None:
    _set_partitions(config_dir, "order.intent", 8)
    result = _pets("deploy", "scale", "risk", "2", "--config-dir", str(config_dir))
    assert result.exit_code == 1
    assert "risk runs at most 1" in result.output


def test_scale_of_an_unknown_flow(config_dir: Path) -> None:
    result = _pets("deploy", "scale", "nope", "2", "--config-dir", str(config_dir))
    assert result.exit_code == 1 and "unknown flow 'nope'" in result.output


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (("apply", "--target", "k8s"), "kubectl not found on PATH"),
        (("status", "--target", "k8s"), "kubectl not found on PATH"),
        (("diff", "--target", "k8s"), "kubectl not found on PATH"),
        (("apply", "--target", "compose"), "docker not found on PATH"),
        (("status", "--target", "compose"), "docker not found on PATH"),
    ],
)
def test_apply_status_diff_say_what_is_missing(tmp_path: Path, args: tuple[str, ...], missing: str) -> None:
    result = _pets("deploy", *args, env={"PATH": str(tmp_path)})
    assert result.exit_code == 1
    assert missing in result.output


def test_compose_diff_needs_no_docker_and_shows_the_drift(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text((ROOT / "docker-compose.yml").read_text())
    same = _pets(
        "deploy", "diff", "--target", "compose", "--compose-file", str(compose), env={"PATH": str(tmp_path)}
    )
    assert same.exit_code == 0 and same.output == ""
    compose.write_text(compose.read_text().replace("--workers, '1'", "--workers, '9'", 1))
    drift = _pets("deploy", "diff", "--target", "compose", "--compose-file", str(compose))
    assert drift.exit_code == 1
    assert "-    command: [flow, run, market_ingest, --workers, '9'" in drift.output
    assert "+    command: [flow, run, market_ingest, --workers, '1'" in drift.output


def test_config_validate_checks_deploy_yaml(config_dir: Path) -> None:
    assert _pets("config", "validate", "--config-dir", str(config_dir)).exit_code == 0
    _set_partitions(config_dir, "order.intent", 4)  # so that only risk's own limit refuses
    _edit(
        config_dir, "exact only in one worker\n    workers: 1\n", "exact only in one worker\n    workers: 2\n"
    )
    result = CliRunner().invoke(main, ["config", "validate", "--config-dir", str(config_dir)])
    assert result.exit_code == 1
    assert "deploy.yaml: flows.risk.workers: 2 workers: risk runs at most 1" in result.output


FAKE_KUBECTL = """#!/bin/sh
# a stand-in for kubectl: logs its arguments, keeps what `apply -k` was given
echo "$*" >> "$FAKE_LOG"
if [ "$1 $2" = "config current-context" ]; then
  [ -n "$FAKE_CONTEXT" ] || exit 1
  echo "$FAKE_CONTEXT"; exit 0
fi
if [ "$1" = apply ]; then cp -r "$3/../.." "$FAKE_COPY"; fi
exit "${FAKE_EXIT:-0}"
"""
FAKE_DOCKER = """#!/bin/sh
# a stand-in for docker: `compose version` fails unless FAKE_COMPOSE is set; keeps the compose file
echo "$*" >> "$FAKE_LOG"
if [ "$1 $2" = "compose version" ]; then [ -n "$FAKE_COMPOSE" ] || exit 1; exit 0; fi
if [ "$1 $2" = "compose -f" ]; then cp "$3" "$FAKE_COPY"; fi
exit 0
"""


def _fake(tmp_path: Path, name: str, script: str, **env: str) -> dict[str, str]:
    """kubectl / docker replaced by a shell script first on PATH (the real tools need a cluster / engine)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text(script)
    (bin_dir / name).chmod(0o755)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_LOG": str(tmp_path / "log"),
        "FAKE_COPY": str(tmp_path / "copy"),
    } | env


def test_k8s_without_a_cluster_says_so(tmp_path: Path) -> None:
    result = _pets(
        "deploy", "apply", "--target", "k8s", env=_fake(tmp_path, "kubectl", FAKE_KUBECTL, FAKE_CONTEXT="")
    )
    assert result.exit_code == 1
    assert "kubectl has no cluster to talk to (no current context)" in result.output


def test_k8s_apply_hands_kubectl_the_overlay_and_passes_its_exit_code(tmp_path: Path) -> None:
    env = _fake(tmp_path, "kubectl", FAKE_KUBECTL, FAKE_CONTEXT="prod-cluster")
    result = _pets("deploy", "apply", "--target", "k8s", "--overlay", "prod", env=env)
    assert result.exit_code == 0, result.output
    calls = (tmp_path / "log").read_text().splitlines()
    assert calls[0] == "config current-context"
    assert calls[1] == "-n pets delete job -l app.kubernetes.io/name=pets --ignore-not-found"  # immutable
    assert calls[2].startswith("apply -k ") and calls[2].endswith("/overlays/prod")
    copy = tmp_path / "copy"
    assert (copy / "overlays" / "prod" / "kustomization.yaml").exists() and (
        copy / "base" / "kustomization.yaml"
    ).exists()
    assert not (copy / "overlays" / "dev").exists()

    failed = _pets(
        "deploy", "apply", "--target", "k8s", env=env | {"FAKE_EXIT": "3", "FAKE_COPY": str(tmp_path / "c2")}
    )
    assert failed.exit_code == 3


def test_k8s_status_lists_the_namespace(tmp_path: Path) -> None:
    env = _fake(tmp_path, "kubectl", FAKE_KUBECTL, FAKE_CONTEXT="c")
    assert _pets("deploy", "status", "--target", "k8s", env=env).exit_code == 0
    assert (tmp_path / "log").read_text().splitlines()[
        -1
    ] == "-n pets get statefulsets,deployments,jobs,pods,pvc"


def test_docker_without_the_compose_plugin_says_so(tmp_path: Path) -> None:
    result = _pets(
        "deploy", "apply", "--target", "compose", env=_fake(tmp_path, "docker", FAKE_DOCKER, FAKE_COMPOSE="")
    )
    assert result.exit_code == 1
    assert "`docker compose` is not available" in result.output


def test_compose_apply_brings_up_the_rendered_file(tmp_path: Path) -> None:
    env = _fake(tmp_path, "docker", FAKE_DOCKER, FAKE_COMPOSE="1")
    result = _pets("deploy", "apply", "--target", "compose", env=env)
    assert result.exit_code == 0, result.output
    call = (tmp_path / "log").read_text().splitlines()[-1]
    assert call.startswith("compose -f ") and call.endswith(
        f"--project-directory {Path.cwd()} up -d --remove-orphans"
    )
    assert (tmp_path / "copy").read_text() == (ROOT / "docker-compose.yml").read_text()
