"""Hypothesis strategies built from any msgspec wire type, so every topic's schema is covered generically.

The strategy follows `msgspec.inspect.type_info`, including constraints (ge/le, lengths, patterns), so a new
schema type or field is covered with no change here; an unsupported type fails loudly by name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import strategies as st

from pets.schemas.codec import SchemaUnavailableError, schema_type_of
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


def _bound(strict: Any, inclusive: Any, step: Any) -> Any:
    return inclusive if strict is None else strict + step


def _decimals(info: mi.DecimalType) -> st.SearchStrategy[Decimal]:
    # Money on the venue grids (2 and 6 places) plus arbitrary exponents ("1E+3", "-0.000") for exactness.
    return st.one_of(
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
        low = max(INT_MIN, _bound(info.gt, info.ge, 1) if (info.gt, info.ge) != (None, None) else INT_MIN)
        high = min(UINT_MAX, _bound(info.lt, info.le, -1) if (info.lt, info.le) != (None, None) else UINT_MAX)
        ints = st.integers(min_value=low, max_value=high)
        return ints if info.multiple_of is None else ints.filter(lambda v: v % info.multiple_of == 0)
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False, min_value=info.ge, max_value=info.le).filter(
            lambda v: (info.gt is None or v > info.gt) and (info.lt is None or v < info.lt)
        )
    if isinstance(info, mi.DecimalType):
        return _decimals(info)
    if isinstance(info, mi.StrType):
        text = st.from_regex(info.pattern) if info.pattern else st.text()
        return text.filter(
            lambda s: (info.min_length is None or len(s) >= info.min_length)
            and (info.max_length is None or len(s) <= info.max_length)
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


def wire_strategy(schema_type: Any) -> st.SearchStrategy[Any]:
    """Valid messages of a msgspec wire type (Struct, tagged union, ...)."""
    return _strategy(mi.type_info(schema_type))


def schema_type_or_skip(spec: TopicSpec) -> Any:
    """The topic's schema type; skips (with the reason) while its module is not written yet."""
    try:
        return schema_type_of(spec)
    except SchemaUnavailableError as exc:
        pytest.skip(str(exc))


TOPICS = default_registry().topics
TOPIC_IDS = [t.name for t in TOPICS]


def struct_types(schema_type: Any) -> list[type[msgspec.Struct]]:
    """The top-level Struct classes of a topic type (the members of a tagged union, or the one Struct)."""
    info = mi.type_info(schema_type)
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return [m.cls for m in members if isinstance(m, mi.StructType)]
