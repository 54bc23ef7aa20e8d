#!/usr/bin/env bash
# Recompresses the site's files at the highest gzip level (cargo-leptos writes a faster one),
# then checks the console's wasm against its budget: the module every page loads first, gzip -9,
# at most WASM_BUDGET bytes (350 KB). Prints the sizes of that module, of each page's chunk,
# and the total. Exit 1 past the budget.
set -euo pipefail
site="${1:-target/site}"
budget="${WASM_BUDGET:-350000}"
find "$site" -type f ! -name '*.gz' ! -name '*.br' ! -name 'hash.txt' -print0 |
  while IFS= read -r -d '' f; do gzip -9 -n -c "$f" >"$f.gz"; done
main="$(ls "$site"/pkg/tollgate.*.wasm)"
gz() { stat -c %s "$1.gz"; }
main_gz="$(gz "$main")"
total=0
for f in "$site"/pkg/*.wasm; do total=$(( total + $(gz "$f") )); done
largest=0
largest_name=""
for f in "$site"/pkg/split___*.wasm; do
  [ -e "$f" ] || continue
  s="$(gz "$f")"
  if [ "$s" -gt "$largest" ]; then largest="$s"; largest_name="$(basename "$f" | sed 's/^split___//; s/_route_view.*//')"; fi
done
printf '[wasm] first load %s bytes gzip -9 (%s raw), budget %s; largest page chunk %s (%s bytes); all wasm %s bytes\n' \
  "$main_gz" "$(stat -c %s "$main")" "$budget" "${largest_name:-none}" "$largest" "$total"
if [ "$main_gz" -gt "$budget" ]; then
  echo "[wasm] the first-load module is over its budget" >&2
  exit 1
fi
