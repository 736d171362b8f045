#!/usr/bin/env bash
# Builds the facelive OCI image with buildah from the Containerfile's `runtime` and
# `models` stages, FROM scratch (no base image, no registry), the `build` stage being this
# checkout's release build:
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
  # nasm: libjpeg-turbo's SIMD code, which the JPEG decoder's build adds when it finds it
  # (the shipped binary should have it; a build without is correct, only slower).
  command -v nasm >/dev/null || { apt-get update -qq && apt-get install -y -qq nasm >/dev/null; }
  cargo build --release --workspace --locked
fi
ort=$(scripts/onnxruntime.sh)
version=$("$binary" --version | awk '{print $2}')
models=${MODELS:-../shared/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

deploy/rootfs.sh "$binary" "$ort" "$work/rootfs"
mkdir -p "$work/models"
if [ -z "${NO_MODELS:-}" ]; then
  # Only what the manifest names, only if every sha256 matches.
  "$binary" --models-dir "$models" models verify >&2
  "$binary" --models-dir "$models" models list \
    | awk '/\[default pack\]/ {pack = 1; next} /^[^ ]/ {pack = 0} pack && $1 == "file" {print $2}' \
    | while read -r file; do cp "$models/$file" "$work/models/"; done
  chmod 644 "$work"/models/*
fi

# The Containerfile's stages, with its `build` stage replaced by what was just assembled.
build() {
  buildah build --quiet --layers=false --build-context build="$work" --target "$1" \
    --label org.opencontainers.image.version="$version" -t "$2" -f Containerfile "$work" >/dev/null
  echo "built $2 ($(podman image inspect --format '{{.Size}}' "$2" | numfmt --to=iec))"
}
build runtime "facelive:$version"
buildah tag "facelive:$version" facelive:latest
[ -n "${NO_MODELS:-}" ] || build models "facelive:$version-models"
