#!/usr/bin/env python3
"""What else the MiniFASNet pair could be asked, on the dev set: crop and fusion variants
scored with the reference pipeline's own face boxes, in the terms of issue 4's target
(BPCER at the reference's APCER, a bona fide image without a face counted as rejected).

Each variant changes one thing against the Silent-Face recipe that facelive implements:
  recipe       the recipe (scale clipped to the image, both models' softmax averaged)
  pad-*        pad the image first (replicate / reflect / black) so the crop always gets its
               full 2.7x / 4.0x context, as the models were trained with
  flip         average with the horizontally mirrored crop (test-time augmentation)
  jitter       average over the box and four boxes shifted by 4% of its size (scores move
               a lot with the box; does averaging steady them?)
  v2, v1se     one model alone
  geo/min/max  other ways to fuse the two models' live probabilities

usage (the venv is bench/run.sh's):
  target/refpeer-venv/bin/python bench/score_variants.py [SHARED_DIR]
"""
import csv, sys
import numpy as np, cv2, onnxruntime as ort

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
models, dev = f"{shared}/models", f"{shared}/data/dev"
so = ort.SessionOptions()
so.intra_op_num_threads = 2
pair = [(ort.InferenceSession(f"{models}/minifasnet_v2_80x80_s2.7.onnx", so), 2.7),
        (ort.InferenceSession(f"{models}/minifasnet_v1se_80x80_s4.0.onnx", so), 4.0)]


def live_prob(sess, crop):
    z = sess.run(None, {"input": np.ascontiguousarray(crop.transpose(2, 0, 1))[None].astype(np.float32)})[0][0]
    e = np.exp(z - z.max())
    return float(e[1] / e.sum())


def recipe_crop(img, box, scale):
    """The Silent-Face crop (MANIFEST.md): scale clipped to the image, shifted inside it."""
    H, W = img.shape[:2]
    x, y, w, h = box
    scale = min((H - 1) / h, (W - 1) / w, scale)
    cx, cy, nw, nh = x + w / 2, y + h / 2, w * scale, h * scale
    l, t, r, b = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if l < 0: r -= l; l = 0
    if t < 0: b -= t; t = 0
    if r > W - 1: l -= r - W + 1; r = W - 1
    if b > H - 1: t -= b - H + 1; b = H - 1
    return cv2.resize(img[int(t):int(b) + 1, int(l):int(r) + 1], (80, 80))


def per_model(img, box, border=None, flip=False):
    """Live probability of each model (list of lists when flipped crops are added)."""
    out = []
    for sess, scale in pair:
        if border is None:
            crop = recipe_crop(img, box, scale)
        else:
            p = int(max(box[2], box[3]) * scale)
            padded = cv2.copyMakeBorder(img, p, p, p, p, border, value=(0, 0, 0))
            crop = recipe_crop(padded, (box[0] + p, box[1] + p, box[2], box[3]), scale)
        probs = [live_prob(sess, crop)] + ([live_prob(sess, crop[:, ::-1])] if flip else [])
        out.append(float(np.mean(probs)))
    return out


rows = [r for r in csv.DictReader(open(f"{dev}/reference_scores.csv")) if r["label"] in ("live", "spoof")]
capture = {r["file"]: r["capture"] for r in csv.DictReader(open(f"{dev}/manifest.csv"))}
variants = {}
for r in rows:
    if r["status"] != "ok":
        continue  # counted below: a bona fide image without a face is rejected by every variant
    img = cv2.imread(f"{dev}/{r['file']}")
    box = [float(r[k]) for k in "xywh"]
    base = per_model(img, box)
    scores = {
        "recipe": np.mean(base),
        "pad-replicate": np.mean(per_model(img, box, cv2.BORDER_REPLICATE)),
        "pad-reflect": np.mean(per_model(img, box, cv2.BORDER_REFLECT_101)),
        "pad-black": np.mean(per_model(img, box, cv2.BORDER_CONSTANT)),
        "flip": np.mean(per_model(img, box, flip=True)),
        "jitter": np.mean([np.mean(per_model(img, [box[0] + dx * box[2], box[1] + dy * box[3], box[2], box[3]]))
                           for dx, dy in [(0, 0), (-0.04, 0), (0.04, 0), (0, -0.04), (0, 0.04)]]),
        "v2": base[0],
        "v1se": base[1],
        "geo": float(np.sqrt(base[0] * base[1])),
        "min": min(base),
        "max": max(base),
    }
    for name, s in scores.items():
        variants.setdefault(name, []).append((r["file"], r["label"], r["attack_type"], float(s)))

bona_fide = sum(1 for r in rows if r["label"] == "live")
species = sorted({r["attack_type"] for r in rows if r["label"] == "spoof"})
crop_live = sum(1 for r in rows if r["label"] == "live" and capture[r["file"]] == "face_crop")


def rates(scored, t):
    live = [s for f, l, _, s in scored if l == "live"]
    bpcer = (sum(s < t for s in live) + bona_fide - len(live)) / bona_fide
    apcer = {sp: sum(s >= t for _, l, a, s in scored if a == sp) / sum(1 for r in rows if r["attack_type"] == sp)
             for sp in species}
    crop_rejected = sum(s < t for f, l, _, s in scored if l == "live" and capture[f] == "face_crop")
    return bpcer, apcer, crop_rejected


def lowest_threshold(scored, worst_apcer):
    for t in sorted({s for *_, s in scored} | {1.01}):
        if max(rates(scored, t)[1].values()) <= worst_apcer + 1e-12:
            return t


ref_apcer = max(rates(variants["recipe"], 0.5)[1].values())
print(f"dev set: {bona_fide} bona fide ({crop_live} face crops), attacks "
      + ", ".join(f"{sp} {sum(1 for r in rows if r['attack_type'] == sp)}" for sp in species))
print(f"the recipe at 0.5 accepts {ref_apcer:.1%} of the worst species; columns: BPCER at the lowest"
      " threshold with that worst-species APCER, and at APCER <= 1%\n")
print(f"| variant | BPCER @ APCER {ref_apcer:.1%} | threshold | face crops rejected | BPCER @ APCER 1% | threshold |")
print("|---|---|---|---|---|---|")
for name, scored in variants.items():
    t1 = lowest_threshold(scored, ref_apcer)
    t2 = lowest_threshold(scored, 0.01)
    b1, _, crops = rates(scored, t1)
    b2, _, _ = rates(scored, t2)
    print(f"| {name} | {b1:.1%} | {t1:.3f} | {crops}/{crop_live} | {b2:.1%} | {t2:.3f} |")
