# PETS - the two commands a new user runs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do command -v $$p >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PETS := $(VENV)/bin/pets
PYTEST_ARGS ?=

.PHONY: install run test infra-up infra-down infra-status lint dagster bench clean system-deps

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

system-deps:
	@scripts/system-deps.sh

# The main job on the embedded default: all flows in one process, no services needed.
run: install
	$(PETS) run

# Installs everything, starts the real Kafka broker and PostgreSQL, runs the suite, stops them.
# Stops afterwards only the services it started itself (a developer's running stack stays up).
test: install system-deps
	@was_up=$$($(PETS) infra status --json | $(PY) -c 'import json,sys; s=json.load(sys.stdin); print(int(s["kafka"]["up"] and s["postgres"]["up"]))'); \
	$(PETS) infra up || exit $$?; \
	status=0; PETS_REQUIRE_INFRA=1 $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ "$$was_up" != "1" ]; then $(PETS) infra down; fi; exit $$status

infra-up: install system-deps
	$(PETS) infra up

infra-down: install
	$(PETS) infra down

infra-status: install
	$(PETS) infra status

lint: install
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy

dagster: install
	$(PETS) dagster dev

bench: install
	$(PETS) bench --help

clean:
	rm -rf $(VENV) .pets build dist src/*.egg-info
