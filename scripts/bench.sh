#!/usr/bin/env bash
# make bench: the gateway under a fixed load, next to the mock upstream measured directly.
# Gateway pinned to CPU 0; mock upstream and load generator pinned to CPU 1. Auth, billing and
# usage logging are all on. Runs on SQLite, then PostgreSQL (+ Redis).
set -euo pipefail
BIN="${TOLLGATE_BIN:?}"
MOCK="${MOCK_BIN:?}"
DURATION="${BENCH_SECONDS:-10}"
SOAK="${BENCH_SOAK_SECONDS:-60}"
# make profile: flamegraphs of the chat and stream loads into this folder (SQLite only), from
# a binary built with the `profile` feature; no measurements.
PROFILE_DIR="${BENCH_PROFILE_DIR:-}"
CONNS="${BENCH_CONNECTIONS:-64}"
work="$(mktemp -d)"
pids=()
moved=()
niced=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  # Give PostgreSQL and Redis back the CPUs and priority they had.
  for m in "${moved[@]}"; do taskset -apc "${m#*:}" "${m%%:*}" >/dev/null 2>&1 || true; done
  db_restore
  rm -rf "$work"
}
trap cleanup EXIT

# The gateway's core is its own: in production the database and Redis run on other machines, so
# their server processes move to the load core for the run (when this user may move them).
for p in $(pgrep -x postgres; pgrep -x mariadbd; pgrep -x mysqld; pgrep -x redis-server); do
  cpus="$(taskset -pc "$p" 2>/dev/null | awk -F': ' '{print $2}')" || continue
  [ -n "$cpus" ] && taskset -apc 1 "$p" >/dev/null 2>&1 && moved+=("$p:$cpus")
done

# During the latency run the database servers yield the load core to the mock and the load
# generator (SCHED_IDLE: they run when it is otherwise idle, which at 2,000 req/s it mostly is):
# their bursts of work (a batch of usage rows, a credit report) would otherwise hold the mock's
# answers for a millisecond or more, which on a database host of their own they do not. The
# throughput runs leave them at their own priority, as they must keep up there.
db_yield() {
  for p in $(pgrep -x postgres; pgrep -x mariadbd; pgrep -x mysqld; pgrep -x redis-server); do
    local ni; ni="$(ps -o ni= -p "$p" 2>/dev/null | tr -d ' ')" || continue
    [ -n "$ni" ] && chrt -i -a -p 0 "$p" >/dev/null 2>&1 && niced+=("$p:$ni")
  done
}
# Back to the normal policy: the processes changed, and any forked from them meanwhile.
db_restore() {
  [ "${#niced[@]}" -eq 0 ] && return 0
  for p in $(pgrep -x postgres; pgrep -x mariadbd; pgrep -x mysqld; pgrep -x redis-server); do chrt -o -a -p 0 "$p" >/dev/null 2>&1 || true; done
  for m in "${niced[@]}"; do renice -n "${m#*:}" -p "${m%%:*}" >/dev/null 2>&1 || true; done
  niced=()
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# "<RSS> MB (heap <anon> MB, binary and files <file> MB)" of a process now.
rss_parts() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {printf "%d MB (heap %d MB, binary and files %d MB)", r/1024, a/1024, f/1024}' "/proc/$1/status"; }
# The gateway's own view: "<requests within 1 ms> <all requests>" of /v1/chat/completions so far.
within_1ms() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^tollgate_http_request_duration_seconds_bucket\{method="POST",route="\/v1\/chat\/completions"/ {
    if ($1 ~ /le="0.001"/) a = $2; if ($1 ~ /le="\+Inf"/) t = $2 } END { print a + 0, t + 0 }'
}
# The gateway's own overhead histogram for /v1/chat/completions: "le=count" pairs, cumulative.
overhead() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^tollgate_gateway_overhead_seconds_bucket\{route="\/v1\/chat\/completions"/ {
    match($1, /le="[^"]*"/); printf "%s=%s ", substr($1, RSTART + 4, RLENGTH - 5), $2 }'
}
# "<share within 1 ms> <p50 bucket> <p99 bucket>" of the overhead observed between two snapshots.
overhead_summary() {
  python3 - "$1" "$2" <<'PY'
import sys
def parse(s): return {k: float(v) for k, v in (p.split("=") for p in s.split())}
a, b = parse(sys.argv[1]), parse(sys.argv[2])
d = sorted(((float("inf") if k == "+Inf" else float(k)), b[k] - a.get(k, 0)) for k in b)
total = d[-1][1] or 1
within = next(c for le, c in d if le >= 0.001) / total * 100
def q(p): le = next(le for le, c in d if c >= p * total); return "over 100" if le == float("inf") else f"{le * 1000:g}"
print(f"{within:.2f} {q(0.5)} {q(0.99)}")
PY
}
credit_waits() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^tollgate_credit_waits_total / {print $2}'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
tck="$(getconf CLK_TCK)"

mock_port="$(free_port)"
taskset -c 1 "$MOCK" --port "$mock_port" >"$work/mock.log" 2>&1 &
pids+=($!)

# oha: $1 url, $2 body, $3 extra args; prints "rps p50_ms p99_ms count"
load() {
  local url="$1" body="$2"; shift 2
  taskset -c 1 oha --no-tui --output-format json -m POST -H "content-type: application/json" \
    -H "authorization: Bearer ${KEY:-none}" -d "$body" "$@" "$url" >"$work/oha.json" 2>/dev/null
  python3 - "$work/oha.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]; p = r["latencyPercentiles"]
ok = sum(v for k, v in r.get("statusCodeDistribution", {}).items() if k.startswith("2"))
print(f'{s["requestsPerSec"]:.0f} {p["p50"]*1000:.3f} {p["p99"]*1000:.3f} {ok}')
PY
}

key_lookups() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^tollgate_key_lookups_total\{result="unknown"\}/ {print $2}' | grep . || echo 0; }

# Keys that do not exist: the same one at full speed (answered from the cache of keys known not
# to exist), then a different random key every call from one address (past
# auth.max_invalid_keys_per_ip, 429 before any lookup): the database lookups they cost, per second.
bogus_keys() {
  local port="$1"
  local l0; l0="$(key_lookups "$port")"
  read -r brps _ _ _ < <(KEY="sk-bench-not-a-key" load "http://127.0.0.1:$port/v1/chat/completions" '{}' -z "${DURATION}s" -c "$CONNS")
  local l1; l1="$(key_lookups "$port")"
  printf '%-34s %10s   database lookups: %s/s\n' "one bogus key (401)" "$brps" "$(python3 -c "print(f'{($l1-$l0)/$DURATION:.1f}')")"
  read -r rrps codes < <(taskset -c 1 python3 - "$port" "$DURATION" <<'PY'
import http.client, os, sys, threading, time, collections
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + seconds
counts = collections.Counter()
lock = threading.Lock()
def worker():
    c = http.client.HTTPConnection("127.0.0.1", port)
    mine = collections.Counter()
    while time.time() < end:
        c.request("GET", "/v1/models", headers={"authorization": "Bearer sk-" + os.urandom(16).hex()})
        r = c.getresponse(); r.read()
        mine[r.status] += 1
    with lock:
        counts.update(mine)
threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
total = sum(counts.values())
print(f"{total / seconds:.0f}", " ".join(f"{k}:{v}" for k, v in sorted(counts.items())))
PY
)
  local l2; l2="$(key_lookups "$port")"
  printf '%-34s %10s   database lookups: %s/s (%s)\n' "random keys, one address" "$rrps" "$(python3 -c "print(f'{($l2-$l1)/$DURATION:.1f}')")" "$codes"
}

run_backend() {
  local name="$1" db_url="$2" redis_url="$3"
  local port; port="$(free_port)"
  local token="bench-admin-token"
  cat >"$work/bench.yaml" <<YAML
server: { port: $port }
database: { url: "$db_url", max_connections: 16 }
redis: { url: "$redis_url", prefix: "tgbench:$$:" }
log: { level: warn, dir: "" }
admin: { api_token: "$token" }
limits: { billing_query_per_minute: 0, log_query_per_minute: 0 }
channels:
  - { name: mock, base_url: "http://127.0.0.1:$mock_port/v1", api_key: "k", models: [gpt-4o-mini] }
pricing:
  gpt-4o-mini: { input_per_1m: "0.15", output_per_1m: "0.60" }
YAML
  TOLLGATE_ADMIN_PASSWORD=bench-password-1 taskset -c 0 "$BIN" --config "$work/bench.yaml" >"$work/gw-$name.log" 2>&1 &
  local gw=$!
  pids+=($gw)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  local at_rest; at_rest="$(rss_parts "$gw")"
  local api="http://127.0.0.1:$port/api/admin"
  local uid
  uid="$(curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"username":"bench","password":"bench-password","role":"user"}' "$api/users" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"amount":"1000000","reason":"bench"}' "$api/users/$uid/balance" >/dev/null
  local created
  created="$(curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"user_id\":$uid,\"name\":\"bench\"}" "$api/keys")"
  KEY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")"
  local key_id; key_id="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")"
  export KEY
  # A second key with requests and tokens per minute (high enough never to refuse at this
  # load): the "limited" run measures what enforcing them costs (in memory; with Redis, one
  # slice taken per ~150,000 calls).
  local limited_key
  limited_key="$(curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"user_id\":$uid,\"name\":\"limited\",\"rpm\":3000000,\"tpm\":3000000000}" "$api/keys" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
  local chat='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there world"}],"max_tokens":16}'
  local stream='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there world"}],"max_tokens":16,"stream":true}'
  if [ -n "$PROFILE_DIR" ]; then
    profile_runs "$port" "$token" "$chat" "$stream"
    kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
    return
  fi
  echo "== $name: $DURATION s per run, $CONNS connections; gateway on CPU 0, mock + load on CPU 1"
  printf '%-34s %10s %9s %9s %12s\n' "run" "req/s" "p50 ms" "p99 ms" "CPU us/req"
  # "messages" and "responses": Claude Code's and Codex's protocols on the same chat channel,
  # each stream converted (the mock direct line is the chat stream it becomes).
  local messages='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there world"}],"max_tokens":16,"stream":true}'
  local responses='{"model":"gpt-4o-mini","input":"hello there world","max_output_tokens":16,"stream":true}'
  for kind in chat stream limited messages responses; do
    local body; [ "$kind" = stream ] && body="$stream" || body="$chat"
    local route=/v1/chat/completions
    if [ "$kind" = messages ]; then body="$messages"; route=/v1/messages; fi
    if [ "$kind" = responses ]; then body="$responses"; route=/v1/responses; fi
    local direct="$body"; case "$kind" in messages|responses) direct="$stream" ;; esac
    [ "$kind" = limited ] && KEY="$limited_key" || KEY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")"
    load "http://127.0.0.1:$port$route" "$body" -z 2s -c "$CONNS" >/dev/null   # warm-up
    read -r mrps mp50 mp99 _ < <(load "http://127.0.0.1:$mock_port/v1/chat/completions" "$direct" -z "${DURATION}s" -c "$CONNS")
    local t0; t0="$(cpu_ticks "$gw")"
    read -r grps gp50 gp99 gok < <(load "http://127.0.0.1:$port$route" "$body" -z "${DURATION}s" -c "$CONNS")
    local t1; t1="$(cpu_ticks "$gw")"
    local cpu_us; cpu_us="$(python3 -c "print(f'{($t1-$t0)/$tck*1e6/max($gok,1):.1f}')")"
    printf '%-34s %10s %9s %9s %12s\n' "mock direct ($kind)" "$mrps" "$mp50" "$mp99" "-"
    printf '%-34s %10s %9s %9s %12s\n' "through gateway ($kind)" "$grps" "$gp50" "$gp99" "$cpu_us"
    printf '%-34s %10s %9s %9s\n' "gateway added ($kind)" "" "$(python3 -c "print(f'{$gp50-$mp50:.3f}')")" "$(python3 -c "print(f'{$gp99-$mp99:.3f}')")"
  done
  KEY="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")"
  bogus_keys "$port"
  db_yield
  read -r _ mp50 mp99 _ < <(load "http://127.0.0.1:$mock_port/v1/chat/completions" "$chat" -z "${DURATION}s" -c 32 -q 2000)
  local before; before="$(within_1ms "$port")"
  local waits0; waits0="$(credit_waits "$port")"
  local over0; over0="$(overhead "$port")"
  read -r grps gp50 gp99 _ < <(load "http://127.0.0.1:$port/v1/chat/completions" "$chat" -z "${DURATION}s" -c 32 -q 2000)
  db_restore
  local within p50b p99b; read -r within p50b p99b < <(overhead_summary "$over0" "$(overhead "$port")")
  local own; own="$(python3 -c "b,t='$before'.split(); a,u='$(within_1ms "$port")'.split(); print(f'{(int(a)-int(b))/max(int(u)-int(t),1)*100:.1f}')")"
  printf '%-34s %10s %9s %9s\n' "at 2000 req/s (chat; DB when idle)" "$grps" "$gp50" "$gp99"
  echo "  answered by the gateway within 1 ms (its own histogram, upstream hop included): $own%"
  echo "  requests that waited for a credit top-up from the database: $(( $(credit_waits "$port") - waits0 ))"
  echo "  gateway overhead (its own histogram, upstream wait excluded): $within% within 1 ms; p50 <= $p50b ms, p99 <= $p99b ms"
  printf '%-34s %10s %9s %9s\n' "gateway added at 2000 req/s" "" "$(python3 -c "print(f'{$gp50-$mp50:.3f}')")" "$(python3 -c "print(f'{$gp99-$mp99:.3f}')")"
  local slow='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"stream":true,"mock":{"chunks":20,"chunk_delay_ms":100}}'
  # RSS at 1,000 concurrent streams: VmRSS sampled through that run (the process-lifetime
  # VmHWM also counts the earlier full-speed runs).
  ( peak=0; while r="$(rss_kb "$gw")" && [ -n "$r" ]; do
      [ "$r" -gt "$peak" ] && peak="$r" && echo "$peak" >"$work/rss-$name"; sleep 0.05; done ) &
  local sampler=$!
  read -r srps _ _ sok < <(load "http://127.0.0.1:$port/v1/chat/completions" "$slow" -z "${DURATION}s" -c 1000)
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  echo "1000 concurrent 2-second streams: $srps streams/s completed ($sok ok)"
  echo "gateway RSS: peak $(( $(cat "$work/rss-$name") / 1024 )) MB during the 1000 streams; process-lifetime VmHWM $(( $(hwm_kb "$gw") / 1024 )) MB"
  echo "  at rest after start: $at_rest; after the streams: $(rss_parts "$gw")"
  # Memory soak: a steady 600 req/s (usage batches of every size), RSS sampled every 10 s. A
  # statement cache that grows with each new batch size, or any other leak, shows as a climb.
  local series=""
  load "http://127.0.0.1:$port/v1/chat/completions" "$chat" -z "${SOAK}s" -c 16 -q 600 >"$work/soak-$name" &
  local soak=$!
  for _ in $(seq 1 $(( SOAK / 10 ))); do sleep 10; series="$series $(( $(rss_kb "$gw") / 1024 ))"; done
  wait "$soak" || true
  read -r sorps _ _ sook <"$work/soak-$name"
  echo "memory soak, $SOAK s at $sorps req/s ($sook ok): RSS MB every 10 s:$series"
  reads "$name" "$db_url" "$port" "$uid" "$key_id"
  kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
}

# Usage reads over a large history: $READ_ROWS usage rows (and their hourly aggregates, as the
# gateway keeps them) spread over the 30 days before the run, seeded straight into the database;
# then the time of /api/logs (a page and its total, with and without filters) and of a 30-day
# usage read, as the client sees it on this host (median and slowest of 20 each).
READ_ROWS="${BENCH_READ_ROWS:-1000000}"
reads() {
  local name="$1" db_url="$2" port="$3" uid="$4" key_id="$5"
  local now_ms; now_ms="$(( $(date +%s) * 1000 ))"
  local step=$(( 30 * 86400000 / READ_ROWS ))
  local t0; t0="$(date +%s.%N)"
  if [ "$name" = sqlite ]; then
    python3 - "${db_url#sqlite://}" "$READ_ROWS" "$uid" "$key_id" "$now_ms" "$step" <<'PY'
import sqlite3, sys
path, n, uid, key, now, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
db = sqlite3.connect(path, timeout=30)
db.execute("PRAGMA busy_timeout = 30000")
models = ["gpt-4o-mini", "gpt-4o", "embed-small", "o3-mini"]
def rows():
    for i in range(n):
        t = now - 3_600_000 - i * step
        yield (f"seed-{i}", uid, key, "sk-seed", models[i % 4], models[i % 4], 1, 1, i % 3 == 0,
               20 + i % 50, 100 + i % 200, 0, 150 + i % 900, 1, "upstream", 500 if i % 50 == 0 else 200, t)
with db:
    db.executemany("INSERT INTO usage_logs (request_id, user_id, key_id, key_prefix, model, served_model, channel_id, "
                   "attempts, stream, prompt_tokens, completion_tokens, cached_tokens, cost, price_version, usage_source, "
                   "status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
    db.execute("INSERT INTO usage_hourly (user_id, hour, key_id, model, requests, failures, prompt_tokens, "
               "completion_tokens, cached_tokens, cost) SELECT user_id, created_at - created_at % 3600000, COALESCE(key_id, 0), model, "
               "COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(completion_tokens), "
               "SUM(cached_tokens), SUM(cost) FROM usage_logs WHERE request_id LIKE 'seed-%' "
               "GROUP BY 1, 2, 3, 4 ON CONFLICT (user_id, hour, key_id, model) DO UPDATE SET "
               "requests = requests + excluded.requests, failures = failures + excluded.failures, "
               "prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens, "
               "cached_tokens = cached_tokens + excluded.cached_tokens, cost = cost + excluded.cost")
db.execute("ANALYZE")
PY
  elif [ "$name" = mysql ]; then
    python3 - "$READ_ROWS" "$uid" "$key_id" "$now_ms" "$step" <<'PY' | mariadb -h 127.0.0.1 -u root "${db_url##*/}" >/dev/null
import sys
n, uid, key, now, step = (int(a) for a in sys.argv[1:6])
models = ["gpt-4o-mini", "gpt-4o", "embed-small", "o3-mini"]
cols = ("request_id, user_id, key_id, key_prefix, model, served_model, channel_id, attempts, stream, prompt_tokens, "
        "completion_tokens, cached_tokens, cost, price_version, usage_source, status, created_at")
for start in range(0, n, 2000):
    vals = []
    for i in range(start, min(n, start + 2000)):
        m = models[i % 4]
        vals.append(f"('seed-{i}',{uid},{key},'sk-seed','{m}','{m}',1,1,{int(i % 3 == 0)},{20 + i % 50},"
                    f"{100 + i % 200},0,{150 + i % 900},1,'upstream',{500 if i % 50 == 0 else 200},{now - 3_600_000 - i * step})")
    print(f"INSERT INTO usage_logs ({cols}) VALUES {','.join(vals)};")
print("""INSERT INTO usage_hourly (user_id, hour, key_id, model, requests, failures, prompt_tokens, completion_tokens,
  cached_tokens, cost)
SELECT user_id, created_at - created_at % 3600000, COALESCE(key_id, 0), model, COUNT(*),
  SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cost)
FROM usage_logs WHERE request_id LIKE 'seed-%' GROUP BY 1, 2, 3, 4
ON DUPLICATE KEY UPDATE requests = requests + VALUES(requests), failures = failures + VALUES(failures),
  prompt_tokens = prompt_tokens + VALUES(prompt_tokens), completion_tokens = completion_tokens + VALUES(completion_tokens),
  cached_tokens = cached_tokens + VALUES(cached_tokens), cost = cost + VALUES(cost);
ANALYZE TABLE usage_logs, usage_hourly;""")
PY
  else
    psql "$db_url" -q >/dev/null <<SQL
INSERT INTO usage_logs (request_id, user_id, key_id, key_prefix, model, served_model, channel_id, attempts, stream,
  prompt_tokens, completion_tokens, cached_tokens, cost, price_version, usage_source, status, created_at)
SELECT 'seed-' || i, $uid, $key_id, 'sk-seed', (ARRAY['gpt-4o-mini','gpt-4o','embed-small','o3-mini'])[i % 4 + 1],
  (ARRAY['gpt-4o-mini','gpt-4o','embed-small','o3-mini'])[i % 4 + 1], 1, 1, (i % 3 = 0)::int, 20 + i % 50, 100 + i % 200, 0,
  150 + i % 900, 1, 'upstream', CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, $now_ms - 3600000 - i::bigint * $step
FROM generate_series(0, $READ_ROWS - 1) AS i;
INSERT INTO usage_hourly (user_id, hour, key_id, model, requests, failures, prompt_tokens, completion_tokens,
  cached_tokens, cost)
SELECT user_id, created_at - created_at % 3600000, COALESCE(key_id, 0), model, COUNT(*),
  SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cost)
FROM usage_logs WHERE request_id LIKE 'seed-%' GROUP BY 1, 2, 3, 4
ON CONFLICT (user_id, hour, key_id, model) DO UPDATE SET requests = usage_hourly.requests + excluded.requests,
  failures = usage_hourly.failures + excluded.failures, prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens,
  completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens,
  cached_tokens = usage_hourly.cached_tokens + excluded.cached_tokens, cost = usage_hourly.cost + excluded.cost;
ANALYZE;
SQL
  fi
  local t1; t1="$(date +%s.%N)"
  local total; total="$(curl -fsS -H "authorization: Bearer $KEY" "http://127.0.0.1:$port/api/logs?page_size=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["total"])')"
  echo "reads over $total usage rows (seeded $READ_ROWS in $(python3 -c "print(f'{$t1-$t0:.0f}')") s):"
  local from=$(( now_ms / 1000 - 30 * 86400 ))
  local start; start="$(date -u -d @$(( now_ms / 1000 - 30 * 86400 )) +%F)"
  local end; end="$(date -u -d @$(( now_ms / 1000 + 86400 )) +%F)"
  for q in "/api/logs?page=1&page_size=100" \
           "/api/logs?page=50&page_size=100" \
           "/api/logs?page=1&page_size=100&model=gpt-4o&from=$from" \
           "/api/logs?page=1&page_size=100&status=error&from=$from" \
           "/api/logs?page=1&page_size=100&key_id=$key_id&from=$from" \
           "/api/logs?page=20&page_size=100&model=gpt-4o-mini&status=error&from=$from" \
           "/v1/dashboard/billing/usage?start_date=$start&end_date=$end" \
           "/v1/dashboard/billing/subscription?start_date=$start&end_date=$end"; do
    local times=()
    for _ in $(seq 1 20); do
      times+=("$(curl -fsS -o /dev/null -w '%{time_total}' -H "authorization: Bearer $KEY" "http://127.0.0.1:$port$q")")
    done
    python3 - "$q" "${times[@]}" <<'PY'
import sys
q, t = sys.argv[1], sorted(float(x) * 1000 for x in sys.argv[2:])
print(f"  {q.split('?')[0]:38} median {t[len(t) // 2]:7.2f} ms   slowest {t[-1]:7.2f} ms   ({q.split('?')[1][:60]})")
PY
  done
  # The console over the same history, signed in as its user: the whole server-rendered page
  # (its data read on the server), and the CSV export of every row.
  local jar="$work/cookies-$name"
  curl -fsS -c "$jar" -o /dev/null -d "username=bench&password=bench-password" "http://127.0.0.1:$port/_sfn/login"
  for q in "/" "/logs" "/logs?status=error" "/logs?model=gpt-4o&key_id=$key_id"; do
    local times=()
    for _ in $(seq 1 20); do
      times+=("$(curl -fsS -o /dev/null -w '%{time_total}' -b "$jar" "http://127.0.0.1:$port$q")")
    done
    python3 - "$q" "${times[@]}" <<'PY'
import sys
q, t = sys.argv[1], sorted(float(x) * 1000 for x in sys.argv[2:])
path, _, query = q.partition('?')
print(f"  page {path:33} median {t[len(t) // 2]:7.2f} ms   slowest {t[-1]:7.2f} ms   ({query[:60]})")
PY
  done
  local e0; e0="$(date +%s.%N)"
  local lines; lines="$(curl -fsS -b "$jar" "http://127.0.0.1:$port/api/me/logs.csv" | wc -l)"
  local e1; e1="$(date +%s.%N)"
  python3 -c "print(f'  export /api/me/logs.csv: {$lines - 1} rows in {$e1 - $e0:.1f} s ({($lines - 1) / ($e1 - $e0):,.0f} rows/s)')"
}

# Under the chat and the stream load, one flamegraph each: the profile is taken through the
# admin API while the load runs, a second after it starts.
profile_runs() {
  local port="$1" token="$2" chat="$3" stream="$4"
  mkdir -p "$PROFILE_DIR"
  local plain="$KEY"
  for kind in chat stream limited; do
    local body; [ "$kind" = stream ] && body="$stream" || body="$chat"
    # "limited": the key with requests and tokens per minute (run_backend's, seen from here).
    [ "$kind" = limited ] && KEY="$limited_key" || KEY="$plain"
    load "http://127.0.0.1:$port/v1/chat/completions" "$body" -z 2s -c "$CONNS" >/dev/null   # warm-up
    load "http://127.0.0.1:$port/v1/chat/completions" "$body" -z "$(( DURATION + 2 ))s" -c "$CONNS" >"$work/profile-load" &
    local l=$!
    sleep 1
    curl -fsS -H "authorization: Bearer $token" -o "$PROFILE_DIR/$kind.svg" \
      "http://127.0.0.1:$port/api/admin/profile?seconds=$DURATION&frequency=499"
    wait "$l" || true
    read -r rps _ _ ok <"$work/profile-load"
    echo "profile ($kind): $PROFILE_DIR/$kind.svg, $DURATION s at $rps req/s ($ok ok)"
  done
}

run_backend sqlite "sqlite://$work/bench.db" ""
[ -n "$PROFILE_DIR" ] && exit 0
pg_db="tg_bench_$$"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $pg_db" >/dev/null
run_backend postgres "postgres://postgres@127.0.0.1:5432/$pg_db" "redis://127.0.0.1:6379"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
my_db="tg_bench_$$"
mariadb -h 127.0.0.1 -u root -e "CREATE DATABASE $my_db"
run_backend mysql "mysql://root@127.0.0.1:3306/$my_db" "redis://127.0.0.1:6379"
mariadb -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $my_db"
