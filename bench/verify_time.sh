#!/usr/bin/env bash
# Liveness with verify beside the reference peers, one thread, same images, same run:
# facelive's `bench --pairs` (one verify per pair of ../shared/data/verify/pairs.csv: the
# selfie decoded, detected, checked, judged and embedded, the reference decoded, detected,
# checked and embedded) against refpeer.py's liveness per image plus refverify.py's
# embedding of two images (its per-image time: decode, YuNet, alignCrop, MobileFaceNet).
# Results go into docs/BENCHMARKS.md by hand.
#
#   bench/verify_time.sh            # RUNS=2 for two rounds
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
verify=$shared/data/verify
# nasm: libjpeg-turbo's SIMD code, which the JPEG decoder's build adds when it finds it.
command -v nasm >/dev/null || { apt-get update -qq && apt-get install -y -qq nasm >/dev/null; }
py=$(scripts/refpeer-venv.sh)
bin=./target/release/facelive
[ -x "$bin" ] || cargo build --release -p facelive
# refpeer.py reads the models under the names link_models.sh gives them.
"$shared/bench/link_models.sh" target/refmodels >/dev/null
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(scripts/onnxruntime.sh)}
export ORT_DYLIB_PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The verify set's images as a refpeer manifest (file,label,attack_type).
"$py" - "$verify/manifest.csv" "$work/images.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as fh:
    w = csv.writer(fh); w.writerow(["file", "label", "attack_type"])
    for r in rows:
        w.writerow([r["file"], r["label"], "print" if r["label"] == "spoof" else ""])
PY
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(free -g | awk '/Mem:/ {print $2}') GB"
echo "facelive $($bin --version | cut -d' ' -f2); peer: $("$py" -c 'import cv2, onnxruntime; print("opencv", cv2.__version__, "onnxruntime", onnxruntime.__version__)')"
for run in $(seq "${RUNS:-1}"); do
  echo "== run $run"
  echo "-- refpeer.py (liveness), one thread"
  "$py" "$shared/bench/refpeer.py" target/refmodels "$work/images.csv" "$verify" --threads 1 2>/dev/null | grep -E "images=|wall="
  echo "-- refverify.py (embedding, per image), one thread"
  "$py" "$shared/bench/refverify.py" "$shared/models" "$verify/pairs.csv" "$verify" --threads 1 2>/dev/null | grep -E "wall="
  echo "-- facelive bench --pairs, tract (the source default)"
  "$bin" bench --pairs "$verify/pairs.csv" --threads 1
  echo "-- facelive bench --pairs, ONNX Runtime detector (the image default)"
  "$bin" --backend ort --judge-backend tract bench --pairs "$verify/pairs.csv" --threads 1
done
