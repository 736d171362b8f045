#!/usr/bin/env bash
# A soak with the audit trail on (docs/SECURITY.md): `facelive serve --no-auth
# --audit-log FILE` under wrk posting one dev image for DURATION (600 s), the server's RSS
# every 10 s, then SIGTERM; prints wrk's summary (socket errors, if any, on their own
# line), the RSS samples, the exit status and the trail's lines across its rotations.
#
#   bench/soak.sh                 # 10 minutes, 8 connections
#   DURATION=60s bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-../shared/models}
port=${PORT:-18300}
img=${IMG:-../shared/data/dev/live/nuaa_ClientRaw_0001_00_00_01_134.jpg}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. bench/wrk_post.sh
wrk_post "$img" "$work"
./target/release/facelive serve --listen 127.0.0.1:$port --no-auth --audit-log "$work/trail.jsonl" 2>"$work/server.log" &
srv=$!
until curl -sf http://127.0.0.1:$port/ready >/dev/null; do sleep 0.2; done
( while kill -0 $srv 2>/dev/null; do awk '/VmRSS/ {print $2}' /proc/$srv/status; sleep 10; done > "$work/rss.txt" ) &
wrk -t2 -c8 -d"${DURATION:-600s}" -s "$work/post.lua" http://127.0.0.1:$port/v1/liveness
kill -TERM $srv
status=0; wait $srv || status=$?
echo "RSS kB every 10 s: $(tr '\n' ' ' < "$work/rss.txt")"
echo "exit $status; trail lines: $(cat "$work"/trail.jsonl* | wc -l)"
