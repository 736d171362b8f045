#!/usr/bin/env bash
# Builds the fuzz targets with cargo-afl (AFL++, stable toolchain) and runs each for
# FUZZ_SECONDS (default 60), seeded from the dev images. Fails if any target crashed; the
# crashing inputs are left in fuzz/target/out/<target>/default/crashes/.
#
#   scripts/fuzz.sh                      # every target, 60 s each (what CI runs)
#   FUZZ_SECONDS=1200 scripts/fuzz.sh ingest
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ingest dialects url_guard)
shared=$(realpath "${FACELIVE_SHARED:-../shared}")
export FACELIVE_MODELS_DIR=$(realpath "${FACELIVE_MODELS_DIR:-$shared/models}")

if ! command -v cargo-afl >/dev/null; then
  cargo install --locked cargo-afl --version 0.18.2
fi
# AFL++ itself, built once per toolchain (cargo-afl refuses to build it twice).
if ! ls -d "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-"$(rustc -V | awk '{print $2}')"-* >/dev/null 2>&1; then
  cargo afl config --build
fi
(cd fuzz && cargo afl build --release --locked)

work=fuzz/target
rm -rf "$work/seeds"
python3 fuzz/seeds.py "$shared/data/dev" "$work/seeds"

status=0
for t in "${targets[@]}"; do
  out=$work/out/$t
  mkdir -p "$work/out"
  rm -rf "$out"
  # No UI, no CPU-governor or core-pattern demands (a VM or container has neither), and a
  # bounded run; the harness loads models, so it gets time to start.
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
    AFL_FORKSRV_INIT_TMOUT=60000 \
    cargo afl fuzz -V "$seconds" -t 5000 -m none -i "$work/seeds/$t" -o "$out" \
      "fuzz/target/release/$t" >"$out.log" 2>&1 || { echo "$t: afl-fuzz failed, see $out.log"; status=1; continue; }
  stats=$out/default/fuzzer_stats
  execs=$(awk -F: '/^execs_done/ {gsub(/ /,"",$2); print $2}' "$stats")
  paths=$(awk -F: '/^corpus_count/ {gsub(/ /,"",$2); print $2}' "$stats")
  crashes=$(find "$out/default/crashes" -type f ! -name README.txt | wc -l)
  hangs=$(find "$out/default/hangs" -type f | wc -l)
  echo "$t: ${seconds} s, $execs executions, corpus $paths, crashes $crashes, hangs $hangs"
  [ "$crashes" -eq 0 ] || status=1
done
exit $status
