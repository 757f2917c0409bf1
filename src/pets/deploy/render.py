"""Render config/deploy.yaml into Kubernetes manifests (kustomize base + overlays) or docker-compose.yml.

Both targets come from the same `DeployDescription`, so a flow added, resized or scaled there changes
every target at once; the repo's docker-compose.yml is this module's compose rendering (a test compares).

Kubernetes, namespace from the description (`pets`):
  base/       one StatefulSet + headless Service per flow (recovery store on a volume claim at /state,
              liveness/readiness on the flow's metrics HTTP endpoint, Prometheus scrape annotations),
              the API, dashboard, Dagster webserver + daemon, the migrations and topics Jobs, the
              NetworkPolicies; settings in the `pets-config` ConfigMap, secrets only from the
              `pets-secrets` Secret (never rendered with values: the operator or the overlay makes it)
  overlays/dev   Kafka and TimescaleDB in the namespace, a dev Secret generated from literals
  overlays/prod  Kafka, TimescaleDB, Prometheus, Grafana and Metabase outside; the Secret made by
                 `kubectl create secret generic pets-secrets --from-env-file=secrets.env`
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pets.deploy.description import DeployDescription, FlowSpec, Overlay, Resources, ServiceSpec, service_name

Manifest = dict[str, Any]
OVERLAYS: tuple[Overlay, ...] = ("dev", "prod")
CONFIG_MAP = "pets-config"
SECRET = "pets-secrets"
STATE_DIR = "/state"
CONFIG_DIR = "/app/config"  # the image's copy of config/ (Dockerfile)
KAFKA_DATA = "/var/lib/kafka/data"
DEV_DSN = "postgresql://pets:pets@timescaledb:5432/pets"  # dev only: the in-namespace / compose database
PETS_UID = 10001  # the image's `pets` user (Dockerfile)
# The namespace enforces PodSecurity "restricted": every pod runs as its image's non-root user, with
# the runtime's seccomp profile, no privilege escalation and no capabilities.
POD_SECURITY_LABELS = {"pod-security.kubernetes.io/enforce": "restricted",
                       "pod-security.kubernetes.io/enforce-version": "latest"}  # fmt: skip
COMPOSE_HEADER = """\
# Rendered by `pets deploy render --target compose --out .` from config/deploy.yaml: edit that file and
# render again (tests/deploy fails when this file and the rendering differ). docs/deploy.md.
# Every PETS service reads the same settings names as the CLI (PETS_MODE, PETS_KAFKA_BOOTSTRAP,
# PETS_POSTGRES_DSN); secrets (private keys, API keys, PETS_API_TOKEN) only from secrets.env.
"""


def dump_all(documents: list[Manifest]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, width=120)


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "pets", "app.kubernetes.io/component": component}


def _resources(spec: Resources) -> Manifest:
    return {
        "requests": {"cpu": spec.cpu, "memory": spec.memory},
        "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit},
    }


def _http_probe(path: str, port: str, period: int, failures: int) -> Manifest:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "failureThreshold": failures}


def _container(d: DeployDescription, name: str, args: list[str], resources: Resources) -> Manifest:
    return {
        "name": name,
        "image": d.image,
        "args": args,
        "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}, {"secretRef": {"name": SECRET}}],
        "resources": _resources(resources),
        "securityContext": _container_security(),
    }


def _container_security() -> Manifest:  # a new mapping each time: YAML would alias a shared one
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod_security(uid: int = PETS_UID) -> Manifest:
    """The pod's side of "restricted"; `fsGroup` makes its volumes writable by the user."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip


def _service(name: str, port: int, headless: bool = False) -> Manifest:
    spec: Manifest = {
        "selector": _labels(name),
        "ports": [{"name": "http", "port": port, "targetPort": port}],
    }
    if headless:
        spec = {"clusterIP": "None", **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": spec,
    }


CLUSTER_PORT = 2101  # a flow cluster's processes talk to each other here (Bytewax/Timely)


def flow_args(d: DeployDescription, name: str, flow: FlowSpec) -> list[str]:
    return ["flow", "run", name, "--workers", str(flow.workers), "--metrics-port", str(d.metrics_port)]


def cluster_addresses(name: str, flow: FlowSpec, host: str = "{svc}-{i}.{svc}") -> str:
    """Every process of a flow's cluster in process-id order: on Kubernetes the StatefulSet pods by
    their headless Service's DNS names (market-state-0.market-state), in Compose the services."""
    svc = service_name(name)
    return ";".join(f"{host.format(svc=svc, i=i)}:{CLUSTER_PORT}" for i in range(flow.processes))


def flow_manifests(d: DeployDescription, name: str, flow: FlowSpec) -> list[Manifest]:
    """A flow: a StatefulSet (one pod, its recovery store on its own volume) and its headless Service."""
    svc = service_name(name)
    container = _container(d, "flow", flow_args(d, name, flow), flow.resources)
    container["ports"] = [{"name": "metrics", "containerPort": d.metrics_port}]
    # `pets flow run --metrics-port` serves Prometheus over HTTP from before the flow starts: the
    # process is alive and answering. A flow stalled inside Bytewax is caught by the alert rules
    # (heartbeat age, consumer lag), not by the probe.
    container["livenessProbe"] = {**_http_probe("/metrics", "metrics", 10, 6), "initialDelaySeconds": 15}
    container["readinessProbe"] = _http_probe("/metrics", "metrics", 5, 3)
    container["volumeMounts"] = [{"name": "state", "mountPath": STATE_DIR}]
    service = _service(svc, d.metrics_port, headless=True)
    if flow.processes > 1:
        # a Bytewax cluster: `pets flow run` takes its process id from the pod's ordinal (Bytewax's
        # BYTEWAX_POD_NAME / BYTEWAX_STATEFULSET_NAME) and its peers from BYTEWAX_ADDRESSES
        container["env"] = [
            {"name": "BYTEWAX_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "BYTEWAX_STATEFULSET_NAME", "value": svc},
            {"name": "BYTEWAX_ADDRESSES", "value": cluster_addresses(name, flow)},
        ]
        container["ports"].append({"name": "cluster", "containerPort": CLUSTER_PORT})
        service["spec"]["ports"].append({"name": "cluster", "port": CLUSTER_PORT, "targetPort": CLUSTER_PORT})
        service["spec"]["publishNotReadyAddresses"] = True  # peers find each other while starting
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": svc, "labels": _labels(svc)},
        "spec": {
            "serviceName": svc,
            # one pod per process of the flow's cluster, each with its recovery store's share on its
            # own claim; the pods start together (a cluster waits for all its processes). Parallel for
            # one pod too: the policy is immutable, so scaling to a cluster later must not change it
            "replicas": flow.processes,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": _labels(svc)},
            "template": {
                "metadata": {
                    "labels": _labels(svc),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(d.metrics_port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                # Ctrl-C/SIGTERM leaves at once: the recovery store is built for crashes (cli/flow.py)
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": _pod_security(),
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "state"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": flow.storage}},
                    },
                }
            ],
        },
    }
    return [statefulset, service]


def _deployment(name: str, container: Manifest, volumes: list[Manifest] | None = None) -> Manifest:
    pod: Manifest = {"securityContext": _pod_security(), "containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": _labels(name)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _labels(name)},
            "template": {"metadata": {"labels": _labels(name)}, "spec": pod},
        },
    }


def _web(d: DeployDescription, name: str, spec: ServiceSpec, args: list[str], health: str) -> list[Manifest]:
    assert spec.port is not None
    container = _container(d, name, args, spec.resources)
    container["ports"] = [{"name": "http", "containerPort": spec.port}]
    container["livenessProbe"] = {**_http_probe(health, "http", 10, 6), "initialDelaySeconds": 20}
    container["readinessProbe"] = _http_probe(health, "http", 5, 3)
    return [_deployment(name, container), _service(name, spec.port)]


def service_manifests(d: DeployDescription) -> list[Manifest]:
    """The API, the dashboard over it, and Dagster's webserver and daemon."""
    from pets.cli.dagster import CODE_LOCATION, PRODUCTION_YAML

    s = d.services
    assert s.api.port is not None and s.dashboard.port is not None and s.dagster_webserver.port is not None
    docs = _web(d, "api", s.api, ["api", "serve", "--host", "0.0.0.0", "--port", str(s.api.port)], "/health")
    docs += _web(
        d,
        "dashboard",
        s.dashboard,
        [
            "dashboard",
            "--api",
            f"http://api:{s.api.port}",
            "--host",
            "0.0.0.0",
            "--port",
            str(s.dashboard.port),
        ],
        "/_stcore/health",
    )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dagster-instance", "labels": _labels("dagster")},
            "data": {"dagster.yaml": PRODUCTION_YAML},
        }
    )
    # DAGSTER_HOME must be writable (compute logs, schedules' state): an emptyDir with the instance's
    # dagster.yaml from the ConfigMap on top (a ConfigMap volume is read-only)
    volume = [{"name": "dagster-home", "emptyDir": {}},
              {"name": "dagster-instance", "configMap": {"name": "dagster-instance"}}]  # fmt: skip
    web_args = ["-h", "0.0.0.0", "-p", str(s.dagster_webserver.port), "-m", CODE_LOCATION]
    for name, spec, command in (
        ("dagster-webserver", s.dagster_webserver, ["dagster-webserver", *web_args]),
        ("dagster-daemon", s.dagster_daemon, ["dagster-daemon", "run", "-m", CODE_LOCATION]),
    ):
        container = _container(d, name, [], spec.resources)
        del container["args"]
        container["command"] = command
        container["env"] = [{"name": "DAGSTER_HOME", "value": "/dagster"}]
        container["volumeMounts"] = [
            {"name": "dagster-home", "mountPath": "/dagster"},
            {"name": "dagster-instance", "mountPath": "/dagster/dagster.yaml", "subPath": "dagster.yaml"},
        ]
        if spec.port is not None:
            container["ports"] = [{"name": "http", "containerPort": spec.port}]
            container["readinessProbe"] = _http_probe("/server_info", "http", 10, 3)
        docs.append(_deployment(name, container, volume))
        if spec.port is not None:
            docs.append(_service(name, spec.port))
    return docs


def job_manifests(d: DeployDescription) -> list[Manifest]:
    """The migrations and the topics, as Jobs retried until Kafka and the database answer."""
    jobs = []
    for name, args in (("pets-migrate", ["db", "migrate"]), ("pets-topics", ["topics", "create"])):
        container = _container(d, name, args, d.services.api.resources)
        jobs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "labels": _labels(name)},
                "spec": {
                    "backoffLimit": 10,
                    "template": {
                        "metadata": {"labels": _labels(name)},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "securityContext": _pod_security(),
                            "containers": [container],
                        },
                    },
                },
            }
        )
    return jobs


def network_policies(d: DeployDescription) -> list[Manifest]:
    """Nothing enters the namespace but from itself, the UIs' ports, and metrics scrapes from the
    `monitoring` namespace; egress stays open (the venue, feeds and Polygon RPC are outside)."""
    meta = {"labels": _labels("network")}
    ui = [service_name(n) for n in ("api", "dashboard", "dagster_webserver")]
    ports = [p for p in (d.services.api.port, d.services.dashboard.port, d.services.dagster_webserver.port)]
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "pets-default-deny-ingress", **meta},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "pets-allow-namespace", **meta},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "pets-allow-ui", **meta},
            "spec": {
                "podSelector": {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/component", "operator": "In", "values": ui}
                    ]
                },
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"port": p, "protocol": "TCP"} for p in ports]}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "pets-allow-metrics", **meta},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                                }
                            }
                        ],
                        "ports": [{"port": d.metrics_port, "protocol": "TCP"}],
                    }
                ],
            },
        },
    ]


def _image_name(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def base_files(d: DeployDescription) -> dict[str, str]:
    files = {
        "namespace.yaml": dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": d.namespace, "labels": _labels("namespace") | POD_SECURITY_LABELS},
                }
            ]
        ),
        "network-policies.yaml": dump_all(network_policies(d)),
        "services.yaml": dump_all(service_manifests(d)),
        "jobs.yaml": dump_all(job_manifests(d)),
    }
    for name, flow in d.flows.items():
        files[f"flow-{service_name(name)}.yaml"] = dump_all(flow_manifests(d, name, flow))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": d.namespace,
        "resources": list(files),
        # settings only; secrets never go here (the pets-secrets Secret)
        "configMapGenerator": [
            {
                "name": CONFIG_MAP,
                "literals": [
                    "PETS_MODE=production",
                    f"PETS_STATE_DIR={STATE_DIR}",
                    f"PETS_CONFIG_DIR={CONFIG_DIR}",
                    f"PETS_KAFKA_BOOTSTRAP={d.overlays.dev.kafka_bootstrap}",
                ],
            }
        ],
    }
    return {"kustomization.yaml": dump_all([kustomization]), **files}


def _dependency(
    name: str,
    image: str,
    port: int,
    env: list[Manifest],
    storage: str,
    mount: str,
    uid: int,
) -> list[Manifest]:
    container: Manifest = {
        "name": name,
        "image": image,
        "env": env,
        "ports": [{"name": "http", "containerPort": port}],
        "resources": _resources(Resources(cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="2Gi")),
        "securityContext": _container_security(),
    }
    pod = {"securityContext": _pod_security(uid), "containers": [container]}
    spec: Manifest = {
        "serviceName": name,
        "replicas": 1,
        "selector": {"matchLabels": _labels(name)},
        "template": {"metadata": {"labels": _labels(name)}, "spec": pod},
    }
    container["volumeMounts"] = [{"name": "data", "mountPath": mount}]
    spec["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
        }
    ]
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "labels": _labels(name)},
            "spec": spec,
        },
        _service(name, port),
    ]


def _kafka_env(advertised: str) -> dict[str, str]:
    return {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{advertised}:9092",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",  # `pets topics create` makes them with their partitions
    }


def overlay_files(d: DeployDescription, overlay: Overlay) -> dict[str, str]:
    spec = d.overlay(overlay)
    kustomization: Manifest = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": d.namespace,
        "resources": ["../../base"],
        "images": [{"name": _image_name(d.image), "newTag": spec.image_tag}],
        "configMapGenerator": [
            {
                "name": CONFIG_MAP,
                "behavior": "merge",
                "literals": [f"PETS_KAFKA_BOOTSTRAP={spec.kafka_bootstrap}"],
            }
        ],
    }
    files: dict[str, str] = {}
    if overlay == "dev":
        # dev only: throwaway credentials for the in-namespace database; prod's Secret is the operator's
        kafka = _dependency(
            "kafka",
            d.dependencies.kafka,
            9092,
            # on a volume: the flows' recovery stores hold offsets into these logs
            [
                {"name": k, "value": v}
                for k, v in (_kafka_env("kafka") | {"KAFKA_LOG_DIRS": KAFKA_DATA}).items()
            ],
            "10Gi",
            KAFKA_DATA,
            uid=1000,  # apache/kafka's appuser
        )
        db_env: list[Manifest] = [
            {"name": "POSTGRES_USER", "value": "pets"},
            {"name": "POSTGRES_DB", "value": "pets"},
            {
                "name": "POSTGRES_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "timescaledb", "key": "password"}},
            },
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ]
        db = _dependency(  # the (alpine) image's postgres user, uid 70: initdb runs as it, no chown
            "timescaledb",
            d.dependencies.timescaledb,
            5432,
            db_env,
            "10Gi",
            "/var/lib/postgresql/data",
            uid=70,
        )
        files = {"kafka.yaml": dump_all(kafka), "timescaledb.yaml": dump_all(db)}
        kustomization["resources"] += list(files)
        kustomization["secretGenerator"] = [
            {"name": SECRET, "literals": [f"PETS_POSTGRES_DSN={DEV_DSN}"]},
            {"name": "timescaledb", "literals": ["password=pets"]},
        ]
    return {"kustomization.yaml": dump_all([kustomization]), **files}


def render_k8s(d: DeployDescription, out: Path, overlays: tuple[Overlay, ...] = OVERLAYS) -> list[Path]:
    """Write base/ and overlays/<name>/ under `out`; returns the files written."""
    written = _write(out / "base", base_files(d))
    for overlay in overlays:
        written += _write(out / "overlays" / overlay, overlay_files(d, overlay))
    return written


def _write(folder: Path, files: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    return paths


# ------------------------------------------------------------------------------------------ compose


def compose_document(d: DeployDescription, overlay: Overlay = "dev") -> Manifest:
    """docker-compose.yml as a mapping: every dependency in, the PETS services on one image."""
    from pets.cli.dagster import CODE_LOCATION

    image = f"{_image_name(d.image)}:{d.overlay(overlay).image_tag}"
    env = {
        "PETS_MODE": "production",
        "PETS_KAFKA_BOOTSTRAP": "kafka:9092",
        "PETS_POSTGRES_DSN": DEV_DSN,
        "PETS_STATE_DIR": STATE_DIR,
    }

    def pets(after_init: bool = True, **extra: Any) -> Manifest:
        depends: Manifest = {
            "kafka": {"condition": "service_healthy"},
            "timescaledb": {"condition": "service_healthy"},
        }
        if after_init:  # the schema and the topics exist before anything uses them
            depends["init"] = {"condition": "service_completed_successfully"}
        service: Manifest = {
            "build": ".",
            "image": image,
            "restart": "unless-stopped",
            "environment": dict(env),
            "env_file": [{"path": "secrets.env", "required": False}],  # git-ignored: private keys, API keys
            "depends_on": depends,
        }
        service.update(extra)
        return service

    deps = d.dependencies
    kafka_env = _kafka_env("kafka") | {"KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093"}
    services: Manifest = {
        "kafka": {
            "image": deps.kafka,
            "environment": kafka_env,
            "ports": ["9092:9092"],
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    "/opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 --list",
                ],
                "interval": "10s",
                "retries": 10,
            },
        },
        "timescaledb": {
            "image": deps.timescaledb,
            "environment": {"POSTGRES_USER": "pets", "POSTGRES_PASSWORD": "pets", "POSTGRES_DB": "pets"},
            "ports": ["5432:5432"],
            "volumes": ["timescale:/var/lib/postgresql/data"],
            "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U pets"], "interval": "5s", "retries": 20},
        },
        # the image's entrypoint is `pets`: the three steps need a shell around them
        "init": pets(
            after_init=False,
            restart="no",
            entrypoint=["sh", "-c"],
            command=["pets db migrate && pets topics create && pets config validate"],
        ),
    }
    volumes: Manifest = {"timescale": {}, "metabase-db": {}}
    for name, flow in d.flows.items():
        svc = service_name(name)
        if flow.processes == 1:
            services[svc] = pets(command=flow_args(d, name, flow), volumes=[f"state-{svc}:{STATE_DIR}"])
            volumes[f"state-{svc}"] = {}
            continue
        addresses = cluster_addresses(name, flow, host="{svc}-{i}")
        for i in range(flow.processes):  # a cluster: one service per process, each on its own volume
            cluster = ["--process-id", str(i), "--addresses", addresses]
            command = flow_args(d, name, flow) + cluster
            services[f"{svc}-{i}"] = pets(command=command, volumes=[f"state-{svc}-{i}:{STATE_DIR}"])
            volumes[f"state-{svc}-{i}"] = {}
    s = d.services
    services["api"] = pets(
        command=["api", "serve", "--host", "0.0.0.0", "--port", str(s.api.port)],
        ports=[f"{s.api.port}:{s.api.port}"],
    )
    services["dashboard"] = pets(
        command=[
            "dashboard",
            "--api",
            f"http://api:{s.api.port}",
            "--host",
            "0.0.0.0",
            "--port",
            str(s.dashboard.port),
        ],
        ports=[f"{s.dashboard.port}:{s.dashboard.port}"],
        depends_on={"api": {"condition": "service_started"}},
    )
    dagster_env = env | {"DAGSTER_HOME": "/dagster"}
    web = s.dagster_webserver.port
    services["dagster-webserver"] = pets(
        entrypoint=["dagster-webserver", "-h", "0.0.0.0", "-p", str(web), "-m", CODE_LOCATION],
        environment=dagster_env,
        volumes=["./ops/dagster/dagster.yaml:/dagster/dagster.yaml:ro"],
        ports=[f"{web}:{web}"],
    )
    services["dagster-daemon"] = pets(
        entrypoint=["dagster-daemon", "run", "-m", CODE_LOCATION],
        environment=dagster_env,
        volumes=["./ops/dagster/dagster.yaml:/dagster/dagster.yaml:ro"],
    )
    # Metabase keeps its own application database (users, questions, dashboards) in metabase-db, never
    # in the trading database; `pets metabase provision` adds the connection to timescaledb.
    services["metabase-db"] = {
        "image": deps.metabase_db,
        "environment": {
            "POSTGRES_USER": "metabase",
            "POSTGRES_PASSWORD": "metabase",
            "POSTGRES_DB": "metabase",
        },
        "volumes": ["metabase-db:/var/lib/postgresql/data"],
        "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U metabase"], "interval": "5s", "retries": 20},
    }
    services["metabase"] = {
        "image": deps.metabase,
        "ports": ["3001:3000"],
        "environment": {
            "MB_DB_TYPE": "postgres",
            "MB_DB_DBNAME": "metabase",
            "MB_DB_PORT": 5432,
            "MB_DB_USER": "metabase",
            "MB_DB_PASS": "metabase",
            "MB_DB_HOST": "metabase-db",
        },
        "depends_on": {
            "metabase-db": {"condition": "service_healthy"},
            "timescaledb": {"condition": "service_healthy"},
        },
    }
    services["prometheus"] = {
        "image": deps.prometheus,
        "ports": ["9090:9090"],
        "volumes": [
            "./ops/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "./ops/prometheus/rules:/etc/prometheus/rules:ro",
        ],
    }
    services["grafana"] = {
        "image": deps.grafana,
        "ports": ["3002:3000"],
        "volumes": [
            "./ops/grafana/provisioning:/etc/grafana/provisioning:ro",
            "./ops/grafana/dashboards:/var/lib/grafana/dashboards:ro",
        ],
        "depends_on": ["prometheus", "timescaledb"],
    }
    return {"name": "pets", "services": services, "volumes": volumes}


def compose_text(d: DeployDescription, overlay: Overlay = "dev") -> str:
    # leaf lists and mappings inline (default_flow_style=None), as a person writes a compose file
    return COMPOSE_HEADER + yaml.safe_dump(
        compose_document(d, overlay), sort_keys=False, width=120, default_flow_style=None
    )


def render_compose(d: DeployDescription, out: Path, overlay: Overlay = "dev") -> list[Path]:
    return _write(out, {"docker-compose.yml": compose_text(d, overlay)})
