# Tollgate — the two commands: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# Build outputs and caches live outside the clone, so CI runs on one machine stay incremental.
CACHE ?= $(HOME)/.cache/tollgate
export CARGO_TARGET_DIR ?= $(CACHE)/target
export TOLLGATE_TOOLS ?= $(CACHE)/tools
export npm_config_cache ?= $(CACHE)/npm
# The pinned wasm-opt (npm binaryen) must come before any other on PATH, behind its cache
# (scripts/cache-bin/wasm-opt: an output seen before is copied back, not optimized again).
export TOLLGATE_WASM_OPT_CACHE ?= $(CACHE)/wasm-opt
export PATH := $(ROOT)/scripts/cache-bin:$(TOLLGATE_TOOLS)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR ?= never
# cargo-leptos looks for the server binary here (it would guess a path inside the clone).
export LEPTOS_BIN_TARGET_DIR := $(CARGO_TARGET_DIR)

BIN := $(CARGO_TARGET_DIR)/release/tollgate
# cargo-leptos builds with these flags (Cargo.toml: always-erase-components); the release mock
# upstream is built with the same, or it would rebuild every shared crate and cargo-leptos after it.
LEPTOS_RUSTFLAGS := --cfg erase_components
VENV := $(CACHE)/venv
OPENAI_VERSION := 3.57.0
ANTHROPIC_VERSION := 2.17.0
# A real S3-compatible server (moto in server mode) for the object-storage tests.
MOTO_VERSION := 5.2.5
# A real SMTP server (aiosmtpd) for the alert e-mail tests.
AIOSMTPD_VERSION := 1.4.6
export TOLLGATE_TEST_PYTHON := $(VENV)/bin/python

.PHONY: run build test bench profile tools services pyenv lint unit e2e clean

tools:
	@scripts/install-tools.sh

services:
	@scripts/ensure-services.sh

## A venv with the official openai and anthropic clients (the real-client tests) and moto's S3
## server.
pyenv:
	@if ! $(VENV)/bin/python -c 'import openai, anthropic, moto, aiosmtpd, sys; sys.exit(openai.__version__ != "$(OPENAI_VERSION)" or anthropic.__version__ != "$(ANTHROPIC_VERSION)" or moto.__version__ != "$(MOTO_VERSION)" or aiosmtpd.__version__ != "$(AIOSMTPD_VERSION)")' 2>/dev/null; then \
	  echo "[tools] preparing $(VENV): openai==$(OPENAI_VERSION), anthropic==$(ANTHROPIC_VERSION), moto[server]==$(MOTO_VERSION), aiosmtpd==$(AIOSMTPD_VERSION)"; \
	  test -x $(VENV)/bin/python || python3 -m venv $(VENV); \
	  $(VENV)/bin/pip install -q "openai==$(OPENAI_VERSION)" "anthropic==$(ANTHROPIC_VERSION)" "moto[server]==$(MOTO_VERSION)" "aiosmtpd==$(AIOSMTPD_VERSION)"; \
	fi

## Release build of the binary and the console (wasm, js, css).
build: tools
	cargo leptos build --release --precompress --split
	find $(TOLLGATE_WASM_OPT_CACHE) -type f -mtime +14 -delete 2>/dev/null || true
	cp $(CARGO_TARGET_DIR)/release/hash.txt target/site/hash.txt
	scripts/wasm-budget.sh target/site

## Serve console and API on http://127.0.0.1:9701 (SQLite at data/tollgate.db, no Redis, no S3).
run: build
	$(BIN) --config config/config.yaml

lint: tools
	python3 scripts/module-loops.py service app types server
	cargo fmt --all -- --check
	cargo clippy --workspace --exclude frontend --all-targets --locked -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings

## Unit and integration tests on SQLite, PostgreSQL + Redis and MariaDB + Redis (the profiler
## built in, so that /api/admin/profile is tested as it answers).
UNIT_ARGS := --workspace --exclude frontend --locked --features server/profile
unit: tools services pyenv
	cargo nextest run $(UNIT_ARGS) --profile ci

## Playwright on Chromium against the release build. The mock upstream is the test build's,
## built with the unit stage's arguments (after `make unit`, nothing to build: a plain
## `cargo build` of it would resolve other features and rebuild the service and server crates).
e2e: build
	cargo nextest run $(UNIT_ARGS) --no-run
	cd end2end && npm ci --no-audit --no-fund
	TOLLGATE_BIN=$(BIN) MOCK_BIN=$(CARGO_TARGET_DIR)/debug/mock-upstream end2end/run.sh

test: lint unit e2e

## Load benchmark: gateway vs. mock upstream, SQLite then PostgreSQL (see scripts/bench.sh).
bench: build services
	@command -v oha >/dev/null 2>&1 && oha --version | grep -q "1.16.0" || cargo install oha --locked --version 1.16.0
	RUSTFLAGS="$(LEPTOS_RUSTFLAGS)" cargo build --release -p server --bin mock-upstream
	TOLLGATE_BIN=$(BIN) MOCK_BIN=$(CARGO_TARGET_DIR)/release/mock-upstream scripts/bench.sh

## Flamegraphs of the gateway under the bench load (SQLite): target/profile/{chat,stream,limited}.svg.
## The binary is built with the `profile` feature (an in-process sampler behind
## /api/admin/profile), into the same target dir: the next `make build` builds it without.
profile: build services
	@command -v oha >/dev/null 2>&1 && oha --version | grep -q "1.16.0" || cargo install oha --locked --version 1.16.0
	RUSTFLAGS="$(LEPTOS_RUSTFLAGS)" cargo build --release --locked -p server --bin tollgate --bin mock-upstream --features profile
	TOLLGATE_BIN=$(BIN) MOCK_BIN=$(CARGO_TARGET_DIR)/release/mock-upstream BENCH_PROFILE_DIR=$(ROOT)/target/profile scripts/bench.sh

clean:
	rm -rf target data logs end2end/test-results end2end/playwright-report end2end/screenshots
