#!/usr/bin/env python3
"""Mean time of each pipeline stage over a set (docs/BENCHMARKS.md).

usage: facelive check --json --threads 1 IMAGES... | stage_times.py

Reads the per-stage timings every judged image reports and prints their means in ms.
Python standard library only.
"""
import json, sys

sums, n = {}, 0
for line in sys.stdin:
    t = (json.loads(line).get("verdict") or {}).get("timings") or {}
    if t:
        n += 1
        for k, v in t.items():
            sums[k] = sums.get(k, 0.0) + v
print(f"{n} images: " + ", ".join(f"{k.removesuffix('_ms')} {v / n:.1f} ms" for k, v in sums.items()))
