#!/usr/bin/env python3
"""Import cycles among one crate's modules: what `cargo modules dependencies --acyclic`
checks, from the source text alone (no build).

usage: scripts/module-cycles.py crates/router [crates/pipeline ...]

A module is a file under src/ (lib.rs the crate root, mod.rs its folder); module A uses B
when A's code names `crate::B...`, `super::...` (resolved) or a child module `b::...`,
including the paths inside `use` groups. Items re-exported at the crate root (`pub use x::Y` in lib.rs) count as
uses of their module. Exits 1 and prints each strongly connected component of more than
one module, or 0 with the module count.
"""
import pathlib, re, sys


def modules(src):
    """Module path (tuple) -> file."""
    out = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "mod", "main"):
            parts = parts[:-1]
        out[tuple(parts)] = f
    return out


def strip(text):
    # Unit tests (`#[cfg(test)] mod tests`, at a file's end by convention) are a module of
    # their own whose `super` is the file: not the file's imports.
    text = text.split("#[cfg(test)]\nmod tests")[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def paths_in(text):
    """Every path that starts with crate:: or super::, with `use` groups expanded."""
    found = []
    for m in re.finditer(r"\b(crate|super)((?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))*)(::\{)?", text):
        if not m.group(2) and not m.group(3):
            continue  # `pub(crate)`, `pub(super)`: visibility, not a path
        head = [m.group(1)] + [p for p in m.group(2).split("::") if p]
        if m.group(3):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            for part in re.split(r",", re.sub(r"\{[^{}]*\}", "", text[m.end():i - 1])):
                seg = [p for p in part.strip().split("::") if p and p != "self"]
                if seg:
                    found.append(head + seg[:1])
        else:
            found.append(head)
    return found


def resolve(here, path, mods):
    """The module a path names, from module `here`."""
    if path[0] == "crate":
        cur, rest = [], path[1:]
    else:
        cur, rest = list(here), path
        while rest and rest[0] == "super":
            cur, rest = cur[:-1], rest[1:]
    for p in rest:
        if tuple(cur + [p]) in mods:
            cur.append(p)
        else:
            break
    return tuple(cur)


def reexports(root_text, mods):
    """Crate-root names re-exported from a module: `pub use a::b::{X, Y}`."""
    names = {}
    for m in re.finditer(r"pub(?:\(crate\))?\s+use\s+([a-z_][a-z0-9_:]*)::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)\s*;", root_text):
        mod = tuple(p for p in m.group(1).split("::") if p)
        while mod and mod not in mods:
            mod = mod[:-1]
        for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(2)):
            names[n] = mod
    return names


def graph(crate):
    src = pathlib.Path(crate) / "src"
    mods = modules(src)
    root = strip(mods[()].read_text())
    exported = reexports(root, mods)
    edges = {m: set() for m in mods}
    for here, f in mods.items():
        text = strip(f.read_text())
        # Paths relative to here: a child module named directly (`accura::liveness`).
        for child in (m for m in mods if len(m) == len(here) + 1 and m[:len(here)] == here):
            if re.search(r"(?<![:\w])(?:self::)?" + child[-1] + r"::", text):
                edges[here].add(child)
        for p in paths_in(text):
            target = resolve(here, p, mods)
            if target == () and len(p) > 1 and p[0] == "crate" and p[1] in exported:
                target = exported[p[1]]
            # A parent's `mod child;` is no import, but naming a child's items is, and so
            # is a child naming its parent's (`super::X`): both are files leaning on
            # each other. The crate root's re-exports count as their module.
            if target != here:
                edges[here].add(target)
    return mods, edges


def cycles(edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)
    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    bad = 0
    for crate in sys.argv[1:]:
        mods, edges = graph(crate)
        found = cycles(edges)
        name = lambda m: "::".join(m) or "lib"
        if found:
            bad = 1
            for comp in found:
                print(f"{crate}: a cycle among {len(comp)} modules: {', '.join(sorted(map(name, comp)))}")
                for v in sorted(comp):
                    inside = sorted(name(w) for w in edges[v] if w in comp)
                    print(f"    {name(v)} -> {', '.join(inside)}")
        else:
            print(f"{crate}: {len(mods)} modules, no cycle")
    return bad


if __name__ == "__main__":
    sys.exit(main())
