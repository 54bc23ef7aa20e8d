#!/usr/bin/env bash
# Installs the pinned build tools when missing or at another version. Idempotent.
set -euo pipefail
CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate pinned in Cargo.toml
BINARYEN_VERSION=132.0.0       # never Debian's binaryen: its wasm-opt breaks hydration
TOOLS="${TOLLGATE_TOOLS:-$HOME/.cache/tollgate/tools}"

say() { printf '[tools] %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
if ! cargo leptos --version 2>/dev/null | grep -qF "$CARGO_LEPTOS_VERSION"; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (cold: ~25 min on 2 cores)"
  cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION" --features no_downloads
fi
if ! wasm-bindgen --version 2>/dev/null | grep -qF "$WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
if ! "$TOOLS/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -qF "version ${BINARYEN_VERSION%%.*}"; then
  say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --no-save "binaryen@$BINARYEN_VERSION" >/dev/null
fi
# The browser and its font are for the tests only; an image build sets TOLLGATE_NO_BROWSER=1.
if [ -z "${TOLLGATE_NO_BROWSER:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian chromium for Playwright"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# A font with Chinese glyphs, so that the 简体中文 pages render (and their screenshots read).
# (grep reads fc-list's whole list: with -q it would stop at the match, fc-list would die of
# SIGPIPE, and pipefail would call the font missing: two runs in three reinstalled it.)
if [ -z "${TOLLGATE_NO_BROWSER:-}" ] && ! fc-list 2>/dev/null | grep -i "wenquanyi\|noto sans cjk" >/dev/null; then
  say "installing a CJK font (fonts-wqy-zenhei) for the Chinese console in Chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null
fi
if ! command -v curl >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
