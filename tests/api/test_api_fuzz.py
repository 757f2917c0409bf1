"""Property-based fuzzing of the control API from its own OpenAPI schema (schemathesis): whatever the
parameters, bodies and headers, no request gets a 500. Served over a short finished run (with a token,
so the control routes see valid, invalid and missing credentials)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from pets.api.app import create_app
from pets.api.control import AuditLog
from pets.api.run_desk import RunDesk
from pets.runtime import sources
from pets.runtime.journal import Journal
from pets.runtime.loop import TradingLoop
from pets.schemas.config import load_config
from pets.settings import load_settings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    config = load_config(load_settings().config_dir)
    source = sources.simulated(config, duration_s=30)
    journal = Journal()
    loop = TradingLoop(config, source.markets, journal=journal)
    desk = RunDesk(loop, journal)
    loop.run(desk.feed(source.events() if source.events is not None else source.frames))
    desk.finished = True
    desk.publish()
    return create_app(desk, config, "fuzz-token", AuditLog())


def test_no_server_errors(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15  # every read and control route is in the schema
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        fuzz()
