#!/usr/bin/env bash
# facelive on both engines beside the reference peer (../shared/bench/refpeer.py): same
# images, same models, same thread count, in one run; first pass and steady state apart;
# then the service's cold start. Results go into docs/BENCHMARKS.md by hand.
#
#   bench/run.sh                 # threads 1 and 2
#   THREADS="1" bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
manifest=$shared/data/dev/manifest.csv
venv=target/refpeer-venv
bin=./target/release/facelive

# nasm: libjpeg-turbo's SIMD code, which the JPEG decoder's build adds when it finds it.
command -v nasm >/dev/null || { apt-get update -qq && apt-get install -y -qq nasm >/dev/null; }
cargo build --release --workspace
scripts/refpeer-venv.sh >/dev/null
"$shared/bench/link_models.sh" target/refmodels
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(scripts/onnxruntime.sh)}
export ORT_DYLIB_PATH

echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(free -g | awk '/Mem:/ {print $2}') GB"
echo "facelive $($bin --version | cut -d' ' -f2), ONNX Runtime library $ORT_DYLIB_PATH; peer: $("$venv/bin/python" -c 'import cv2, onnxruntime; print("opencv", cv2.__version__, "onnxruntime", onnxruntime.__version__)')"
for t in ${THREADS:-1 2}; do
  echo "== threads=$t"
  for engine in tract ort; do
    for mode in full two-pass; do
      echo "-- facelive --backend $engine --detect-mode $mode bench (first pass, then 2 passes of steady state)"
      $bin --backend "$engine" --detect-mode "$mode" bench "$manifest" --threads "$t" --repeat 3
    done
  done
  echo "-- refpeer"
  "$venv/bin/python" "$shared/bench/refpeer.py" target/refmodels "$manifest" "$shared/data/dev" --threads "$t" 2>/dev/null
done

# Cold start: process start to /ready 200, then the first request's latency.
img=$shared/data/dev/live/nuaa_ClientRaw_0001_00_00_01_134.jpg
port=${BENCH_PORT:-18090}
for engine in tract ort; do
  start=$(date +%s.%N)
  FACELIVE_LOG=warn $bin --backend "$engine" serve --listen "127.0.0.1:$port" --no-auth &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/ready" >/dev/null; do
    kill -0 $pid 2>/dev/null || { echo "server died"; exit 1; }
    sleep 0.01
  done
  ready=$(date +%s.%N)
  first=$(curl -s -o /dev/null -w '%{time_total}' -F image=@"$img" "http://127.0.0.1:$port/v1/liveness")
  second=$(curl -s -o /dev/null -w '%{time_total}' -F image=@"$img" "http://127.0.0.1:$port/v1/liveness")
  kill $pid; wait $pid 2>/dev/null || true
  awk -v e="$engine" -v s="$start" -v r="$ready" -v f="$first" -v n="$second" \
    'BEGIN { printf "cold start %s: start to /ready %.0f ms; first request %.1f ms, second %.1f ms\n", e, (r - s) * 1000, f * 1000, n * 1000 }'
done
