"""The real PostgreSQL started by `pets infra up`."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration


def test_postgres_answers_a_query(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, connect_timeout=5) as conn:
        database, answer = conn.execute("SELECT current_database(), 6 * 7").fetchone() or (None, None)
    assert database == "pets"
    assert answer == 42


def test_fresh_db_is_writable(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, price numeric)")
        conn.execute("INSERT INTO t VALUES (1, 0.53), (2, 0.47)")
        total = conn.execute("SELECT sum(price) FROM t").fetchone()
    assert total is not None and str(total[0]) == "1.00"


def test_throwaway_cluster_settings(postgres_dsn: str) -> None:
    """Durability is off on purpose (docs/infra.md) and only loopback is listened on."""
    with psycopg.connect(postgres_dsn) as conn:
        shown = {name: conn.execute(f"SHOW {name}").fetchone() for name in
                 ("fsync", "synchronous_commit", "listen_addresses")}
    assert {k: v[0] if v else None for k, v in shown.items()} == {
        "fsync": "off", "synchronous_commit": "off", "listen_addresses": "127.0.0.1",
    }
