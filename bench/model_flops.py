#!/usr/bin/env python3
"""Multiply-add work of a model's convolutions, by kind (docs/BENCHMARKS.md).

usage: model_flops.py MODEL.onnx (with the peer's venv: target/refpeer-venv/bin/python)

Counts 2 FLOP per multiply-add of every Conv at the shapes ONNX shape inference gives,
split into depthwise, 1x1 (by output positions) and other kernels; prints MFLOP.
"""
import collections, sys

import onnx
from onnx import numpy_helper, shape_inference

model = shape_inference.infer_shapes(onnx.load(sys.argv[1]))
g = model.graph
shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
          for v in list(g.value_info) + list(g.input) + list(g.output)}
weights = {i.name: numpy_helper.to_array(i) for i in g.initializer}
kinds = collections.Counter()
for node in g.node:
    if node.op_type != "Conv":
        continue
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    co, ci, kh, kw = weights[node.input[1]].shape
    out = shapes[node.output[0]]
    flop = 2 * co * ci * kh * kw * out[2] * out[3]
    kind = "depthwise" if group > 1 else f"1x1 at {out[2]}x{out[3]}" if kh == kw == 1 else f"{kh}x{kw}"
    kinds[kind] += flop
print(f"{sys.argv[1]}: {sum(kinds.values()) / 1e6:.1f} MFLOP")
for kind, flop in sorted(kinds.items(), key=lambda k: -k[1]):
    print(f"  {kind}: {flop / 1e6:.1f}")
