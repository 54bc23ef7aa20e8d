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
# The pinned wasm-opt (npm binaryen) must come before any other on PATH.
export PATH := $(TOLLGATE_TOOLS)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR ?= never

BIN := $(CARGO_TARGET_DIR)/release/tollgate

.PHONY: run build test bench tools services lint unit e2e clean

tools:
	@scripts/install-tools.sh

services:
	@scripts/ensure-services.sh

## Release build of the binary and the console (wasm, js, css).
build: tools
	cargo leptos build --release

## Serve console and API on http://127.0.0.1:9701 (SQLite at data/tollgate.db, no Redis, no S3).
run: build
	$(BIN) --config config/config.yaml

lint: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --exclude frontend --all-targets --locked -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings

## Unit and integration tests on SQLite and on PostgreSQL + Redis.
unit: tools services
	cargo nextest run --workspace --exclude frontend --locked --profile ci

## Playwright on Chromium against the release build.
e2e: build
	cd end2end && npm ci --no-audit --no-fund
	TOLLGATE_BIN=$(BIN) TOLLGATE_SITE=$(ROOT)/target/site end2end/run.sh

test: lint unit e2e

bench: tools
	@echo "make bench: no benchmark is defined yet; the gateway-core issue adds the load benchmark."

clean:
	rm -rf target data logs end2end/test-results end2end/playwright-report
