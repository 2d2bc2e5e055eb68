# spinal — the front door. `make demo` runs a whole simulated robot cell on localhost;
# `make test` runs every test. Both (and `make bench`) install what they need first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.spinal-installed
PKGS   := sdk/pyproject.toml server/pyproject.toml edge_os/pyproject.toml hil/pyproject.toml
# Debian packages the tests and the demo use (installed only when missing).
APT_PACKAGES := chromium tmux iproute2

PYTEST_ARGS ?=
# e.g. make demo DEMO_ARGS="--duration 20 --record"   (see python -m spinal_edge.demo --help)
DEMO_ARGS ?=

.PHONY: help setup test demo bench lint format clean

help:
	@echo "make demo   - run a whole simulated robot cell on 127.0.0.1 (server, firmware, arm, edge daemon, setup page)"
	@echo "make test   - run every test (installs what it needs first)"
	@echo "make bench  - run the benchmarks; tables land in bench/results/"
	@echo "make lint   - ruff"
	@echo "make setup  - create .venv and install the four packages (editable, with dev extras)"

setup: $(STAMP)

$(STAMP): $(PKGS) scripts/ensure-apt.sh
	@scripts/ensure-apt.sh $(APT_PACKAGES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing spinal packages into $(VENV) ..."
	@$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	@$(BIN)/python -m pip install -q -e 'sdk[dev]' -e 'server[dev]' -e 'edge_os[dev]' -e 'hil[dev]'
	@touch $@

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m spinal_edge.demo $(DEMO_ARGS)

bench: setup
	$(BIN)/python -m bench.run $(BENCH)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check sdk server edge_os hil bench tests

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format sdk server edge_os hil bench tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
