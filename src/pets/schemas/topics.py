"""The topic registry (config/topics.yaml): one place that names every topic, its key and schema."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml


class TopicSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    partitions: int
    key: str
    retention_ms: int
    schema: str
    description: str
    cleanup_policy: Literal["delete", "compact"] = "delete"

    def schema_type(self) -> Any:
        """The msgspec type (Struct or Union) that every message on this topic decodes to."""
        return resolve_schema(self.schema)

    def full_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


class TopicRegistry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    topics: tuple[TopicSpec, ...]

    def get(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in self.topics)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)


def resolve_schema(dotted: str) -> Any:
    module_name, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class TopicRegistryError(ValueError):
    """config/topics.yaml is missing or malformed: names the file and what is wrong."""


def load_topic_registry(config_dir: Path) -> TopicRegistry:
    path = config_dir / "topics.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        return msgspec.convert(data, TopicRegistry)
    except OSError as exc:
        raise TopicRegistryError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TopicRegistryError(f"{path}: not valid YAML ({exc})") from None
    except msgspec.ValidationError as exc:
        raise TopicRegistryError(f"{path}: {exc}") from None


@cache
def default_registry() -> TopicRegistry:
    from pets.settings import load_settings

    return load_topic_registry(load_settings().config_dir)
