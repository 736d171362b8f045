#!/usr/bin/env bash
# The face embedder alone in onnxruntime's Python API, one thread, on this machine: the
# figure to hold facelive's "embedding alone" (`facelive --backend ort bench --pairs`,
# alignment + run) against. 20 warm-up runs, then RUNS (300) timed on one random input.
#
#   bench/embedder_time.sh [model.onnx]     # default: ../shared/models/mobilefacenet.onnx
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
model=${1:-$shared/models/mobilefacenet.onnx}
py=$(scripts/refpeer-venv.sh)
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
"$py" - "$model" "${RUNS:-300}" <<'PY'
import sys, time
import numpy as np, onnxruntime as ort
model, runs = sys.argv[1], int(sys.argv[2])
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
shape = [1 if not isinstance(d, int) else d for d in i.shape]
x = np.random.default_rng(0).random(shape, dtype=np.float32)
for _ in range(20):
    s.run(None, {i.name: x})
t = time.perf_counter()
for _ in range(runs):
    s.run(None, {i.name: x})
print(f"onnxruntime {ort.__version__} (Python), {model.split('/')[-1]} {shape}, one thread: "
      f"{(time.perf_counter() - t) / runs * 1000:.2f} ms a run (mean of {runs})")
PY
