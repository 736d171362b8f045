#!/usr/bin/env python3
"""Two `facelive check --json` runs over the same images, compared image by image: face
counts, the judged face's box and its fused score (docs/BENCHMARKS.md, two-pass detection).

usage: compare_detect.py A.jsonl B.jsonl

where each file is the output of
  facelive --detect-mode MODE check --json --threads 1 IMAGES... > MODE.jsonl
Python standard library only.
"""
import json, sys


def records(path):
    with open(path) as f:
        return {r["file"]: r for r in map(json.loads, f)}


def corner_shift(a, b):
    """Largest move of any box edge, in pixels."""
    ax, ay, aw, ah = (a["box"][k] for k in ("x", "y", "width", "height"))
    bx, by, bw, bh = (b["box"][k] for k in ("x", "y", "width", "height"))
    return max(abs(ax - bx), abs(ay - by), abs(ax + aw - bx - bw), abs(ay + ah - by - bh))


a, b = records(sys.argv[1]), records(sys.argv[2])
counts, outcomes, moves, shifts = [], [], [], []
for f in sorted(a.keys() & b.keys()):
    ra, rb = a[f], b[f]
    if ra["faces"] != rb["faces"]:
        counts.append(f"{f}: {ra['faces']} vs {rb['faces']} faces")
    if ra["outcome"] != rb["outcome"]:
        outcomes.append(f"{f}: {ra['outcome']} vs {rb['outcome']}")
    if ra["live_score"] is not None and rb["live_score"] is not None:
        d = abs(ra["live_score"] - rb["live_score"])
        moves.append((d, f, ra["live_score"], rb["live_score"]))
    if ra["face"] and rb["face"]:
        shifts.append(corner_shift(ra["face"], rb["face"]))
moves.sort(reverse=True)
print(f"{len(a.keys() & b.keys())} images in both")
print(f"face counts differ on {len(counts)}: " + "; ".join(counts))
print(f"outcomes differ on {len(outcomes)}: " + "; ".join(outcomes))
over = [m for m in moves if m[0] > 0.02]
print(f"fused score moves over 0.02 on {len(over)} of {len(moves)} judged in both; largest: "
      + "; ".join(f"{f} {x:.3f} vs {y:.3f}" for _, f, x, y in moves[:5]))
shifts.sort()
if shifts:
    print(f"judged box edge shift px: median {shifts[len(shifts) // 2]:.1f}, max {shifts[-1]:.1f}")
