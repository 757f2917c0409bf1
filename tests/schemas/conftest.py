"""Hypothesis strategies built from any msgspec wire type, so every topic's schema is covered generically.

The strategy follows `msgspec.inspect.type_info`, including constraints (ge/le, lengths, patterns), so a new
schema type or field is covered with no change here; an unsupported type fails loudly by name.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import strategies as st

from pets.schemas.codec import SchemaUnavailableError, schema_type_of
from pets.schemas.orders import OrderIntent, make_client_order_id
from pets.schemas.topics import TopicSpec, default_registry

INT_MIN, UINT_MAX = -(2**63), 2**64 - 1

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=INT_MIN, max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=10,
)


# Money on the grids (0, 2, 4, 6 places) plus arbitrary exponents ("1E+3", "-0.000") for exactness.
DECIMALS: st.SearchStrategy[Decimal] = st.one_of(
    *(st.decimals(allow_nan=False, allow_infinity=False, places=p) for p in (0, 2, 4, 6)),
    st.decimals(allow_nan=False, allow_infinity=False),
)


def _strategy(info: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(info, mi.Metadata):
        return _strategy(info.type)
    if isinstance(info, mi.StructType):
        return st.builds(info.cls, **{f.name: _strategy(f.type) for f in info.fields})
    if isinstance(info, mi.UnionType):
        return st.one_of(*(_strategy(t) for t in info.types))
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.IntType):
        low = info.ge if info.gt is None else info.gt + 1
        high = info.le if info.lt is None else info.lt - 1
        ints = st.integers(
            min_value=INT_MIN if low is None else low, max_value=UINT_MAX if high is None else high
        )
        step = info.multiple_of

        def on_step(value: int) -> bool:
            return step is None or value % step == 0

        return ints.filter(on_step)
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False, min_value=info.ge, max_value=info.le).filter(
            lambda v: (info.gt is None or v > info.gt) and (info.lt is None or v < info.lt)
        )
    if isinstance(info, mi.DecimalType):
        return DECIMALS
    if isinstance(info, mi.StrType):
        text = st.from_regex(info.pattern) if info.pattern else st.text()
        return text.filter(
            lambda s: (
                (info.min_length is None or len(s) >= info.min_length)
                and (info.max_length is None or len(s) <= info.max_length)
            )
        )
    if isinstance(info, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        items = st.lists(_strategy(info.item_type), min_size=info.min_length or 0, max_size=info.max_length)
        convert = {mi.ListType: list, mi.VarTupleType: tuple, mi.SetType: set, mi.FrozenSetType: frozenset}
        return items.map(convert[type(info)])
    if isinstance(info, mi.TupleType):
        return st.tuples(*(_strategy(t) for t in info.item_types))
    if isinstance(info, mi.DictType):
        return st.dictionaries(
            _strategy(info.key_type),
            _strategy(info.value_type),
            min_size=info.min_length or 0,
            max_size=info.max_length if info.max_length is not None else 5,
        )
    if isinstance(info, mi.AnyType):
        return JSON_VALUES
    if isinstance(info, mi.EnumType):
        return st.sampled_from(list(info.cls))
    raise NotImplementedError(f"no test strategy for wire type {info!r}: add it to tests/schemas/conftest.py")


def _wire_strategy(schema_type: Any) -> st.SearchStrategy[Any]:
    return _strategy(mi.type_info(schema_type))


def _struct_types(schema_type: Any) -> list[type[msgspec.Struct]]:
    info = mi.type_info(schema_type)
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return [m.cls for m in members if isinstance(m, mi.StructType)]


TOPICS = default_registry().topics
OUR_MODULES = ("pets.schemas.orders:", "pets.schemas.control:", "pets.schemas.signals:")
OWN_TOPICS = [t for t in TOPICS if t.schema.startswith(OUR_MODULES)]


@pytest.fixture(scope="session")
def wire_strategy() -> Callable[[Any], st.SearchStrategy[Any]]:
    """wire_strategy(schema_type): valid messages of a msgspec wire type (Struct, tagged union, ...)."""
    return _wire_strategy


@pytest.fixture(scope="session")
def struct_types() -> Callable[[Any], list[type[msgspec.Struct]]]:
    """struct_types(schema_type): the top-level Struct classes (the members of a tagged union, or the one)."""
    return _struct_types


def _spec_and_type(spec: TopicSpec) -> tuple[TopicSpec, Any]:
    try:
        return spec, schema_type_of(spec)
    except SchemaUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session", params=TOPICS, ids=[t.name for t in TOPICS])
def topic(request: pytest.FixtureRequest) -> tuple[TopicSpec, Any]:
    """Every registry topic with its schema type; skipped (with the reason) while its module is missing."""
    return _spec_and_type(request.param)


@pytest.fixture(scope="session", params=OWN_TOPICS, ids=[t.name for t in OWN_TOPICS])
def own_topic(request: pytest.FixtureRequest) -> tuple[TopicSpec, Any]:
    """Topics carrying our own messages (not venue frames, which accept unknown fields on purpose)."""
    return _spec_and_type(request.param)


def _make_intent(**overrides: Any) -> OrderIntent:
    fields: dict[str, Any] = {
        "client_order_id": make_client_order_id("b05", "0xmarket", "111", "BUY", 1),
        "bot_id": "b05",
        "strategy_type": "market_making",
        "action": "place",
        "market": "0xmarket",
        "asset_id": "111",
        "side": "BUY",
        "price": Decimal("0.45"),
        "size": Decimal("10"),
        "source_ts_ms": 1_700_000_000_000,
        "created_ns": 1_700_000_000_123_456_789,
    }
    return OrderIntent(**{**fields, **overrides})


@pytest.fixture(scope="session")
def make_intent() -> Callable[..., OrderIntent]:
    """make_intent(**overrides): a valid place intent of bot b05."""
    return _make_intent
