"""The compiled hot path: the trading loop's modules built to C extensions with mypyc, used only
while they match the sources.

`make install` compiles the modules of `HOT_MODULES` (unchanged Python: mypyc reads
the type hints) into build/native/ with a manifest: the extension of each module and one digest of
every source file of the package (compiled code relies on the types of the modules it calls, not just
its own). On `import pets` the manifest's digest is compared with the sources: equal -> an import
finder serves those modules from their extensions; different (a source edited since the build) ->
pure Python, with one line on stderr, because a stale extension would silently run old code. All or
nothing: compiled modules call each other through the shared library, so a half-compiled package is
never loaded. `PETS_NATIVE=0` forces pure Python.

Compiled classes and pickling (flows snapshot their state as pickles, `snapshot_classes`): a
compiled class has no `__dict__` (list its attributes with `attributes`), and its constructor runs
`__init__`, which unpickling must not do: classes whose instances are snapshotted are marked
`@mypyc_attr(allow_interpreted_subclasses=True)` (mypyc's switch for Python's `__new__` semantics),
except frozen dataclasses, which cannot be restored attribute by attribute and are rebuilt through
their constructor instead (their `__reduce__` returns `by_constructor(self)`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent
NATIVE_DIR = PACKAGE_DIR.parent.parent / "build" / "native"  # beside src/ in a checkout
MANIFEST = "manifest.json"
EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

# The modules on the path of every frame and order of `pets run` / the flows (measured with
# `pets bench loop`: ~1.9x the frames/s of pure Python with all of them compiled).
HOT_MODULES = (
    "pets.pipelines.market_data.parser",
    "pets.venue.units",
    "pets.venue.order_book",
    "pets.pipelines.market_data.features",
    "pets.pipelines.market_data.market",
    "pets.venue.precision",
    "pets.bots.base",
    "pets.bots.baskets",
    "pets.bots.market_rebalancing_arb",
    "pets.bots.multi_outcome_arb",
    "pets.bots.market_making",
    "pets.bots.tail_risk_mm",
    "pets.bots.copy_trading",
    "pets.bots.kelly_value_betting",
    "pets.bots.long_term_value",
    "pets.bots.esports_live",
    "pets.bots.news_scalping",
    "pets.bots.ai_contrarian",
    "pets.bots.signal_gate",
    "pets.bots.routing",
    "pets.pipelines.news.signals",
    "pets.risk.engine",
    "pets.risk.lots",
    "pets.risk.ledger",
    "pets.risk.trips",
    "pets.execution.paper_exchange",
    "pets.execution.portfolio",
    "pets.runtime.bus",
    "pets.runtime.loop",
)
active = False  # True once the compiled modules are the ones imported


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over every .py file of the package (relative path and content, in path order)."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules (and their shared library) at the paths the manifest names."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def mismatch(manifest: dict[str, Any]) -> str | None:
    """Why a build (its manifest) cannot serve these sources on this Python, or None."""
    if manifest.get("extension_suffix") != EXTENSION_SUFFIX:
        return f"built for {manifest.get('extension_suffix')}, this Python loads {EXTENSION_SUFFIX}"
    if manifest.get("sources") != source_digest():
        return "the sources changed since it was built"
    return None


def read_manifest(native_dir: Path = NATIVE_DIR) -> dict[str, Any] | None:
    path = native_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def install(native_dir: Path = NATIVE_DIR) -> bool:
    """Serve the compiled modules when build/native matches the sources; True when it does."""
    global active
    if os.environ.get("PETS_NATIVE", "1") == "0":
        return False
    manifest = read_manifest(native_dir)
    if manifest is None:
        return False
    why = mismatch(manifest)
    if why is not None:
        print(
            f"pets: not using the compiled hot path in {native_dir} ({why}); running pure Python. "
            "Rebuild it with `make native`.",
            file=sys.stderr,
        )
        return False
    files = {name: native_dir / file for name, file in manifest["modules"].items()}
    sys.meta_path.insert(0, CompiledFinder(files))
    active = True
    return True


def attributes(obj: object) -> dict[str, Any]:
    """An object's instance attributes, compiled or not: a compiled class lists them in
    `__mypyc_attrs__`, an interpreted one in `__dict__` and its classes' `__slots__`. Unset ones are
    left out."""
    cls = type(obj)
    names = getattr(cls, "__mypyc_attrs__", None)
    if names is None:
        slots = [name for klass in cls.__mro__ for name in klass.__dict__.get("__slots__", ())]
        found = {name: getattr(obj, name) for name in slots if hasattr(obj, name)}
        return found | vars(obj) if hasattr(obj, "__dict__") else found
    return {name: getattr(obj, name) for name in names if name != "__dict__" and hasattr(obj, name)}


def state_of(obj: object) -> Any:
    """What a snapshot keeps of `obj`: what its own `__getstate__` returns when it has one (every
    compiled class has one, returning `attributes`), else its attributes."""
    getstate = type(obj).__getstate__
    return attributes(obj) if getstate is object.__getstate__ else getstate(obj)


def rebuild(cls: Any, state: Any) -> Any:
    """The object `state_of` described, without running `__init__`."""
    obj = cls.__new__(cls)
    setstate = getattr(obj, "__setstate__", None)
    if setstate is not None:
        setstate(state)
    else:
        for name, value in state.items():
            object.__setattr__(obj, name, value)
    return obj


def snapshot_classes() -> dict[type, Any]:
    """A pickle dispatch table for the classes of the compiled modules that snapshots hold: each
    pickles as `rebuild(class, state_of(obj))`, the same bytes compiled or not (left to itself,
    pickle writes a compiled object's state as a dict and an interpreted slots object's as a tuple,
    and neither reads the other's), so a flow restarted in the other mode resumes its state."""

    def reduce(obj: object) -> tuple[Any, ...]:
        return rebuild, (type(obj), state_of(obj))

    table: dict[type, Any] = {}
    for module_name in HOT_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module_name
                and "__reduce__" not in value.__dict__  # frozen dataclasses: by_constructor
                and not issubclass(value, (tuple, BaseException))
                and not getattr(value, "_is_protocol", False)
                and not hasattr(value, "__struct_fields__")  # msgspec pickles its own structs
            ):
                table[value] = reduce
    return table


def by_constructor(obj: Any) -> tuple[type, tuple[Any, ...]]:
    """`__reduce__` of a frozen dataclass: rebuilt from its fields by its constructor."""
    return type(obj), tuple(getattr(obj, field.name) for field in fields(obj))
