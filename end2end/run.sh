#!/usr/bin/env bash
# Starts the release build on a fresh SQLite database and a free port, and the mock upstream
# (the journeys add a channel to it), runs Playwright against them, and stops them. The server
# runs in an empty folder and serves the console it carries (TOLLGATE_SITE names a site folder
# to serve instead). Arguments go to `playwright test`. Exit code: Playwright's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
bin="${TOLLGATE_BIN:?TOLLGATE_BIN must point at the release binary}"
site="${TOLLGATE_SITE:-}"
mock_bin="${MOCK_BIN:?MOCK_BIN must point at the mock upstream}"
work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
mock_port="$(free_port)"
"$mock_bin" --port "$mock_port" >"$work/mock.log" 2>&1 &
mock_pid=$!
mkdir "$work/run"
export TOLLGATE_ADMIN_PASSWORD="e2e-admin-$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
TOLLGATE__SERVER__PORT="$port" \
TOLLGATE__SERVER__SITE_ROOT="$site" \
TOLLGATE__DATABASE__URL="sqlite://$work/e2e.db" \
TOLLGATE__AUTH__ALLOW_REGISTRATION=true \
TOLLGATE__LOG__DIR="$work/logs" \
TOLLGATE__STORAGE__LOCAL_DIR="$work/objects" \
  bash -c 'cd "$1" && shift && exec "$@"' _ "$work/run" \
  "$bin" --config "$root/config/config.yaml" >"$work/server.log" 2>&1 &
pid=$!
cleanup() {
  kill -TERM "$pid" "$mock_pid" 2>/dev/null || true
  wait "$pid" "$mock_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/server.log"; echo "e2e: server exited" >&2; exit 1; fi
  sleep 0.1
done
cd "$here"
export TOLLGATE_E2E_URL="http://127.0.0.1:$port"
export TOLLGATE_E2E_MOCK_URL="http://127.0.0.1:$mock_port/v1"
status=0
npx playwright test "$@" || status=$?
if [ "$status" -ne 0 ]; then
  # The whole log stays beside Playwright's results; its end is printed.
  mkdir -p "$here/test-results" && cp "$work/server.log" "$here/test-results/server.log"
  echo "--- server log (whole: end2end/test-results/server.log) ---"; tail -n 50 "$work/server.log"
fi
exit "$status"
