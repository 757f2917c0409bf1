"""The services PETS starts for itself on one machine, with no Docker.

A single-node Apache Kafka broker (KRaft, from Maven Central) and a throwaway PostgreSQL cluster
(Debian's server binaries), each on free loopback ports with all state under
``<state_dir>/infra``. `pets infra up|down|status` drives them through :mod:`pets.infra.stack`.
"""

from __future__ import annotations

from dataclasses import dataclass


class InfraError(RuntimeError):
    """A service could not be started or stopped; the message says why (with the log tail)."""


@dataclass(frozen=True, slots=True)
class Started:
    """What a start did: the address, how long it took, and the notable steps (for the timings)."""

    address: str
    seconds: float
    already_running: bool
    steps: tuple[str, ...] = ()
