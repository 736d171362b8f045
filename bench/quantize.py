#!/usr/bin/env python3
"""What int8 quantisation would give the judges (issue 22): each MiniFASNet quantised with
per-channel int8 weights and int8 activations (ONNX Runtime's static QDQ quantiser),
calibrated on face crops of the domain set, then compared with the float model on the dev
set's crops (the reference pipeline's detector and crop recipe, so the models see exactly
what they see in production): score differences, decisions that flip, and the time of one
run on one thread. The dev set is never used for calibration.

    target/refpeer-venv/bin/pip install onnx     # the quantiser needs it
    target/refpeer-venv/bin/python bench/quantize.py ../shared [--calibration 300]

Prints a report; the quantised files go to target/quantized/ (never into the repository).
"""
import argparse, csv, os, random, statistics, sys, time

import cv2
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

JUDGES = [("minifasnet_v2_80x80_s2.7.onnx", 2.7), ("minifasnet_v1se_80x80_s4.0.onnx", 4.0)]


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def live(sess, x):
    z = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
    e = np.exp(z - z.max())
    return float(e[1] / e.sum())


class Crops(CalibrationDataReader):
    """Domain-set face crops resized to the model's input, as the calibration data."""

    def __init__(self, shared, name, n, seed):
        rows = list(csv.DictReader(open(f"{shared}/data/domain/manifest.csv")))
        random.Random(seed).shuffle(rows)
        self.items = []
        for r in rows[:n]:
            img = cv2.imread(f"{shared}/data/domain/{r['file']}", cv2.IMREAD_COLOR)
            if img is not None:
                x = cv2.resize(img, (80, 80)).transpose(2, 0, 1)[None].astype(np.float32)
                self.items.append({name: x})
        self.it = iter(self.items)

    def get_next(self):
        return next(self.it, None)


def dev_crops(shared):
    """(file, label, [crop per judge]) for every dev image the reference judges."""
    sys.path.insert(0, f"{shared}/bench")
    import refpeer  # the reference's own detector and crop recipe

    det = cv2.FaceDetectorYN.create(f"{shared}/models/yunet_2023mar.onnx", "", (320, 320), 0.6, 0.3, 50)
    out = []
    for r in csv.DictReader(open(f"{shared}/data/dev/manifest.csv")):
        if r["label"] not in ("live", "spoof"):
            continue
        img = cv2.imread(f"{shared}/data/dev/{r['file']}", cv2.IMREAD_COLOR)
        if img is None:
            continue
        H, W = img.shape[:2]
        s = min(1.0, 640.0 / max(H, W))
        small = cv2.resize(img, (max(1, int(W * s)), max(1, int(H * s))), interpolation=cv2.INTER_AREA) if s < 1 else img
        det.setInputSize((small.shape[1], small.shape[0]))
        _, faces = det.detect(small)
        if faces is None or len(faces) == 0:
            continue
        f = max(faces, key=lambda f: f[2] * f[3])
        box = [float(v) / s for v in f[:4]]
        crops = [refpeer.silent_face_crop(img, box, sc).transpose(2, 0, 1)[None].astype(np.float32)
                 for _, sc in JUDGES]
        out.append((r["file"], r["label"], crops))
    return out


def per_run_ms(sess, x, runs=300):
    for _ in range(20):
        live(sess, x)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        live(sess, x)
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared")
    ap.add_argument("--calibration", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--activations", choices=["u8", "s8"], default="u8",
                    help="activation type (u8: ONNX Runtime's x86 fast path, U8S8)")
    a = ap.parse_args()
    activations = QuantType.QUInt8 if a.activations == "u8" else QuantType.QInt8
    os.makedirs("target/quantized", exist_ok=True)
    float_s, int8_s = [], []
    for name, _ in JUDGES:
        src = f"{a.shared}/models/{name}"
        dst = f"target/quantized/{name.replace('.onnx', '.int8.onnx')}"
        input_name = session(src).get_inputs()[0].name
        quantize_static(src, dst, Crops(a.shared, input_name, a.calibration, a.seed),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=activations, weight_type=QuantType.QInt8)
        float_s.append(session(src))
        int8_s.append(session(dst))
    rows = dev_crops(a.shared)
    print(f"dev images judged: {len(rows)}; calibration: {a.calibration} domain crops (seed {a.seed}); "
          f"activations {a.activations}, weights s8 per channel")
    fused_d, flips = [], 0
    for j, (name, _) in enumerate(JUDGES):
        d = [abs(live(float_s[j], c[j]) - live(int8_s[j], c[j])) for _, _, c in rows]
        print(f"{name}: |int8 - float| live score: median {statistics.median(d):.4f}, "
              f"max {max(d):.4f}, over 0.01: {sum(v > 0.01 for v in d)}/{len(d)}")
    for _, _, c in rows:
        f = sum(live(float_s[j], c[j]) for j in range(len(JUDGES))) / len(JUDGES)
        q = sum(live(int8_s[j], c[j]) for j in range(len(JUDGES))) / len(JUDGES)
        fused_d.append(abs(f - q))
        flips += (f >= a.threshold) != (q >= a.threshold)
    print(f"fused score: median |d| {statistics.median(fused_d):.4f}, max {max(fused_d):.4f}, "
          f"over 0.01: {sum(v > 0.01 for v in fused_d)}/{len(fused_d)}; decisions flipped at "
          f"{a.threshold}: {flips}")
    x = rows[0][2]
    for j, (name, _) in enumerate(JUDGES):
        print(f"{name}: one run, 1 thread, median of 300: float {per_run_ms(float_s[j], x[j]):.2f} ms, "
              f"int8 {per_run_ms(int8_s[j], x[j]):.2f} ms (ONNX Runtime {ort.__version__})")


if __name__ == "__main__":
    main()
