#!/usr/bin/env python3
"""Range of each quality measure over a labelled set (docs/QUALITY.md).

usage: facelive check --json IMAGES... | quality_stats.py MANIFEST_CSV

Prints, per check and per label, the minimum and maximum measured value, and lists the
images that came back retry or error. Python standard library only.
"""
import csv, json, os, sys

root = os.path.dirname(os.path.abspath(sys.argv[1]))
label = {os.path.normpath(os.path.join(root, r["file"])): r["label"] for r in csv.DictReader(open(sys.argv[1]))}
ranges, retries = {}, []
for line in sys.stdin:
    o = json.loads(line)
    lab = label[os.path.normpath(os.path.abspath(o["file"]))]
    if o["outcome"] in ("retry", "error"):
        retries.append(f'{o["file"]}: {o["outcome"]} {o["retry_reason"] or o["error"]["code"]}')
    for c in (o.get("verdict") or {}).get("quality", []):
        lo, hi = ranges.get((c["name"], lab), (c["value"], c["value"]))
        ranges[(c["name"], lab)] = (min(lo, c["value"]), max(hi, c["value"]))
for (name, lab), (lo, hi) in sorted(ranges.items()):
    print(f"{name:<13} {lab:<6} {lo:10.2f} {hi:10.2f}")
print("\n".join(["", "not judged:"] + retries))
