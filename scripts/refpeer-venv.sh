#!/usr/bin/env bash
# The Python environment of the reference peers (../shared/bench/refpeer.py and
# refverify.py: OpenCV, onnxruntime, numpy from PyPI) under target/refpeer-venv, made once;
# prints its python. Tests that compare facelive with the reference recipe call it, as the
# benchmarks do; concurrent callers wait for the first.
#
#   py=$(scripts/refpeer-venv.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
venv=target/refpeer-venv
mkdir -p target
exec 9>target/.refpeer-venv.lock
flock 9
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import cv2, onnxruntime, numpy' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$shared/bench/requirements.txt" >&2
fi
echo "$PWD/$venv/bin/python"
