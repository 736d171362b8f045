#!/usr/bin/env bash
# The capture page end to end in headless Chromium with a fake camera fed from dev images
# (tests/browser/capture_test.py). Installs what it needs: Chromium, its driver and ffmpeg
# from Debian, selenium into target/browser-venv, axe-core from npm (integrity-checked)
# into target/. Uses the release binary (built if missing).
#
#   scripts/browser-test.sh
#   SCREENSHOTS=docs/capture scripts/browser-test.sh   # refresh the docs' screenshots
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v ffmpeg >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver ffmpeg >/dev/null; }
venv=target/browser-venv
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import selenium' 2>/dev/null || {
  python3 -m venv "$venv" 2>/dev/null \
    || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet "selenium==4.*"
}
axe_version=4.14.1
axe_integrity=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
axe=target/axe-core-$axe_version/axe.min.js
if [ ! -f "$axe" ]; then
  tmp=$(mktemp -d)
  curl -sSf -o "$tmp/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/axe.tgz" | base64 -w0)"
  [ "$got" = "$axe_integrity" ] || { echo "axe-core tarball integrity mismatch: $got" >&2; exit 1; }
  mkdir -p "$(dirname "$axe")"
  tar -xzf "$tmp/axe.tgz" -C "$tmp" package/axe.min.js
  mv "$tmp/package/axe.min.js" "$axe"
  rm -rf "$tmp"
fi
binary=${BINARY:-target/release/facelive}
[ -x "$binary" ] || cargo build --release --workspace --locked
"$venv/bin/python" tests/browser/capture_test.py --binary "$binary" --axe "$axe" \
  --models "${FACELIVE_MODELS_DIR:-../shared/models}" --dev ../shared/data/dev \
  --screenshots "${SCREENSHOTS:-target/capture-screenshots}"
