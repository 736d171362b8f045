#!/usr/bin/env python3
"""Errors by capture type, and the images two systems score most differently (docs/EVALUATION.md).

usage: capture_breakdown.py MANIFEST_CSV THRESHOLD NAME=SCORES_CSV [NAME=SCORES_CSV]

SCORES_CSV is in the `facelive eval --scores` format (facelive's scores.csv, or the
reference's reference_scores.csv). Prints, per system and per `capture` value of the
manifest, bona fide images rejected (a score below THRESHOLD or none) and attacks accepted;
with two systems, the bona fide images whose live scores differ by more than 0.02.
Python standard library only.
"""
import csv, sys

manifest, threshold, systems = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
capture = {r["file"]: r["capture"] for r in csv.DictReader(open(manifest))}
scores = {}
for arg in systems:
    name, path = arg.split("=", 1)
    scores[name] = {r["file"]: r for r in csv.DictReader(open(path)) if r["label"] in ("live", "spoof")}


def score(r):
    return float(r["live_score"]) if r["status"] == "ok" and r["live_score"] else None


for name, rows in scores.items():
    for cap in sorted({capture[f] for f in rows}):
        live = [r for f, r in rows.items() if capture[f] == cap and r["label"] == "live"]
        spoof = [r for f, r in rows.items() if capture[f] == cap and r["label"] == "spoof"]
        rejected = sum(1 for r in live if score(r) is None or score(r) < threshold)
        accepted = sum(1 for r in spoof if score(r) is not None and score(r) >= threshold)
        print(f"{name} {cap}: bona fide rejected {rejected}/{len(live)}, attacks accepted {accepted}/{len(spoof)}")
if len(scores) == 2:
    (a, ra), (b, rb) = scores.items()
    print(f"bona fide images whose live score differs by more than 0.02 ({a} vs {b}):")
    for f, r in ra.items():
        x, y = score(r), score(rb[f])
        if r["label"] == "live" and x is not None and y is not None and abs(x - y) > 0.02:
            print(f"  {f}: {x:.3f} vs {y:.3f}")
