#!/usr/bin/env bash
# Builds the facelive OCI image with buildah, FROM scratch (no base image, no registry):
#
#   facelive:VERSION         the release binary, ONNX Runtime, their libraries, CA certs;
#                            models mounted at /models at run time
#   facelive:VERSION-models  the same plus the default model pack in /models, each file's
#                            sha256 checked against facelive's manifest before it goes in
#
#   deploy/image.sh                      # both tags; models from ../shared/models
#   MODELS=/path/to/models deploy/image.sh
#   NO_MODELS=1 deploy/image.sh          # the first tag only
#   BINARY=target/debug/facelive deploy/image.sh   # package another build (CI smoke)
#
# Runs as root (rootful buildah). Installs buildah from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v buildah >/dev/null || { apt-get update -qq && apt-get install -y -qq buildah podman >/dev/null; }

binary=${BINARY:-target/release/facelive}
if [ -z "${BINARY:-}" ]; then
  cargo build --release --workspace --locked
fi
ort=$(scripts/onnxruntime.sh)
version=$("$binary" --version | awk '{print $2}')
models=${MODELS:-../shared/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deploy/rootfs.sh "$binary" "$ort" "$work/rootfs"

ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$work/rootfs" / >/dev/null
buildah config \
  --user 65532:65532 \
  --workingdir / \
  --port 8080/tcp \
  --env FACELIVE_LISTEN=0.0.0.0:8080 \
  --env FACELIVE_MODELS_DIR=/models \
  --env FACELIVE_BACKEND=ort \
  --env ORT_DYLIB_PATH=/usr/lib/facelive/libonnxruntime.so \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --entrypoint '["/usr/local/bin/facelive"]' \
  --cmd serve \
  --stop-signal SIGTERM \
  --label org.opencontainers.image.title=facelive \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Self-hosted passive face liveness" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "facelive:$version" >/dev/null
buildah tag "facelive:$version" facelive:latest
echo "built facelive:$version ($(podman image inspect --format '{{.Size}}' "facelive:$version" | numfmt --to=iec))"

if [ -z "${NO_MODELS:-}" ]; then
  # Only what the manifest names, only if every sha256 matches.
  "$binary" --models-dir "$models" models verify >&2
  mkdir -p "$work/models"
  "$binary" --models-dir "$models" models list \
    | awk '/\[default pack\]/ {pack = 1; next} /^[^ ]/ {pack = 0} pack && $1 == "file" {print $2}' \
    | while read -r file; do
    cp "$models/$file" "$work/models/"
  done
  chmod 644 "$work"/models/*
  ctr=$(buildah from "facelive:$version")
  buildah copy --quiet "$ctr" "$work/models" /models >/dev/null
  buildah commit --quiet --rm "$ctr" "facelive:$version-models" >/dev/null
  echo "built facelive:$version-models ($(podman image inspect --format '{{.Size}}' "facelive:$version-models" | numfmt --to=iec))"
fi
