"""`pets deploy apply|diff|status|scale` against a real Kubernetes API server (kube-apiserver + etcd,
built by scripts/kube-apiserver.sh) with the real kubectl: every rendered object is validated,
defaulted and admitted (PodSecurity "restricted" included) by the server itself. No kubelet or
controllers run here, so no pod starts: the pods the workloads would create are checked by creating
them from each workload's template with a server-side dry run."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pets.deploy.description import load_deploy, service_name
from pets.settings import project_root

ROOT = project_root()
TOOLS = ROOT / ".pets" / "tools" / "bin"
PETS = str(Path(sys.executable).parent / "pets")
WORKLOADS = ("StatefulSet", "Deployment", "Job")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str, token: str, deadline: float) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # its own self-signed certificate
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    while True:
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"kube-apiserver at {url} not ready")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """etcd + kube-apiserver on free ports; the environment (KUBECONFIG) that points kubectl at them."""
    missing = [name for name in ("kube-apiserver", "etcd") if not (TOOLS / name).exists()]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not built: `make tools` builds them (scripts/kube-apiserver.sh, needs Go)"
        )
    if shutil.which("kubectl") is None or shutil.which("openssl") is None:
        pytest.skip("kubectl and openssl are needed on PATH to drive and set up the API server")
    home = tmp_path_factory.mktemp("apiserver")
    key, public = home / "sa.key", home / "sa.pub"
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", public], check=True, capture_output=True)
    token = secrets.token_hex(16)
    (home / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
    client, peer, port = _free_port(), _free_port(), _free_port()
    etcd_url = f"http://127.0.0.1:{client}"
    # fmt: off
    processes = [subprocess.Popen(
        [TOOLS / "etcd", "--data-dir", home / "etcd", "--listen-client-urls", etcd_url,
         "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=(home / "etcd.log").open("w"),
    )]
    processes.append(subprocess.Popen(
        [TOOLS / "kube-apiserver", "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1",
         "--secure-port", str(port), "--cert-dir", home / "certs", "--token-auth-file", home / "tokens.csv",
         "--authorization-mode", "AlwaysAllow", "--service-cluster-ip-range", "10.96.0.0/16",
         "--service-account-issuer", "https://pets.test", "--service-account-key-file", public,
         "--service-account-signing-key-file", key],
        stdout=subprocess.DEVNULL, stderr=(home / "apiserver.log").open("w"),
    ))
    # fmt: on
    try:
        url = f"https://127.0.0.1:{port}"
        _ready(url, token, time.monotonic() + 120)
        kubeconfig = home / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
        }))  # fmt: skip
        yield {"KUBECONFIG": str(kubeconfig)}
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def _config(tmp_path: Path, namespace: str) -> Path:
    """A copy of config/ deploying into its own namespace (the tests share one API server)."""
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    path = folder / "deploy.yaml"
    path.write_text(path.read_text().replace("\nnamespace: pets\n", f"\nnamespace: {namespace}\n", 1))
    return folder


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        env=os.environ | env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _pets(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run(env, PETS, "deploy", *args)


def _get(env: dict[str, str], namespace: str, what: str) -> Any:
    got = _run(env, "kubectl", "-n", namespace, "get", what, "-o", "json")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def test_the_dev_overlay_applies_diffs_clean_and_its_pods_pass_restricted(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    config = _config(tmp_path, "pets-dev")
    applied = _pets(cluster, "apply", "--target", "k8s", "--overlay", "dev", "--config-dir", str(config))
    assert applied.returncode == 0, applied.stderr
    assert "statefulset.apps/market-state created" in applied.stdout
    assert "PodSecurity" not in applied.stderr  # the server warns at a workload whose pods it would refuse

    description = load_deploy(config)
    status = _pets(cluster, "status", "--target", "k8s", "--config-dir", str(config))
    assert status.returncode == 0, status.stderr
    for flow in description.flows:
        assert f"statefulset.apps/{service_name(flow)} " in status.stdout
    assert "deployment.apps/dagster-daemon " in status.stdout and "job.batch/pets-migrate " in status.stdout

    same = _pets(cluster, "diff", "--target", "k8s", "--overlay", "dev", "--config-dir", str(config))
    assert (same.returncode, same.stdout) == (0, ""), same.stdout + same.stderr
    assert "jobs pets-migrate, pets-topics: not compared" in same.stderr

    labels = _get(cluster, "pets-dev", "namespace/pets-dev")["metadata"]
    assert labels["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # the pods every workload would make, as its controller makes them: admitted under "restricted"
    # (the namespace's `default` ServiceAccount is the controller manager's to make: made here)
    assert _run(cluster, "kubectl", "-n", "pets-dev", "create", "serviceaccount", "default").returncode == 0
    workloads = [
        item for kind in WORKLOADS for item in _get(cluster, "pets-dev", kind.lower() + "s")["items"]
    ]
    assert len(workloads) == len(description.flows) + 2 + 4 + 2  # flows, Kafka + TimescaleDB, services, jobs
    for workload in workloads:
        template, name = workload["spec"]["template"], f"{workload['metadata']['name']}-0"
        claims = [  # a StatefulSet's controller mounts each claim template's claim for the pod
            {
                "name": claim["metadata"]["name"],
                "persistentVolumeClaim": {"claimName": f"{claim['metadata']['name']}-{name}"},
            }
            for claim in workload["spec"].get("volumeClaimTemplates", [])
        ]
        spec = template["spec"] | {"volumes": template["spec"].get("volumes", []) + claims}
        metadata = {"name": name, "labels": template["metadata"]["labels"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
        admitted = _run(cluster, "kubectl", "-n", "pets-dev", "create", "--dry-run=server", "-f", "-",
                        stdin=json.dumps(pod))  # fmt: skip
        assert admitted.returncode == 0, f"{workload['metadata']['name']}: {admitted.stderr}"
    root_pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }  # fmt: skip
    refused = _run(cluster, "kubectl", "-n", "pets-dev", "create", "--dry-run=server", "-f", "-",
                   stdin=json.dumps(root_pod))  # fmt: skip
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr


def test_scale_shows_in_the_diff_and_apply_rolls_it_out(cluster: dict[str, str], tmp_path: Path) -> None:
    config = _config(tmp_path, "pets-scale")
    dev = ("--target", "k8s", "--overlay", "dev", "--config-dir", str(config))
    assert _pets(cluster, "apply", *dev).returncode == 0
    scaled = _run(
        cluster, PETS, "deploy", "scale", "market_state", "2", "--processes", "2", "--config-dir", str(config)
    )
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr

    before = _pets(cluster, "diff", *dev)
    assert before.returncode == 1, before.stderr
    changed = [
        line
        for line in before.stdout.splitlines()
        if line.startswith(("+ ", "- ")) and "generation" not in line
    ]
    assert "+  replicas: 2" in changed and "-  replicas: 1" in changed
    assert any("BYTEWAX_ADDRESSES" in line for line in changed)

    assert _pets(cluster, "apply", *dev).returncode == 0
    statefulset = _get(cluster, "pets-scale", "statefulset/market-state")["spec"]
    assert statefulset["replicas"] == 2
    args = statefulset["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--workers") + 1] == "2"
    after = _pets(cluster, "diff", *dev)
    assert (after.returncode, after.stdout) == (0, ""), after.stdout


def test_a_new_image_tag_reapplies_the_jobs_whose_template_is_immutable(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    config = _config(tmp_path, "pets-roll")
    dev = ("--target", "k8s", "--overlay", "dev", "--config-dir", str(config))
    assert _pets(cluster, "apply", *dev).returncode == 0
    path = config / "deploy.yaml"
    path.write_text(path.read_text().replace("    image_tag: latest\n", "    image_tag: 0.2.0\n", 1))

    rolled = _pets(cluster, "apply", *dev)
    assert rolled.returncode == 0, rolled.stderr  # before: `field is immutable` on the Jobs
    for job in ("pets-migrate", "pets-topics"):
        spec = _get(cluster, "pets-roll", f"job/{job}")["spec"]
        assert spec["template"]["spec"]["containers"][0]["image"] == "pets:0.2.0"
    image = _get(cluster, "pets-roll", "statefulset/bots")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert image == "pets:0.2.0"

    # the prod overlay over it: every object it changes is accepted in place
    prod = _pets(cluster, "apply", "--target", "k8s", "--overlay", "prod", "--config-dir", str(config))
    assert prod.returncode == 0, prod.stderr
