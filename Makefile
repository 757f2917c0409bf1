# PETS - the two commands a new user runs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do command -v $$p >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PETS := $(VENV)/bin/pets
PYTEST_ARGS ?=

.PHONY: install native run test infra-up infra-down infra-status lint dagster bench clean system-deps \
	tools timescale-pglite start desk api dashboard start-bot stop-bot start-all-bots emergency-halt health-check logs \
	shell-db backup-db

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# The compiled hot path (pets.native): rebuilt when any source of the package changed since the last
# build (the builder compares digests), because `import pets` ignores a build that does not match.
native: $(VENV)/.installed
	@PETS_NATIVE=0 $(PY) -m pets.native.build

install: $(VENV)/.installed native

system-deps:
	@scripts/system-deps.sh

# kustomize, kube-apiserver and etcd for the deployment tests (tests/deploy), built from their Go
# modules once into .pets/tools (cold ~5 min, then cached)
tools:
	@scripts/kustomize.sh
	@scripts/kube-apiserver.sh

# The TimescaleDB test server (PostgreSQL + TimescaleDB in WebAssembly, ops/timescale-pglite): npm ci
# into the cache, once per change of its files. Without node/npm its tests skip, saying so.
timescale-pglite:
	@scripts/timescale-pglite.sh >/dev/null || { s=$$?; [ $$s -eq 3 ] || exit $$s; }

# The main job on the embedded default: all flows in one process, no services needed.
run: install
	$(PETS) run

# Installs everything (the compiled hot path too, when a C compiler is here: the suite then requires
# it), starts the real Kafka broker and PostgreSQL, runs the suite, stops them.
# Stops afterwards only the services it started itself (a developer's running stack stays up).
test: install system-deps tools timescale-pglite
	@was_up=$$($(PETS) infra status --json | $(PY) -c 'import json,sys; s=json.load(sys.stdin); print(int(s["kafka"]["up"] and s["postgres"]["up"]))'); \
	$(PETS) infra up || exit $$?; \
	native=$$(test -f build/native/manifest.json && echo 1); \
	status=0; PETS_REQUIRE_INFRA=1 PETS_REQUIRE_NATIVE=$$native $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	if [ "$$was_up" != "1" ]; then $(PETS) infra down; fi; exit $$status

infra-up: $(VENV)/.installed system-deps
	$(PETS) infra up

infra-down: $(VENV)/.installed
	$(PETS) infra down

infra-status: $(VENV)/.installed
	$(PETS) infra status

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy

dagster: install
	$(PETS) dagster dev

bench: install
	$(PETS) bench --help

# ---- the operator's desk (docs/desk.md): each target one `pets` command ----
API_PORT ?= 8000
DASHBOARD_PORT ?= 8501
API_URL ?= http://127.0.0.1:$(API_PORT)
SPEED ?= 1
# BOT_ID=3 or BOT_ID=bot_03
BOT = $(if $(filter bot_%,$(BOT_ID)),$(BOT_ID),$(shell printf 'bot_%02d' '$(BOT_ID)' 2>/dev/null))

# The main job (paper, embedded) paced at SPEED x venue time, serving the control API on API_PORT.
start: install
	$(PETS) run --api-port $(API_PORT) --speed $(SPEED)

# The control API over the database the flows write (production: flows as processes).
api: install
	$(PETS) api serve --port $(API_PORT)

dashboard: install
	$(PETS) dashboard --api $(API_URL) --port $(DASHBOARD_PORT)

# A new user's desk: the main job with its API and the dashboard over it (Ctrl-C stops both).
# Background jobs of a non-interactive shell ignore Ctrl-C: the trap passes it on as SIGTERM.
desk: install
	@$(PETS) run --api-port $(API_PORT) --speed $(SPEED) & run=$$!; \
	$(PETS) dashboard --api $(API_URL) --port $(DASHBOARD_PORT) & ui=$$!; \
	trap 'kill $$run $$ui 2>/dev/null; wait' INT TERM EXIT; \
	wait $$run

start-bot: $(VENV)/.installed
	@test -n "$(BOT_ID)" || { echo "usage: make start-bot BOT_ID=N"; exit 2; }
	$(PETS) bot start $(BOT)

stop-bot: $(VENV)/.installed
	@test -n "$(BOT_ID)" || { echo "usage: make stop-bot BOT_ID=N"; exit 2; }
	$(PETS) bot stop $(BOT)

start-all-bots: $(VENV)/.installed
	$(PETS) bot start '*'

emergency-halt: $(VENV)/.installed
	$(PETS) halt --reason "make emergency-halt"

health-check: $(VENV)/.installed
	$(PETS) api health --api $(API_URL)

logs: $(VENV)/.installed
	$(PETS) api events --api $(API_URL)

shell-db: $(VENV)/.installed
	$(PETS) db shell

backup-db: $(VENV)/.installed
	$(PETS) db backup

clean:
	rm -rf $(VENV) .pets build dist src/*.egg-info
