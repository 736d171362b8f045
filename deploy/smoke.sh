#!/usr/bin/env bash
# Runs the image as the Kubernetes manifests run it (non-root, read-only root filesystem,
# no capabilities, no privilege escalation, models mounted read-only, the ConfigMap's
# facelive.toml) with podman on
# 127.0.0.1, waits for /ready, posts a live and a spoof dev image to every dialect, checks
# each verdict against `facelive check` at that dialect's threshold (same engines, same
# ONNX Runtime library), then stops it with SIGTERM and checks it drained and exited 0.
#
#   deploy/image.sh && deploy/smoke.sh
#   IMAGE=facelive:0.1.0-models MODELS= deploy/smoke.sh   # the image's own models
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-facelive:latest}
models=${MODELS-../shared/models}
port=${PORT:-18480}
binary=${BINARY:-target/release/facelive}
dev=${DEV:-../shared/data/dev}
live=$dev/live/nuaa_ClientRaw_0001_00_00_01_134.jpg
spoof=$dev/spoof/nuaa_ImposterRaw_0001_00_00_01_111.jpg

command -v podman >/dev/null && command -v runc >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq podman runc >/dev/null; }
# Checked on these machines: rootful podman with runc and lowered default ulimits.
conf=$(mktemp)
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n' > "$conf"
export CONTAINERS_CONF=$conf
name=facelive-smoke-$$
trap 'podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; rm -f "$conf"' EXIT

mount=()
[ -n "$models" ] && mount=(-v "$(realpath "$models")":/models:ro)
# With the ConfigMap's facelive.toml, as in the cluster (its drain shortened to 2 s here).
podman run -d --name "$name" --read-only --cap-drop=ALL --security-opt no-new-privileges \
  -p "127.0.0.1:$port:8080" "${mount[@]}" \
  -v "$(realpath deploy/kubernetes/facelive.toml)":/etc/facelive/facelive.toml:ro \
  -e FACELIVE_CONFIG=/etc/facelive/facelive.toml \
  -e FACELIVE_API_KEY=k-native -e FACELIVE_NHN_APP_KEY=app1 -e FACELIVE_NHN_SECRET_KEY=k-nhn \
  -e FACELIVE_ACCURA_API_KEY=k-accura -e FACELIVE_JCV_API_KEY=k-jcv \
  -e FACELIVE_SPOOFSENSE_API_KEY=k-ss -e FACELIVE_DRAIN=2 \
  "$image" >/dev/null
base=http://127.0.0.1:$port
t0=$(date +%s.%N)
for _ in $(seq 600); do
  curl -sf "$base/ready" >/dev/null && break
  [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || { podman logs "$name"; exit 1; }
  sleep 0.2
done
curl -sf "$base/ready" >/dev/null || { echo "never ready"; podman logs "$name"; exit 1; }
echo "ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s (container start to /ready 200)"

pid=$(podman inspect -f '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
readonly_fs=$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$name")
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
echo "process uid $uid, read-only root fs $readonly_fs, effective capabilities $caps"
[ "$uid" != 0 ] && [ "$readonly_fs" = true ] && [ "$caps" = 0000000000000000 ]
echo "image $image: $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec)"
curl -sf "$base/info" | python3 -c 'import json,sys; i=json.load(sys.stdin); print("engines:", i["engines"])'

# The shipped binary leaves fine-tuning out (measured, not shipped: docs/ADAPT.md).
if ft=$("$binary" adapt x.csv --group-by g --out /nonexistent --fine-tune 2>&1); then
  echo "the shipped binary took --fine-tune"; exit 1
fi
grep -q "unexpected argument '--fine-tune'" <<<"$ft" || { echo "$ft"; exit 1; }
echo "shipped binary: adapt has no --fine-tune"

# The host's verdicts with the image's engines: ONNX Runtime for the detector.
export ORT_DYLIB_PATH=$(scripts/onnxruntime.sh)
# (check's exit status says the outcome: not an error here.)
check() { { "$binary" --models-dir "${models:-../shared/models}" --backend ort check --json "$@" || true; } \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["outcome"])'; }

fails=0
for img in "$live" "$spoof"; do
  b64=$(base64 -w0 "$img")
  balanced=$(check "$img")
  at055=$(check --threshold 0.55 "$img")
  at05=$(check --threshold 0.5 "$img")
  got_native=$(curl -s -H 'Authorization: Bearer k-native' -F "image=@$img" "$base/v1/liveness" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["outcome"])')
  got_nhn=$(printf '{"image":{"bytes":"%s"},"spoofingCondition":"balanced"}' "$b64" \
    | curl -s -H 'Authorization: k-nhn' -H 'Content-Type: application/json' --data-binary @- \
      "$base/v1.0/appkeys/app1/spoofing" \
    | python3 -c 'import json,sys; print("spoof" if json.load(sys.stdin)["data"]["faceDetails"][0]["spoofing"] else "live")')
  got_accura=$(curl -s -H 'Api-Key: k-accura' -F "liveness_image=@$img" "$base/v2/api/liveness" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["liveness_status"])')
  got_jcv=$(printf '{"images":[{"index":0,"type":"RGB","data":"%s"}]}' "$b64" \
    | curl -s -H 'X-API-Key: k-jcv' -H 'Content-Type: application/json' --data-binary @- \
      "$base/v1/jcv/liveness" \
    | python3 -c 'import json,sys; print("live" if json.load(sys.stdin)["live"] else "spoof")')
  got_ss=$(printf '{"data":"%s"}' "$b64" \
    | curl -s -H 'x-api-key: k-ss' -H 'Content-Type: application/json' --data-binary @- \
      "$base/antispoofing" \
    | python3 -c 'import json,sys; print({"real": "live"}.get(json.load(sys.stdin)["model_output"]["pred_idx"], "spoof"))')
  for pair in "native $got_native $balanced" "nhn $got_nhn $balanced" "accura $got_accura $at055" \
              "jcv $got_jcv $at05" "spoofsense $got_ss $at055"; do
    set -- $pair
    if [ "$2" = "$3" ]; then echo "ok   $1 $(basename "$img"): $2"; else echo "FAIL $1 $(basename "$img"): $2, check says $3"; fails=$((fails + 1)); fi
  done
done

# SIGTERM: /ready turns 503 while draining, then the process exits 0.
podman kill --signal TERM "$name" >/dev/null
draining=$(curl -s "$base/ready" || true)
echo "after SIGTERM: /ready says $draining"
code=$(podman wait "$name")
echo "exit code after the drain: $code"
[ "$code" = 0 ] && [ "$fails" = 0 ] && echo "smoke: all good"
