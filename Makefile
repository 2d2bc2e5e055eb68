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
APT_PACKAGES := chromium tmux iproute2 nftables mtools dosfstools fdisk openssh-client openssl

PYTEST_ARGS ?=
# e.g. make demo DEMO_ARGS="--duration 20 --record"   (see python -m spinal_edge.demo --help)
DEMO_ARGS ?=

.PHONY: help setup test demo bench lint format clean image image-test

help:
	@echo "make demo   - run a whole simulated robot cell on 127.0.0.1 (server, firmware, arm, edge daemon, setup page)"
	@echo "make test   - run every test (installs what it needs first)"
	@echo "make bench  - run the benchmarks; tables land in bench/results/"
	@echo "make lint   - ruff"
	@echo "make setup  - create .venv and install the four packages (editable, with dev extras)"
	@echo "make image  - build the Raspberry Pi SD-card image into images/out/ (root; 20-30 min on 2 cores)"
	@echo "make image-test - boot that image under qemu and check it (builds it first if needed)"

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

# The openpi-protocol peer of the round-trip bench: openpi-client pins NumPy < 2, so it gets its own venv.
OPENPI_VENV := .venv-openpi
$(OPENPI_VENV)/.installed:
	@test -x $(OPENPI_VENV)/bin/python || $(PYTHON) -m venv $(OPENPI_VENV)
	@$(OPENPI_VENV)/bin/python -m pip install -q openpi-client websockets typing_extensions  # openpi-client imports typing_extensions without declaring it
	@touch $@

bench: setup $(OPENPI_VENV)/.installed
	$(BIN)/python -m bench.run $(BENCH)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check sdk server edge_os hil bench tests

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format sdk server edge_os hil bench tests

clean:
	rm -rf $(VENV) $(OPENPI_VENV) .pytest_cache .ruff_cache test-artifacts

# The Raspberry Pi SD-card image (images/README.md). Slow (Debian packages configure under emulation), so
# `make test` runs only its fast tests; the build and the qemu boot test live behind these two targets.
IMAGE_APT_PACKAGES := mmdebstrap qemu-user-static binfmt-support arch-test mtools dosfstools fdisk e2fsprogs xz-utils
IMAGE_TEST_APT_PACKAGES := qemu-system-arm openssh-client mtools
IMAGE_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' sdk/src/spinal/__init__.py)
IMAGE_FILE := images/out/spinal-$(IMAGE_VERSION)-arm64.img
IMAGE_INPUTS := $(shell find images edge_os/src edge_os/systemd edge_os/config edge_os/pyproject.toml sdk/src \
	sdk/pyproject.toml firmware -type f -not -path 'images/out/*' -not -path 'images/cache/*' \
	-not -path 'images/tests/*' -not -name '*.pyc' -not -name '*.md' 2>/dev/null)

image: $(IMAGE_FILE).xz

$(IMAGE_FILE).xz: $(IMAGE_INPUTS) | setup
	@scripts/ensure-apt.sh $(IMAGE_APT_PACKAGES)
	$(BIN)/python images/build_image.py

image-test: $(IMAGE_FILE).xz
	@scripts/ensure-apt.sh $(IMAGE_TEST_APT_PACKAGES)
	SPINAL_IMAGE=$(abspath $(IMAGE_FILE)) $(BIN)/python -m pytest images/tests/test_boot_qemu.py $(PYTEST_ARGS)
