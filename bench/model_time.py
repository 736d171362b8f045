#!/usr/bin/env python3
"""Milliseconds per run of one ONNX model in onnxruntime with one thread (docs/BENCHMARKS.md).

usage: model_time.py MODEL.onnx N,C,H,W [--runs 200]
Run it with the peer's interpreter (target/refpeer-venv/bin/python), which has onnxruntime.
"""
import argparse, time
import numpy as np, onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("shape"); ap.add_argument("--runs", type=int, default=200)
a = ap.parse_args()
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
s = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
x = (np.random.default_rng(0).random([int(v) for v in a.shape.split(",")]) * 255).astype(np.float32)
feed = {s.get_inputs()[0].name: x}
for _ in range(20):
    s.run(None, feed)
t = time.perf_counter()
for _ in range(a.runs):
    s.run(None, feed)
print(f"{a.model} {a.shape}: {(time.perf_counter() - t) / a.runs * 1e3:.2f} ms per run (onnxruntime {ort.__version__}, 1 thread)")
