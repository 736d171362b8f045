#!/usr/bin/env bash
# The face embedder's cost, same machine, same run, one thread: alone in onnxruntime's
# Python API (20 warm-up runs, then RUNS (300) timed on one random input), then
# facelive's "embedding alone" on ONNX Runtime (alignment + run, the largest face of each
# reference of the verify set's pairs, each once, `bench --pairs`). Figures go into
# docs/BENCHMARKS.md by hand.
#
#   bench/embedder_time.sh [model.onnx]     # default: ../shared/models/mobilefacenet.onnx
#   BIN=target/debug/facelive bench/embedder_time.sh   # another build (default: release)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
model=${1:-$shared/models/mobilefacenet.onnx}
py=$(scripts/refpeer-venv.sh)
bin=${BIN:-./target/release/facelive}
[ -x "$bin" ] || cargo build --release -p facelive
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(scripts/onnxruntime.sh)}
export ORT_DYLIB_PATH
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
echo "facelive $("$bin" --version | cut -d' ' -f2) ($bin), ONNX Runtime embedder, one thread:"
"$bin" --backend ort --judge-backend tract bench --pairs "$shared/data/verify/pairs.csv" --threads 1 \
  | grep "embedding alone"
