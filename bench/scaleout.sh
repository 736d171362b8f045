#!/usr/bin/env bash
# Scale-out on this machine, loopback only: replicas of the facelive image (podman, one
# core and one worker each, as a pod with a one-CPU limit) behind HAProxy (Debian's
# package) health-checking /ready, driven by wrk on the native API.
#
#   1. N = 1, then N = 2: requests/s, p50 / p99, failed requests.
#   2. Under load: replica 1 gets SIGTERM (what Kubernetes sends), drains and exits; then
#      a new replica 1 starts and must take traffic only after its /ready answers 200.
#      Every request must succeed.
#
#   deploy/image.sh && bench/scaleout.sh
#   DURATION=30 CONNS=8 bench/scaleout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in haproxy wrk podman runc; do
  command -v $tool >/dev/null || { apt-get update -qq && apt-get install -y -qq haproxy wrk podman runc >/dev/null; break; }
done
image=${IMAGE:-facelive:latest}
models=$(realpath "${MODELS:-../shared/models}")
img=${IMG:-../shared/data/dev/live/nuaa_ClientRaw_0001_00_00_01_134.jpg}
duration=${DURATION:-20}
conns=${CONNS:-4}
lb=18500
work=$(mktemp -d)
conf=$work/containers.conf
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n' > "$conf"
export CONTAINERS_CONF=$conf
cleanup() {
  podman rm -f -t 0 scale-r1 scale-r2 >/dev/null 2>&1 || true
  [ -n "${haproxy_pid:-}" ] && kill "$haproxy_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
replica() { # name port: start a replica; no wait
  podman rm -f -t 0 "scale-$1" >/dev/null 2>&1 || true
  podman run -d --name "scale-$1" --read-only --cap-drop=ALL --security-opt no-new-privileges \
    --cpus 1 -p "127.0.0.1:$2:8080" -v "$models":/models:ro \
    -e FACELIVE_NO_AUTH=true -e FACELIVE_WORKERS=1 -e FACELIVE_QUEUE=16 "$image" >/dev/null
}
wait_ready() { # port: prints the time /ready first answered 200
  for _ in $(seq 1200); do
    curl -sf -m 1 "http://127.0.0.1:$1/ready" >/dev/null && { now; return; }
    sleep 0.05
  done
  echo "replica on $1 never ready" >&2; exit 1
}
server_state() { # name: UP / DOWN as HAProxy sees it
  echo "show stat" | socat - "UNIX-CONNECT:$work/haproxy.sock" 2>/dev/null \
    | awk -F, -v s="$1" '$1 == "be" && $2 == s {print $18}'
}
command -v socat >/dev/null || apt-get install -y -qq socat >/dev/null

cat > "$work/haproxy.cfg" <<CFG
global
  stats socket $work/haproxy.sock mode 600
  log stdout format raw local0
  # Whole requests fit in a buffer (the image is sent as base64 JSON).
  tune.bufsize 262144
defaults
  mode http
  log global
  # Accept time (epoch.ms), the replica that answered, status, total time, termination
  # state (two letters: who ended the session, and in which phase).
  log-format "%Ts.%ms %s %ST %Tt %tsc"
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$lb
  default_backend be
backend be
  balance leastconn
  option httpchk GET /ready
  http-check expect status 200
  default-server inter 500ms fall 1 rise 2
  server r1 127.0.0.1:18501 check
  server r2 127.0.0.1:18502 check
CFG
haproxy -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 &
haproxy_pid=$!

. bench/wrk_post.sh
wrk_post "$img" "$work"
load() { # seconds: wrk through HAProxy; prints its summary
  wrk -t2 -c"$conns" -d"$1"s --latency -s "$work/post.lua" "http://127.0.0.1:$lb/v1/liveness"
}
summary() { # wrk output file
  awk '/Requests\/sec/ {rps = $2} / 50%/ {p50 = $2} / 99%/ {p99 = $2}
       /requests in/ {n = $1} /Non-2xx/ {bad += $5} /Socket errors/ {bad += 1; se = $0}
       END {printf "requests %d, %.1f req/s, p50 %s, p99 %s, failed %d %s\n", n, rps, p50, p99, bad, se}' "$1"
}

echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); image $image"
echo "load: wrk, $conns connections, ${duration}s, native API, $(basename "$img") ($(stat -c %s "$img") bytes)"
echo "replicas: 1 CPU (--cpus 1), 1 worker, queue 16 each; HAProxy leastconn, /ready checked every 500 ms"

replica r1 18501
wait_ready 18501 >/dev/null
until [ "$(server_state r1)" = UP ] && [ "$(server_state r2)" = DOWN ]; do sleep 0.2; done
load "$duration" > "$work/n1.txt"
echo "N=1: $(summary "$work/n1.txt")"

replica r2 18502
wait_ready 18502 >/dev/null
until [ "$(server_state r2)" = UP ]; do sleep 0.2; done
load "$duration" > "$work/n2.txt"
echo "N=2: $(summary "$work/n2.txt")"
echo "  memory after the load: $(podman stats --no-stream --format '{{.Name}} {{.MemUsage}}' scale-r1 scale-r2 | tr '\n' ';')"

# Replica 1 stopped under load, then started again.
mark=$(wc -l < "$work/haproxy.log")
load $((duration + 15)) > "$work/roll.txt" &
wrk_pid=$!
sleep 5
t_term=$(now)
podman stop -t 40 scale-r1 >/dev/null &   # SIGTERM, then the drain
stop_pid=$!
until [ "$(server_state r1)" = DOWN ]; do sleep 0.05; done
t_down=$(now)
wait $stop_pid
t_exit=$(now)
code=$(podman inspect -f '{{.State.ExitCode}}' scale-r1)
sleep 2
t_start=$(now)
replica r1 18501
t_ready=$(wait_ready 18501)
wait $wrk_pid
echo "rolling: $(summary "$work/roll.txt")"
rel() { awk -v a="$t_term" -v b="$1" 'BEGIN {printf "%+.2f s", b - a}'; }
echo "  r1 SIGTERM at 0 s; HAProxy marked it DOWN at $(rel "$t_down"); it exited $code at $(rel "$t_exit") (drain 5 s + requests in flight)"
echo "  new r1 started at $(rel "$t_start"), /ready 200 at $(rel "$t_ready")"
tail -n +$((mark + 1)) "$work/haproxy.log" | grep -E '^[0-9]+\.[0-9]+ ' > "$work/roll.log" || true
awk -v term="$t_term" -v start="$t_start" -v ready="$t_ready" '
  {t = $1; s = $2; st = $3}
  st != 200 {bad++}
  s == "r1" && t < term {before++}
  s == "r1" && t >= term && t < start {draining++}
  s == "r1" && t >= start && (first == "" || t < first) {first = t}
  s == "r1" && t >= start && t < ready {early++}
  END {
    printf "  HAProxy log: %d requests, %d not 200; r1 served %d before SIGTERM, %d after it (drain)\n", NR, bad, before, draining
    printf "  new r1: first request at %+.2f s, %d before its /ready 200\n", first - term, early
  }' "$work/roll.log"
# Anything HAProxy did not answer 200, as logged (status -1: the client went away, as wrk
# does with its requests in flight when its time is up).
awk '$3 != 200 {printf "  not 200: %s %s status %s after %s ms, termination %s\n", $1, $2, $3, $4, $5}' "$work/roll.log"
