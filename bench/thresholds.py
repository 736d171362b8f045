#!/usr/bin/env python3
"""First operating-point thresholds from a labelled set (docs/THRESHOLDS.md).

usage: thresholds.py MANIFEST_CSV CHECK_JSONL

CHECK_JSONL is `facelive check --json --threshold 0` over the manifest's live and spoof
images. An image that was not judged (retry or error) counts as rejected: a real user turned
away, an attack not accepted. For each target APCER (over all attack presentations), the
threshold is the smallest multiple of 0.05 that meets it. Python standard library only.
"""
import csv, json, os, sys

TARGETS = [("weak", 0.05), ("balanced", 0.025), ("strict", 0.01)]


def main(manifest, jsonl):
    root = os.path.dirname(os.path.abspath(manifest))
    label = {}
    for r in csv.DictReader(open(manifest)):
        label[os.path.normpath(os.path.join(root, r["file"]))] = (r["label"], r["attack_type"])
    live, attacks = [], {}
    for line in open(jsonl):
        o = json.loads(line)
        lab, species = label[os.path.normpath(os.path.abspath(o["file"]))]
        s = o["live_score"]
        if lab == "live":
            live.append(s)
        elif lab == "spoof":
            attacks.setdefault(species, []).append(s)
    every = [s for v in attacks.values() for s in v]

    def rates(t):
        bpcer = sum(1 for s in live if s is None or s < t) / len(live)
        per = {k: sum(1 for s in v if s is not None and s >= t) / len(v) for k, v in attacks.items()}
        overall = sum(1 for s in every if s is not None and s >= t) / len(every)
        return bpcer, overall, per

    print(f"live {len(live)}, attacks {len(every)} " + ", ".join(f"{k} {len(v)}" for k, v in sorted(attacks.items())))
    print("| threshold | BPCER | APCER (all) | " + " | ".join(f"APCER {k}" for k in sorted(attacks)) + " |")
    print("|---|---|---|" + "---|" * len(attacks))
    for i in range(1, 20):
        t = i * 0.05
        b, o, per = rates(t)
        print(f"| {t:.2f} | {b:.3f} | {o:.3f} | " + " | ".join(f"{per[k]:.3f}" for k in sorted(attacks)) + " |")
    print()
    for name, target in TARGETS:
        for i in range(0, 21):
            t = i * 0.05
            b, o, per = rates(t)
            if o <= target:
                worst = max(per.values())
                print(f"{name}: target APCER <= {target:.3f} -> threshold {t:.2f} (APCER {o:.3f}, worst species {worst:.3f}, BPCER {b:.3f})")
                break


if __name__ == "__main__":
    main(*sys.argv[1:3])
