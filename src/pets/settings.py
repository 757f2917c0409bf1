"""The one settings object: where PETS runs (embedded / local / production) and what it talks to.

Every value comes from the environment with the prefix ``PETS_`` (or an optional git-ignored
``secrets.env`` in the project root for private keys). In ``local`` mode, addresses that are not
set explicitly are read from the state file that ``pets infra up`` writes, so every command finds
the broker and the database the project started.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

ENV_PREFIX = "PETS_"
DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024
DEFAULT_CLOCK_TOLERANCE_S = 300.0


class Mode(StrEnum):
    EMBEDDED = "embedded"  # one process, in-memory bus, no Kafka/PostgreSQL
    LOCAL = "local"  # the broker and database started by `pets infra up`
    PRODUCTION = "production"  # addresses given explicitly by the environment


class SettingsError(ValueError):
    """A bad setting: names the variable and what is wrong."""


def project_root() -> Path:
    """The folder holding config/ (the checkout), else the current directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "config" / "pets.yaml").exists() and (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


@dataclass(frozen=True, slots=True)
class VenueEndpoints:
    """Polymarket hosts; tests point them at local servers speaking the same protocol."""

    clob_url: str = "https://clob.polymarket.com"
    ws_market_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    ws_user_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/user"
    gamma_url: str = "https://gamma-api.polymarket.com"
    data_api_url: str = "https://data-api.polymarket.com"
    polygon_rpc_url: str = "https://polygon-rpc.com"


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode = Mode.LOCAL
    config_dir: Path = field(default_factory=lambda: project_root() / "config")
    state_dir: Path = field(default_factory=lambda: project_root() / ".pets")
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "pets")
    # The real recorded Polymarket data beside the checkout; absent on a fresh clone.
    shared_data_dir: Path = field(default_factory=lambda: project_root().parent / "shared" / "data")
    kafka_bootstrap: str | None = None
    postgres_dsn: str | None = None
    venue: VenueEndpoints = field(default_factory=VenueEndpoints)
    topic_prefix: str = ""  # prepended to every topic name: isolates tests and tenants on one broker
    live: bool = False  # live trading needs this AND `--live` AND a configured wallet
    # Inputs larger than this are dead-lettered unparsed (docs/faults.md): below the broker's 1 MB
    # message limit, far above the largest venue frame recorded.
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # How far ahead of the wall clock a venue timestamp may be before it is dead-lettered (docs/faults.md).
    clock_tolerance_s: float = DEFAULT_CLOCK_TOLERANCE_S
    # The Bytewax workers of the flow cluster this process belongs to (processes x workers; set by `pets
    # flow run`): above 1 the Kafka sources split by partition index (flows/kafka_source.py).
    flow_workers: int = 1
    # This process's id in a cluster of several processes (None: the flow is one process); it names
    # the process's own recovery store (flows/recovery.flow_store).
    flow_process_id: int | None = None

    @property
    def infra_state_file(self) -> Path:
        return self.state_dir / "infra" / "infra.json"

    @property
    def recovery_dir(self) -> Path:
        return self.state_dir / "recovery"

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap:
            raise SettingsError(
                "no Kafka broker: set PETS_KAFKA_BOOTSTRAP or start one with `pets infra up`"
            )
        return self.kafka_bootstrap

    def require_postgres(self) -> str:
        if not self.postgres_dsn:
            raise SettingsError(
                "no PostgreSQL: set PETS_POSTGRES_DSN or start one with `pets infra up`"
            )
        return self.postgres_dsn

    def with_infra(self) -> Settings:
        """Fill unset addresses from the running project infra (written by `pets infra up`)."""
        state = read_infra_state(self.infra_state_file)
        return replace(
            self,
            kafka_bootstrap=self.kafka_bootstrap or state.get("kafka_bootstrap"),
            postgres_dsn=self.postgres_dsn or state.get("postgres_dsn"),
        )


def read_infra_state(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc}); run `pets infra up` again") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object; run `pets infra up` again or delete it")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={value!r}: expected true/false")


def _positive(name: str, values: Mapping[str, str], default: float) -> float:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise SettingsError(f"{name}={raw!r}: expected a positive number")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``PETS_*`` variables; unknown ``PETS_*`` names are an error."""
    environ = dict(os.environ if env is None else env)
    root = Path(environ.get("PETS_ROOT", str(project_root())))
    merged = {**_read_env_file(root / "secrets.env"), **environ}
    known = {
        "PETS_MODE", "PETS_CONFIG_DIR", "PETS_STATE_DIR", "PETS_CACHE_DIR", "PETS_KAFKA_BOOTSTRAP",
        "PETS_POSTGRES_DSN", "PETS_LIVE", "PETS_ROOT", "PETS_REQUIRE_INFRA", "PETS_TOPIC_PREFIX",
        "PETS_SHARED_DATA", "PETS_MAX_MESSAGE_BYTES", "PETS_CLOCK_TOLERANCE_S",
        "PETS_NATIVE",  # read by `import pets` (pets.native), before settings exist: 0 = pure Python
        "PETS_REQUIRE_NATIVE",  # tests: a missing compiled hot path fails instead of skipping
        "PETS_CLOB_URL", "PETS_WS_MARKET_URL", "PETS_WS_USER_URL", "PETS_GAMMA_URL",
        "PETS_DATA_API_URL", "PETS_POLYGON_RPC_URL",
        # secrets: read by the live adapter only, never logged
        "PETS_PRIVATE_KEY", "PETS_FUNDER", "PETS_SIGNATURE_TYPE", "PETS_CLOB_API_KEY",
        "PETS_CLOB_SECRET", "PETS_CLOB_PASSPHRASE", "PETS_OPENAI_API_KEY",
        # the alert flow's channels (secrets) and the log format (read by the root CLI group)
        "PETS_TELEGRAM_BOT_TOKEN", "PETS_TELEGRAM_CHAT_ID", "PETS_TELEGRAM_API_URL",
        "PETS_DISCORD_WEBHOOK_URL", "PETS_LOG_FORMAT",
        "PETS_METABASE_URL", "PETS_METABASE_USER", "PETS_METABASE_PASSWORD",  # `pets metabase provision`
        "PETS_API_TOKEN",  # the control API's bearer token (pets.api.server)
    }
    unknown = sorted(k for k in merged if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    raw_mode = merged.get("PETS_MODE", Mode.LOCAL.value)
    try:
        mode = Mode(raw_mode)
    except ValueError:
        raise SettingsError(
            f"PETS_MODE={raw_mode!r}: expected one of {', '.join(m.value for m in Mode)}"
        ) from None
    defaults = VenueEndpoints()
    venue = VenueEndpoints(
        clob_url=merged.get("PETS_CLOB_URL", defaults.clob_url),
        ws_market_url=merged.get("PETS_WS_MARKET_URL", defaults.ws_market_url),
        ws_user_url=merged.get("PETS_WS_USER_URL", defaults.ws_user_url),
        gamma_url=merged.get("PETS_GAMMA_URL", defaults.gamma_url),
        data_api_url=merged.get("PETS_DATA_API_URL", defaults.data_api_url),
        polygon_rpc_url=merged.get("PETS_POLYGON_RPC_URL", defaults.polygon_rpc_url),
    )
    settings = Settings(
        mode=mode,
        config_dir=Path(merged.get("PETS_CONFIG_DIR", str(root / "config"))),
        state_dir=Path(merged.get("PETS_STATE_DIR", str(root / ".pets"))),
        cache_dir=Path(merged.get("PETS_CACHE_DIR", str(Path.home() / ".cache" / "pets"))),
        shared_data_dir=Path(merged.get("PETS_SHARED_DATA", str(root.parent / "shared" / "data"))),
        kafka_bootstrap=merged.get("PETS_KAFKA_BOOTSTRAP") or None,
        postgres_dsn=merged.get("PETS_POSTGRES_DSN") or None,
        venue=venue,
        topic_prefix=merged.get("PETS_TOPIC_PREFIX", ""),
        live=_bool("PETS_LIVE", merged.get("PETS_LIVE", "false")),
        max_message_bytes=int(_positive("PETS_MAX_MESSAGE_BYTES", merged, DEFAULT_MAX_MESSAGE_BYTES)),
        clock_tolerance_s=_positive("PETS_CLOCK_TOLERANCE_S", merged, DEFAULT_CLOCK_TOLERANCE_S),
    )
    if mode is Mode.LOCAL:
        settings = settings.with_infra()
    return settings
