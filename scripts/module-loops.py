#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a loop (the floors of the README's
architecture section): `make lint` runs it on every crate of the workspace.

A module is a file under the crate's `src/` (`a/mod.rs` and `a.rs` are module `a`). Module M
depends on module N when M names a path into N: `crate::n::…` or `super::…` (in a `use` or
inline), a bare `crate::Name` going through the crate root's `pub use` re-exports. A path is
resolved to the deepest module file it names. Paths inside inline `mod … { }` blocks of a
file (its tests) are not counted: they cannot be imported. A module's path to its own
submodules (`mod x;`, `x::…`) is not a dependency either; a child naming its parent is.

    python3 scripts/module-loops.py service app types server
"""
import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super)((?:\s*::\s*(?:super|[A-Za-z_]\w*|\{[^;]*?\}))+)")
ROOT_REEXPORT = re.compile(r"^pub use ((?:crate::|self::)?[\w:]+)::\{?([\w,\s]+)\}?;", re.M)
LINE_COMMENT = re.compile(r"//[^\n]*")


def module_name(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_inline_modules(text: str) -> str:
    """Blanks the bodies of inline `mod name { … }` blocks (brace-matched, strings ignored)."""
    out, i = [], 0
    for m in re.finditer(r"\bmod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out.append(text[i:m.start()])
        i = j
    out.append(text[i:])
    return "".join(out)


def leaves(tail: str) -> list:
    """`::a::{b, c::{d}}` -> [['a','b'], ['a','c','d']] (names only, `self` dropped)."""
    tail = re.sub(r"\s+", "", tail).lstrip(":")
    brace = tail.find("{")
    if brace < 0:
        return [[s for s in tail.split("::") if s and s != "self"]]
    head = [s for s in tail[:brace].split("::") if s]
    inner, depth, part, parts = tail[brace + 1 : tail.rfind("}")], 0, "", []
    for ch in inner + ",":
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
            continue
        depth += (ch == "{") - (ch == "}")
        part += ch
    found = []
    for p in filter(None, parts):
        for rest in leaves("::" + p):
            found.append(head + rest)
    return found


def analyse(crate: Path):
    src = crate / "src"
    files = {module_name(src, f): f for f in sorted(src.rglob("*.rs"))}
    root = files.get(())
    reexports = {}
    if root:
        for base, names in ROOT_REEXPORT.findall(root.read_text(encoding="utf-8")):
            target = tuple(s for s in base.split("::") if s not in ("crate", "self"))
            for name in filter(None, (n.strip() for n in names.split(","))):
                reexports[name] = target
    deps = {m: {} for m in files}
    for mod, file in files.items():
        text = strip_inline_modules(LINE_COMMENT.sub("", file.read_text(encoding="utf-8")))
        for kind, tail in PATH.findall(text):
            for segs in leaves(tail):
                if kind == "super":
                    # `super` in `a/b.rs` (module a::b) is `a`; each further `super` one up.
                    base = list(mod[:-1])
                    while segs and segs[0] == "super":
                        segs, base = segs[1:], base[:-1]
                    path = base + segs
                else:
                    path = segs
                if path and path[0] in reexports and tuple(path[:1]) not in files:
                    path = list(reexports[path[0]]) + path
                target = next(
                    (tuple(path[:k]) for k in range(len(path), 0, -1) if tuple(path[:k]) in files),
                    None,
                )
                # A module's own submodules, itself and the crate root are not dependencies.
                if target is None or target == () or target[: len(mod)] == mod:
                    continue
                deps[mod].setdefault(target, set()).add(path[-1])
    return files, deps


def loops(deps: dict) -> list:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for start in deps:
        if start in index:
            continue
        work = [(start, iter(deps[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(deps.get(nxt, {}))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def main(crates: list) -> int:
    bad = 0
    for crate in crates:
        files, deps = analyse(Path(crate))
        found = loops(deps)
        print(f"{crate}: {len(files)} modules, {len(found)} import loop(s)")
        for comp in found:
            bad += 1
            members = set(comp)
            print("  loop: " + " <-> ".join("::".join(m) or "(root)" for m in comp))
            for m in comp:
                for t, names in sorted(deps[m].items()):
                    if t in members:
                        print(f"    {'::'.join(m)} -> {'::'.join(t)}: {', '.join(sorted(names))}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
