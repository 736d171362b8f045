#!/usr/bin/env bash
# facelive beside the reference peer (../shared/bench/refpeer.py): same images, same
# models, same thread count, in one run. Results go into docs/BENCHMARKS.md by hand.
#
#   bench/run.sh                 # threads 1 and 2
#   THREADS="1" bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
manifest=$shared/data/dev/manifest.csv
venv=target/refpeer-venv

cargo build --release --workspace
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$shared/bench/requirements.txt"
fi
"$shared/bench/link_models.sh" target/refmodels
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}

echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(free -g | awk '/Mem:/ {print $2}') GB"
echo "facelive $(./target/release/facelive --version | cut -d' ' -f2), $("$venv/bin/python" -c 'import cv2, onnxruntime; print("opencv", cv2.__version__, "onnxruntime", onnxruntime.__version__)')"
for t in ${THREADS:-1 2}; do
  echo "== threads=$t"
  echo "-- facelive bench"
  ./target/release/facelive bench "$manifest" --threads "$t"
  echo "-- refpeer"
  "$venv/bin/python" "$shared/bench/refpeer.py" target/refmodels "$manifest" "$shared/data/dev" --threads "$t" 2>/dev/null
done
