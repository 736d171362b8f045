#!/usr/bin/env python3
"""Dependencies a crate declares and never names: what `cargo machete` checks, from the
source text alone (no build, nothing to install).

usage: scripts/unused-deps.py [crates/router ...]   (default: every crate under crates/ and fuzz/)

Names come from `cargo metadata` (a dependency's rename, or its package's library name:
`kamadak-exif` is `exif`). A `[dependencies]` entry is used when the crate's sources name it
(`name::`, `use name`, `extern crate name`, a derive or attribute path); a
`[dev-dependencies]` entry when anything under src/, tests/, benches/ or examples/ does.
Target-specific tables count as their kind. A dependency named only through another's
feature list, or kept on purpose, is listed under `[package.metadata.unused-deps] keep`
with the reason beside it. Exits 1 and prints each unused one, or 0 with the count checked.
"""
import json, pathlib, re, subprocess, sys, tomllib

KINDS = {"dependencies": ("src",), "dev-dependencies": ("src", "tests", "benches", "examples")}


def tables(manifest):
    """(kind, deps) for the plain and the target-specific tables."""
    for kind in KINDS:
        yield kind, manifest.get(kind, {})
        for target in manifest.get("target", {}).values():
            yield kind, target.get(kind, {})


def lib_names(manifest_path):
    """Package name -> its library's name in code, for every package the build can see."""
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--locked", "--format-version", "1", "--manifest-path", str(manifest_path)],
        check=True, capture_output=True, text=True).stdout)
    names = {}
    for p in meta["packages"]:
        for t in p["targets"]:
            if set(t["kind"]) & {"lib", "rlib", "proc-macro"}:
                names[p["name"]] = t["name"].replace("-", "_")
    return names


def crate_name(name, spec, libs):
    """The identifier code names a dependency by."""
    if isinstance(spec, dict) and "package" in spec:
        return name.replace("-", "_")
    return libs.get(name, name.replace("-", "_"))


def text_under(root, dirs):
    parts = []
    for d in dirs:
        for f in (root / d).rglob("*.rs") if (root / d).is_dir() else []:
            parts.append(f.read_text())
    build = root / "build.rs"
    if build.exists():
        parts.append(build.read_text())
    return "\n".join(parts)


def check(root, libs):
    manifest = tomllib.loads((root / "Cargo.toml").read_text())
    keep = set(manifest.get("package", {}).get("metadata", {}).get("unused-deps", {}).get("keep", []))
    unused, checked = [], 0
    for kind, deps in tables(manifest):
        text = text_under(root, KINDS[kind])
        for name, spec in deps.items():
            ident = crate_name(name, spec, libs)
            checked += 1
            if name in keep:
                continue
            if not re.search(rf"(?<![A-Za-z0-9_]){ident}(::|\s*;|\s+as\b|\s*\{{|!)", text):
                unused.append(f"{root}: {kind} {name}")
    return unused, checked


def main(args):
    roots = [pathlib.Path(a) for a in args] or sorted(
        p.parent for p in list(pathlib.Path("crates").glob("*/Cargo.toml")) + [pathlib.Path("fuzz/Cargo.toml")]
    )
    libs = lib_names("Cargo.toml")
    libs.update(lib_names("fuzz/Cargo.toml"))
    unused, checked = [], 0
    for root in roots:
        u, c = check(root, libs)
        unused += u
        checked += c
    for u in unused:
        print(u)
    if unused:
        return 1
    print(f"{checked} dependencies in {len(roots)} crates, each named by its crate")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
