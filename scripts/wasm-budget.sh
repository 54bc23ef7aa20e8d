#!/usr/bin/env bash
# Recompresses the site's files at the highest gzip level (cargo-leptos writes a faster one),
# then measures the console's wasm: the module every page loads first (checked against
# WASM_BUDGET, 350 KB gzip -9), and for each page what its first visit fetches in all: that
# module, the page's own chunk and the shared chunks it needs (the split manifest says which),
# each compressed on its own as the server sends them. Exit 1 when the first-load module is
# past the budget.
set -euo pipefail
site="${1:-target/site}"
budget="${WASM_BUDGET:-350000}"
find "$site" -type f ! -name '*.gz' ! -name '*.br' ! -name 'hash.txt' -print0 |
  while IFS= read -r -d '' f; do gzip -9 -n -c "$f" >"$f.gz"; done
python3 - "$site/pkg" "$budget" <<'PY'
import glob, json, os, sys
pkg, budget = sys.argv[1], int(sys.argv[2])
def size(path, ext):
    return os.path.getsize(path + ext) if os.path.exists(path + ext) else os.path.getsize(path)
main = glob.glob(os.path.join(pkg, "tollgate.*.wasm"))[0]
main_gz, main_br = size(main, ".gz"), size(main, ".br")
manifests = glob.glob(os.path.join(pkg, "__wasm_split_manifest.*.json"))
pages = []
for key, deps in (json.load(open(manifests[0])) if manifests else {}).items():
    # The manifest lists a page's own chunk among what it fetches: counted once.
    own = glob.glob(os.path.join(pkg, "split_" + key + ".*.wasm"))
    files = {os.path.join(pkg, d + ".wasm") for d in deps} | set(own)
    name = key.strip("_").split("_route_view")[0]
    gz = main_gz + sum(size(f, ".gz") for f in files)
    br = main_br + sum(size(f, ".br") for f in files)
    pages.append((gz, br, name, sum(size(f, ".gz") for f in own), len(files) - len(own)))
pages.sort(reverse=True)
total = sum(size(f, ".gz") for f in glob.glob(os.path.join(pkg, "*.wasm")))
print(f"[wasm] first-load module {main_gz} bytes gzip -9 ({os.path.getsize(main)} raw), budget {budget}; all wasm {total} bytes")
print("[wasm] a page's first visit (module + its chunk + shared chunks), gzip -9 / brotli:")
for gz, br, name, own, deps in pages:
    print(f"[wasm]   {name:<16} {gz:>7} / {br:>7}  (own chunk {own}, {deps} shared chunks)")
if main_gz > budget:
    print("[wasm] the first-load module is over its budget", file=sys.stderr)
    sys.exit(1)
PY
