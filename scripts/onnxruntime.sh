#!/usr/bin/env bash
# Puts ONNX Runtime's shared library, with its LICENSE and ThirdPartyNotices.txt beside it
# (the container image ships them together), under target/onnxruntime/ and prints its path, for
# `facelive --backend ort` (ORT_DYLIB_PATH) in tests, CI and benchmarks. The library comes
# from the `onnxruntime` wheel on PyPI (it carries libonnxruntime.so); nothing is installed
# system-wide and no Python environment is touched.
#
#   export ORT_DYLIB_PATH=$(scripts/onnxruntime.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${ORT_VERSION:-1.32.0}
dir=target/onnxruntime/$version
lib=$dir/libonnxruntime.so
if [ ! -f "$lib" ] || [ ! -f "$dir/LICENSE" ] || [ ! -f "$dir/ThirdPartyNotices.txt" ]; then
  mkdir -p "$dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp" "${part:-}"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$version" >&2
  # Concurrent callers (parallel test binaries) each write their own part file; the
  # rename is atomic.
  part=$(mktemp "$dir/.libonnxruntime.XXXXXX")
  python3 - "$tmp" "$dir" "$part" <<'PY'
import glob, os, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    name = next(n for n in names if os.path.basename(n).startswith("libonnxruntime.so"))
    with z.open(name) as src, open(sys.argv[3], "wb") as dst:
        dst.write(src.read())
    # The licence terms travel with the library.
    for notice in ("LICENSE", "ThirdPartyNotices.txt"):
        found = next(n for n in names if n == "onnxruntime/" + notice)
        part = os.path.join(out, "." + notice + ".part")
        with z.open(found) as src, open(part, "wb") as dst:
            dst.write(src.read())
        os.replace(part, os.path.join(out, notice))
PY
  chmod 644 "$part"
  mv "$part" "$lib"
fi
echo "$(pwd)/$lib"
