#!/usr/bin/env bash
# Drives `facelive serve` on 127.0.0.1 at and past saturation with wrk, samples the server's
# memory, and probes how fast excess requests are refused. Figures go into
# docs/BENCHMARKS.md by hand.
#
#   bench/load.sh                       # defaults: 20 s per phase
#   DURATION=10 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --workspace
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-../shared/models}
port=${PORT:-18181}
duration=${DURATION:-20}
img=${IMG:-../shared/data/dev/live/nuaa_ClientRaw_0001_00_00_01_134.jpg}
work=$(mktemp -d)
trap 'kill $server $sampler 2>/dev/null; rm -rf "$work"' EXIT

./target/release/facelive serve --listen 127.0.0.1:$port --no-auth --queue 16 2>"$work/server.log" &
server=$!
until curl -sf http://127.0.0.1:$port/ready >/dev/null; do sleep 0.2; done

. bench/wrk_post.sh
wrk_post "$img" "$work"

# Resident memory of the server, once a second, for the whole run.
( while kill -0 $server 2>/dev/null; do
    awk '/VmRSS/ {print $2}' /proc/$server/status 2>/dev/null; sleep 1
  done > "$work/rss.txt" ) &
sampler=$!

echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); server: 2 workers (cores), queue 16"
echo "image: $img ($(stat -c %s "$img") bytes), native JSON API"
for conns in ${CONNS:-2 8 64}; do
  echo "== $conns connections, ${duration}s"
  wrk -t2 -c$conns -d${duration}s --latency -s "$work/post.lua" http://127.0.0.1:$port/v1/liveness > "$work/wrk.txt"
  grep -E 'Requests/sec|Latency  |50%|90%|99%|requests in|Non-2xx|Socket errors' "$work/wrk.txt"
  total=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  refused=$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt"); refused=${refused:-0}
  secs=$(awk '/requests in/ {sub(/s,/, "", $4); print $4}' "$work/wrk.txt")
  echo "   answered 200: $((total - refused)), refused: $refused; goodput $(awk -v n=$((total - refused)) -v s="$secs" 'BEGIN {printf "%.1f", n / s}') req/s"
  echo "   RSS now: $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$server/status)"
done

echo "== refusal latency while saturated (64 connections busy)"
wrk -t2 -c64 -d10s -s "$work/post.lua" http://127.0.0.1:$port/v1/liveness >/dev/null &
loadgen=$!
sleep 3
for i in 1 2 3 4 5; do
  curl -s -o /dev/null -w '   probe: HTTP %{http_code} in %{time_total}s\n' -H 'Content-Type: application/json' \
    --data-binary @"$work/body.json" http://127.0.0.1:$port/v1/liveness
done
wait $loadgen
echo "   server alive after the runs: $(curl -s http://127.0.0.1:$port/health)"
echo "   RSS samples (MB): first $(head -1 "$work/rss.txt" | awk '{print $1/1024}'), peak $(sort -n "$work/rss.txt" | tail -1 | awk '{print $1/1024}'), last $(tail -1 "$work/rss.txt" | awk '{print $1/1024}')"
echo "   peak RSS (VmHWM): $(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/$server/status)"
