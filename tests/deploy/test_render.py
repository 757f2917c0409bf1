"""`pets deploy render`: every Kubernetes manifest against the Kubernetes OpenAPI schemas (offline, from
kubernetes-validate), the overlays built by the real kustomize, docker-compose.yml against the Compose
Specification's JSON schema (as check-jsonschema ships it), and the repo's docker-compose.yml equal to
the rendering."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from pets.cli import main
from pets.deploy.description import DeployDescription, load_deploy, service_name
from pets.deploy.render import compose_text, render_k8s
from pets.settings import project_root

K8S_VERSION = "1.37.0"  # the newest schemas kubernetes-validate ships
ROOT = project_root()
# Settings that hold credentials (settings.py reads them from the environment / secrets.env only)
SECRET_KEYS = {
    "PETS_POSTGRES_DSN",
    "PETS_PRIVATE_KEY",
    "PETS_CLOB_API_KEY",
    "PETS_CLOB_SECRET",
    "PETS_CLOB_PASSPHRASE",
    "PETS_OPENAI_API_KEY",
    "PETS_TELEGRAM_BOT_TOKEN",
    "PETS_DISCORD_WEBHOOK_URL",
    "PETS_API_TOKEN",
    "PETS_METABASE_PASSWORD",
}


@pytest.fixture(scope="module")
def description() -> DeployDescription:
    return load_deploy(ROOT / "config")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("k8s")
    result = CliRunner().invoke(main, ["deploy", "render", "--target", "k8s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _resources(folder: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object in a kustomize folder's files (the kustomization itself is not one)."""
    return [
        doc for f in sorted(folder.glob("*.yaml")) if f.name != "kustomization.yaml" for doc in _documents(f)
    ]


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _kustomize() -> str:
    local = ROOT / ".pets" / "tools" / "bin" / "kustomize"
    found = str(local) if local.exists() else shutil.which("kustomize")
    if found is None:
        pytest.skip("kustomize is not installed: `make tools` builds it (needs Go; scripts/kustomize.sh)")
    return found


@pytest.fixture(scope="module")
def built(rendered: Path) -> dict[str, list[dict[str, Any]]]:
    """kustomize build of base and of each overlay."""
    tool = _kustomize()
    out = {}
    for name, folder in (
        ("base", rendered / "base"),
        ("dev", rendered / "overlays" / "dev"),
        ("prod", rendered / "overlays" / "prod"),
    ):
        result = subprocess.run([tool, "build", str(folder)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        out[name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    return out


def test_the_validator_rejects_a_wrong_manifest() -> None:
    """The schema check can fail: a misspelled field and a wrong type are refused."""
    good = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80}]},
    }
    _validate(good)
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate({**good, "spec": {"ports": [{"port": 80}], "selektor": {}}})
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate({**good, "spec": {"ports": [{"port": "eighty"}]}})


def test_every_rendered_manifest_is_valid(rendered: Path) -> None:
    docs = _resources(rendered / "base") + _resources(rendered / "overlays" / "dev")
    assert len(docs) > 20
    for doc in docs:
        _validate(doc)


def test_kustomize_builds_base_and_overlays_into_valid_objects(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    for name, docs in built.items():
        for doc in docs:
            _validate(doc)
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == "pets", (name, doc["metadata"]["name"])


def test_each_flow_is_a_statefulset_with_recovery_volume_probes_metrics_and_resources(
    description: DeployDescription, built: dict[str, list[dict[str, Any]]]
) -> None:
    sets = {d["metadata"]["name"]: d for d in built["base"] if d["kind"] == "StatefulSet"}
    services = {d["metadata"]["name"]: d for d in built["base"] if d["kind"] == "Service"}
    for name, flow in description.flows.items():
        spec = sets[service_name(name)]["spec"]
        pod = spec["template"]
        (container,) = pod["spec"]["containers"]
        assert container["args"] == [
            "flow",
            "run",
            name,
            "--workers",
            str(flow.workers),
            "--metrics-port",
            "9100",
        ]
        claim = spec["volumeClaimTemplates"][0]
        assert claim["spec"]["resources"]["requests"]["storage"] == flow.storage
        assert {"name": claim["metadata"]["name"], "mountPath": "/state"} in container["volumeMounts"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
        assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9100"
        assert container["resources"]["requests"] == {
            "cpu": flow.resources.cpu,
            "memory": flow.resources.memory,
        }
        assert container["resources"]["limits"]["memory"] == flow.resources.memory_limit
        assert services[service_name(name)]["spec"]["clusterIP"] == "None"
    kinds = {(d["kind"], d["metadata"]["name"]) for d in built["base"]}
    for expected in [
        ("Deployment", "api"),
        ("Deployment", "dashboard"),
        ("Deployment", "dagster-webserver"),
        ("Deployment", "dagster-daemon"),
        ("Job", "pets-migrate"),
        ("Job", "pets-topics"),
        ("NetworkPolicy", "pets-default-deny-ingress"),
        ("Namespace", "pets"),
    ]:
        assert expected in kinds


def test_secrets_come_from_a_secret_never_a_configmap(built: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in built.items():
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                data = doc.get("data", {})
                assert not SECRET_KEYS & set(data), (name, doc["metadata"]["name"])
                assert not any("password" in str(v).lower() for v in data.values())
        secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
        refs = {
            ref["secretRef"]["name"]
            for d in docs
            if d["kind"] in ("StatefulSet", "Deployment", "Job")
            for c in d["spec"]["template"]["spec"]["containers"]
            for ref in c.get("envFrom", [])
            if "secretRef" in ref
        }
        if name == "dev":  # the dev overlay generates it and kustomize rewrites the references to it
            assert len(refs) == 1 and refs <= secrets and next(iter(refs)).startswith("pets-secrets-")
        else:  # the operator creates it (docs/deploy.md): nothing secret is rendered
            assert refs == {"pets-secrets"} and not secrets


def test_every_pod_is_non_root_without_capabilities_in_a_restricted_namespace(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    """PodSecurity "restricted" (tests/deploy/test_apiserver.py has the API server admit them)."""
    for docs in built.values():
        (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        pods = [
            d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("StatefulSet", "Deployment", "Job")
        ]
        assert pods
        for pod in pods:
            context = pod["securityContext"]
            assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"]:
                assert container["securityContext"] == {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                }


def test_overlays_set_the_image_tag_and_the_kafka_address(
    description: DeployDescription, built: dict[str, list[dict[str, Any]]]
) -> None:
    for overlay in ("dev", "prod"):
        spec = description.overlay(overlay)
        images = {
            c["image"]
            for d in built[overlay]
            if d["kind"] in ("StatefulSet", "Deployment", "Job")
            and d["metadata"]["name"] not in ("kafka", "timescaledb")
            for c in d["spec"]["template"]["spec"]["containers"]
        }
        assert images == {f"pets:{spec.image_tag}"}
        (config,) = [
            d
            for d in built[overlay]
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("pets-config")
        ]
        assert config["data"]["PETS_KAFKA_BOOTSTRAP"] == spec.kafka_bootstrap
    dev_sets = {d["metadata"]["name"] for d in built["dev"] if d["kind"] == "StatefulSet"}
    prod_sets = {d["metadata"]["name"] for d in built["prod"] if d["kind"] == "StatefulSet"}
    assert {"kafka", "timescaledb"} <= dev_sets and not {"kafka", "timescaledb"} & prod_sets


def test_the_repo_docker_compose_file_is_the_rendering(description: DeployDescription) -> None:
    assert (ROOT / "docker-compose.yml").read_text() == compose_text(description), (
        "docker-compose.yml differs from config/deploy.yaml's rendering: run "
        "`pets deploy render --target compose --out .` (and edit config/deploy.yaml, not the file)"
    )


def _compose_errors(document: dict[str, Any]) -> list[str]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification(description: DeployDescription) -> None:
    text = compose_text(description)
    assert _compose_errors(yaml.safe_load(text)) == []
    # the schema can fail: an unknown service key, a wrong type
    wrong = yaml.safe_load(text)
    wrong["services"]["kafka"]["bogus"] = 1
    wrong["services"]["risk"]["depends_on"] = "kafka"
    errors = _compose_errors(wrong)
    assert any("bogus" in e for e in errors) and any(e.startswith("services/risk/depends_on") for e in errors)
    # what the schema does not check: references between services and named volumes
    doc = yaml.safe_load(text)
    services, volumes = doc["services"], doc["volumes"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith(".") or source in volumes, (name, mount)
    for name in description.flows:
        assert f"state-{service_name(name)}:/state" in services[service_name(name)]["volumes"]


def test_prometheus_scrapes_every_flow_of_the_compose_file(description: DeployDescription) -> None:
    config = yaml.safe_load((ROOT / "ops" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "pets-flows"]
    targets = set(job["static_configs"][0]["targets"])
    assert targets == {f"{service_name(n)}:{description.metrics_port}" for n in description.flows}


def test_render_k8s_writes_only_the_overlay_asked_for(description: DeployDescription, tmp_path: Path) -> None:
    written = render_k8s(description, tmp_path, ("prod",))
    assert (tmp_path / "overlays" / "prod" / "kustomization.yaml") in written
    assert not (tmp_path / "overlays" / "dev").exists()


def test_a_flow_cluster_is_a_statefulset_of_its_processes_that_find_each_other(tmp_path: Path) -> None:
    """`processes: 2`: two pods, each `pets flow run` taking its process id from its ordinal and its
    peers from the headless Service's DNS names; in Compose one service and one volume per process."""
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    scaled = CliRunner().invoke(
        main, ["deploy", "scale", "market_state", "2", "--processes", "2", "--config-dir", str(config)]
    )
    assert scaled.exit_code == 0, scaled.output
    description = load_deploy(config)
    assert (description.flows["market_state"].processes, description.flows["market_state"].workers) == (2, 2)
    render_k8s(description, tmp_path / "k8s")
    docs = _resources(tmp_path / "k8s" / "base")
    for doc in docs:
        _validate(doc)
    named = [d for d in docs if d["metadata"]["name"] == "market-state"]
    (statefulset,) = [d for d in named if d["kind"] == "StatefulSet"]
    (service,) = [d for d in named if d["kind"] == "Service"]
    assert statefulset["spec"]["replicas"] == 2 and statefulset["spec"]["podManagementPolicy"] == "Parallel"
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env == {
        "BYTEWAX_POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
        "BYTEWAX_STATEFULSET_NAME": "market-state",
        "BYTEWAX_ADDRESSES": "market-state-0.market-state:2101;market-state-1.market-state:2101",
    }
    assert container["args"][container["args"].index("--workers") + 1] == "2"
    assert {"name": "cluster", "port": 2101, "targetPort": 2101} in service["spec"]["ports"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    bots = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "bots")
    assert bots["spec"]["replicas"] == 1 and "env" not in bots["spec"]["template"]["spec"]["containers"][0]

    compose = yaml.safe_load(compose_text(description))
    assert "market-state" not in compose["services"]
    for i in range(2):
        command = compose["services"][f"market-state-{i}"]["command"]
        peers = "market-state-0:2101;market-state-1:2101"
        assert command[-4:] == ["--process-id", str(i), "--addresses", peers]
        assert f"state-market-state-{i}" in compose["volumes"]

    too_many = CliRunner().invoke(
        main, ["deploy", "scale", "market_state", "3", "--processes", "2", "--config-dir", str(config)]
    )
    assert too_many.exit_code == 1
    assert "2 processes x 3 workers = 6 workers but md.book has 4 partition(s)" in too_many.output
