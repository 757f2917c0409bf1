"""Duplicate client order ids: a replayed or re-delivered intent must never be approved twice."""

from __future__ import annotations

from collections.abc import Container

from pets.risk.denial import Denial


def check_duplicate(client_order_id: str, decided: Container[str]) -> Denial | None:
    if client_order_id in decided:
        return Denial("duplicate", f"client order id {client_order_id} was already decided")
    return None
