# ceres.rollout — the two promises: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ceres-rollout
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
VENV ?= $(CACHE_DIR)/venv-$(REQ_HASH)
BIN := $(VENV)/bin
export PATH := $(BIN):$(subst $(BIN):,,$(PATH))
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export CERES_CACHE_DIR := $(CACHE_DIR)

.PHONY: help deps venv apt build bytecode sandbox sandbox-down sandbox-status demo test lint sanity unit integration molecule bench changelog clean collection ee-context ee

help:
	@echo "make demo          set up everything, start the sandbox, run playbooks/pilot.yml against it"
	@echo "make test          lint, sanity, unit, integration and molecule tests (starts the sandbox)"
	@echo "make sandbox       start the local sandbox (no-op when it is already up)"
	@echo "make sandbox-down  stop the sandbox; no process or listener is left"
	@echo "make bench         run the benchmarks in bench/"
	@echo "make ee            build the execution environment image (podman or docker; ee-context: only its build context)"

apt:
	@sandbox/apt-deps.sh

# The venv path carries a hash of the requirement files, so a change makes a new venv;
# the marker has no file prerequisites (a fresh clone's timestamps must not rebuild it).
# uv (pinned, installed into the venv first) resolves and installs the pins in ~1 min cold
# where pip took 6-13 min; its download cache is ~/.cache/uv, outside the clone. It compiles the
# bytecode at install time (pip did, uv does not by default): with PYTHONDONTWRITEBYTECODE set, as
# on the CI machine, every ansible-playbook and every module run compiled ansible and the
# kubernetes client from source again (import kubernetes 0.76 s -> 0.57 s).
UV_VERSION := 0.13.8
$(VENV)/.ok:
	@echo "==> creating the Python venv $(VENV)"
	@$(PYTHON) -m venv --clear $(VENV)
	@$(BIN)/pip install --disable-pip-version-check --progress-bar off --quiet uv==$(UV_VERSION)
	@$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements-dev.txt
	@echo "==> venv ready"
	@touch $@

venv: $(VENV)/.ok
	@ln -sfn $(VENV) .venv

build:
	@sandbox/build.sh >/dev/null

# The collection's own Python (plugins/: action and filter plugins, module_utils) compiled once: with
# PYTHONDONTWRITEBYTECODE set, as on the CI machine, every ansible-playbook worker compiled it from source
# again for every task that imports it (a pilot's CPU time -17%). A stale .pyc is never used (Python compares
# the source's mtime and size), so editing a file needs no rebuild; __pycache__ is ignored by git and the build.
bytecode: venv
	@$(BIN)/python -m compileall -q -j 0 plugins >/dev/null

deps: apt venv build bytecode

sandbox: deps
	@$(BIN)/python sandbox/sandbox.py up

sandbox-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python sandbox/sandbox.py down; else $(PYTHON) sandbox/sandbox.py down; fi

sandbox-status:
	@$(BIN)/python sandbox/sandbox.py status

demo: sandbox
	@source .sandbox/env && $(BIN)/ansible-playbook playbooks/pilot.yml -i inventories/local

lint: venv
	@echo "==> ruff (format and lint, ruff.toml)"
	@$(BIN)/ruff format --check --quiet . && $(BIN)/ruff check --quiet .
	@echo "==> ansible-lint (production profile)"
	@$(BIN)/ansible-lint --profile production

sanity: venv apt  # ansible-test runs shellcheck (apt-deps installs it)
	@tests/run-sanity.sh

unit: venv
	@echo "==> unit tests"
	@$(BIN)/python -m pytest -q tests/unit

# Test files run in parallel, each in its own namespaces and databases (one file per worker
# at a time); the tests that stop a shared component run alone afterwards.
INTEGRATION_WORKERS ?= 4
PYTEST_INTEGRATION := source .sandbox/env && $(BIN)/python -m pytest -q tests/integration

integration: sandbox
	@echo "==> integration tests against the sandbox ($(INTEGRATION_WORKERS) workers, then the serial ones)"
	@$(PYTEST_INTEGRATION) -n $(INTEGRATION_WORKERS) --dist loadfile -m "not serial"
	@$(PYTEST_INTEGRATION) -m serial -rfE

molecule: sandbox
	@echo "==> molecule scenarios (up to $${MOLECULE_JOBS:-4} at once)"
	@source .sandbox/env && tests/run-molecule.sh

# The Go build (8-17 min cold, 0 s warm) runs while lint, sanity and unit tests do; its output
# is shown when it fails. Then the sandbox-backed suites: the molecule scenarios (each in a
# world of its own) beside the parallel integration tests, their output printed when they
# end; the serial tests (they stop shared components) last, alone.
test:
	@build_log=$$(mktemp); $(MAKE) --no-print-directory build >"$$build_log" 2>&1 & build_pid=$$!; \
	status=0; $(MAKE) --no-print-directory lint sanity unit || status=$$?; \
	if ! wait $$build_pid; then cat "$$build_log"; rm -f "$$build_log"; echo "==> the Go build failed"; exit 1; fi; \
	cat "$$build_log"; rm -f "$$build_log"; [ $$status -eq 0 ] || exit $$status
	@$(MAKE) --no-print-directory sandbox
	@molecule_log=$$(mktemp); started=$$(date +%s); \
	( source .sandbox/env && MOLECULE_JOBS=$${MOLECULE_JOBS:-3} tests/run-molecule.sh >"$$molecule_log" 2>&1 ) & molecule_pid=$$!; \
	echo "==> molecule scenarios started beside the integration tests (output when they end)"; \
	echo "==> integration tests against the sandbox ($(INTEGRATION_WORKERS) workers)"; \
	integration_log=$$(mktemp); status=0; \
	$(PYTEST_INTEGRATION) -n $(INTEGRATION_WORKERS) --dist loadfile -m "not serial" --durations=20 -rfE 2>&1 | tee "$$integration_log" || status=$$?; \
	molecule_status=0; wait $$molecule_pid || molecule_status=$$?; \
	echo "==> molecule scenarios (exit $$molecule_status, $$(( $$(date +%s) - started ))s since they started):"; \
	cat "$$molecule_log"; \
	echo "==> summary: integration tests exit $$status, molecule exit $$molecule_status"; \
	grep -E '^(FAILED|ERROR) |(^|= )[0-9]+ (passed|failed|errors?)' "$$integration_log" | tail -n 40 || true; \
	sed 's/\x1b\[[0-9;]*m//g' "$$molecule_log" | grep -E '^[a-z_]+ +: actions=[0-9]+' || true; \
	rm -f "$$integration_log" "$$molecule_log"; \
	[ $$status -eq 0 ] && [ $$molecule_status -eq 0 ] || exit 1
	@echo "==> integration tests that stop shared components (alone)"
	@$(PYTEST_INTEGRATION) -m serial -rfE
	@echo "==> make test: all green"

bench: sandbox
	@source .sandbox/env && for b in bench/*/run; do [ -x "$$b" ] && "$$b"; done

# The execution environment (execution-environment.yml): the collection's tarball in dist/ (only what galaxy.yml's
# build_ignore lets in), then ansible-builder's build context in .cache/ee, or the image (a container engine needed).
EE_TAG ?= ceres-rollout-ee:$(shell sed -n 's/^version: *//p' galaxy.yml)
collection: venv
	@rm -rf dist && $(BIN)/ansible-galaxy collection build --output-path dist

ee-context: collection
	@rm -rf .cache/ee && $(BIN)/ansible-builder create --file execution-environment.yml --context .cache/ee

ee: collection
	@rm -rf .cache/ee && $(BIN)/ansible-builder build --file execution-environment.yml --context .cache/ee --tag $(EE_TAG)

changelog: venv
	@$(BIN)/antsibull-changelog lint

clean: sandbox-down
	rm -rf .sandbox .venv
