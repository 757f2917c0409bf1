"""`pets deploy`: render the production shape (config/deploy.yaml) for Kubernetes or Compose, and drive
kubectl / docker compose over it (docs/deploy.md)."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from pets.cli import settings_from_env

TARGETS = ("k8s", "compose")


def _description(config_dir: Path) -> Any:
    from pets.deploy.description import load_deploy
    from pets.schemas.config import InvalidConfigError

    try:
        return load_deploy(config_dir)
    except InvalidConfigError as exc:
        raise click.ClickException(f"invalid deployment description:\n{exc}") from None


def _config_dir(config_dir: Path | None) -> Path:
    return config_dir if config_dir is not None else settings_from_env().config_dir


config_dir_option = click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Holds deploy.yaml and topics.yaml (default: the settings' config dir).",
)
target_option = click.option("--target", type=click.Choice(TARGETS), required=True)
overlay_option = click.option(
    "--overlay",
    type=click.Choice(["dev", "prod"]),
    default=None,
    help="k8s: render / use this overlay only (default: both rendered, dev applied); compose: its image tag.",
)


@click.group()
def deploy() -> None:
    """Deploy the flows, the API, the dashboard and Dagster (Kubernetes or Docker Compose)."""


@deploy.command()
@target_option
@overlay_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@config_dir_option
def render(target: str, overlay: str | None, out: Path, config_dir: Path | None) -> None:
    """Write the manifests for TARGET under OUT: k8s -> OUT/base + OUT/overlays/{dev,prod} (kustomize);
    compose -> OUT/docker-compose.yml."""
    from pets.deploy.render import OVERLAYS, render_compose, render_k8s

    description = _description(_config_dir(config_dir))
    if target == "k8s":
        written = render_k8s(description, out, (overlay,) if overlay else OVERLAYS)  # type: ignore[arg-type]
    else:
        written = render_compose(description, out, overlay or "dev")  # type: ignore[arg-type]
    for path in written:
        click.echo(str(path))


def _tool(target: str) -> list[str]:
    """The command that drives TARGET, or a ClickException saying what is missing and where to get it."""
    if target == "k8s":
        if shutil.which("kubectl") is None:
            raise click.ClickException(
                "kubectl not found on PATH: install kubectl and point it at the cluster (KUBECONFIG); "
                "`pets deploy render --target k8s --out DIR` works without it"
            )
        context = subprocess.run(
            ["kubectl", "config", "current-context"], capture_output=True, text=True, check=False
        )
        if context.returncode != 0:
            raise click.ClickException(
                "kubectl has no cluster to talk to (no current context): set KUBECONFIG or "
                "`kubectl config use-context NAME`"
            )
        return ["kubectl"]
    if shutil.which("docker") is None:
        raise click.ClickException(
            "docker not found on PATH: install Docker Engine with the compose plugin; "
            "`pets deploy render --target compose --out DIR` works without it"
        )
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise click.ClickException(
            "`docker compose` is not available (docker is here, its compose plugin is "
            "not): install docker-compose-plugin"
        )
    return ["docker", "compose"]


def _run(command: list[str], stdin: str | None = None) -> None:
    click.echo("+ " + " ".join(command), err=True)
    code = subprocess.run(command, input=stdin, text=stdin is not None, check=False).returncode
    if code != 0:
        raise click.exceptions.Exit(code)


# A Job's pod template is immutable: `kubectl apply` of a changed one (a new image tag or settings)
# fails, and `kubectl diff` errors on it. The migrations and topics Jobs are idempotent, so apply
# deletes them first and they run again with what is applied; diff leaves them out and says so.
JOBS_SELECTOR = "app.kubernetes.io/name=pets"


def _without_jobs(tool: list[str], kustomization: Path) -> tuple[str, list[str]]:
    """The overlay built by kubectl's kustomize, less its Jobs; and the Jobs' names."""
    import yaml

    built = subprocess.run(
        [*tool, "kustomize", str(kustomization)], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise click.ClickException(f"kubectl kustomize {kustomization} failed: {built.stderr.strip()}")
    documents = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    jobs = [doc["metadata"]["name"] for doc in documents if doc.get("kind") == "Job"]
    rest = [doc for doc in documents if doc.get("kind") != "Job"]
    return yaml.safe_dump_all(rest, sort_keys=False), jobs


def _rendered(target: str, overlay: str | None, description: Any, out: Path) -> Path:
    """Render into `out`; the kustomization (k8s) or compose file to hand to the tool."""
    from pets.deploy.render import render_compose, render_k8s

    if target == "k8s":
        chosen = overlay or "dev"
        render_k8s(description, out, (chosen,))  # type: ignore[arg-type]
        return out / "overlays" / chosen
    render_compose(description, out, overlay or "dev")  # type: ignore[arg-type]
    return out / "docker-compose.yml"


@deploy.command()
@target_option
@overlay_option
@config_dir_option
def apply(target: str, overlay: str | None, config_dir: Path | None) -> None:
    """Render and apply: `kubectl apply -k` (k8s) or `docker compose up -d` (compose)."""
    tool = _tool(target)
    description = _description(_config_dir(config_dir))
    with tempfile.TemporaryDirectory(prefix="pets-deploy-") as tmp:
        path = _rendered(target, overlay, description, Path(tmp))
        if target == "k8s":
            namespace = description.namespace
            _run([*tool, "-n", namespace, "delete", "job", "-l", JOBS_SELECTOR, "--ignore-not-found"])
            _run([*tool, "apply", "-k", str(path)])
        else:
            _run(
                [
                    *tool,
                    "-f",
                    str(path),
                    "--project-directory",
                    str(Path.cwd()),
                    "up",
                    "-d",
                    "--remove-orphans",
                ]
            )


@deploy.command()
@target_option
@overlay_option
@config_dir_option
@click.option(
    "--compose-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docker-compose.yml"),
    show_default=True,
    help="compose: the file to compare the rendering with.",
)
def diff(target: str, overlay: str | None, config_dir: Path | None, compose_file: Path) -> None:
    """What applying would change: `kubectl diff` of the overlay less its Jobs (apply re-creates them)
    (k8s); compose: the rendering against COMPOSE_FILE (no Docker needed). Exit 1 when they differ."""
    description = _description(_config_dir(config_dir))
    with tempfile.TemporaryDirectory(prefix="pets-deploy-") as tmp:
        if target == "k8s":
            tool = _tool(target)
            manifests, jobs = _without_jobs(tool, _rendered(target, overlay, description, Path(tmp)))
            if jobs:
                click.echo(
                    f"# jobs {', '.join(jobs)}: not compared, apply re-creates them (they run again)",
                    err=True,
                )
            _run([*tool, "diff", "-f", "-"], stdin=manifests)
            return
        rendered = _rendered(target, overlay, description, Path(tmp)).read_text().splitlines(keepends=True)
    current = compose_file.read_text().splitlines(keepends=True) if compose_file.exists() else []
    lines = list(difflib.unified_diff(current, rendered, str(compose_file), "rendered"))
    click.echo("".join(lines), nl=False)
    if lines:
        raise click.exceptions.Exit(1)


@deploy.command()
@target_option
@config_dir_option
def status(target: str, config_dir: Path | None) -> None:
    """The deployed workloads: `kubectl get` in the namespace, or `docker compose ps`."""
    tool = _tool(target)
    if target == "k8s":
        namespace = _description(_config_dir(config_dir)).namespace
        _run([*tool, "-n", namespace, "get", "statefulsets,deployments,jobs,pods,pvc"])
    else:
        _run([*tool, "ps"])


@deploy.command()
@click.argument("flow")
@click.argument("workers", type=click.IntRange(min=1))
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Processes of the flow's Bytewax cluster (pods), WORKERS threads each (default: unchanged).",
)
@config_dir_option
def scale(flow: str, workers: int, processes: int | None, config_dir: Path | None) -> None:
    """Set FLOW's worker count (per process) in deploy.yaml, and with --processes its cluster's process
    count, after checking processes x workers against the flow's partitions and limit; render and
    apply again to roll it out. A new shape needs new recovery stores (docs/deploy.md)."""
    from pets.deploy.description import DEPLOY_FILE, set_processes, set_workers, worker_errors
    from pets.schemas.topics import load_topic_registry

    directory = _config_dir(config_dir)
    description = _description(directory)
    if flow not in description.flows:
        raise click.ClickException(f"unknown flow {flow!r}; known: {', '.join(description.flows)}")
    spec = description.flows[flow]
    problems = worker_errors(flow, spec, workers, load_topic_registry(directory), processes)
    if problems:
        raise click.ClickException("; ".join(message for _, message in problems))
    path = directory / DEPLOY_FILE
    text = set_workers(path.read_text(), flow, workers)
    if processes is not None and processes != spec.processes:
        text = set_processes(text, flow, processes)
    path.write_text(text)
    _description(directory)  # the file still loads
    shape = f"{processes or spec.processes} process(es) x {workers} worker(s)"
    click.echo(f"{flow}: {shape} in {path}; now `pets deploy apply --target k8s|compose`")


commands = [deploy]
