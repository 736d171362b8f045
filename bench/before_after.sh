#!/usr/bin/env bash
# Two facelive builds alternating on the dev set, one thread, with the reference peer in
# the same run: did a change slow the default configuration? Also the adapted pack given
# in PACK (a folder from `facelive adapt`), to show what its head costs. Figures go into
# docs/BENCHMARKS.md by hand.
#
#   bench/before_after.sh BEFORE_BIN AFTER_BIN [ROUNDS]     # e.g. a build of the last
#   PACK=/tmp/adapted bench/before_after.sh ...             # release and ./target/release/facelive
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 rounds=${3:-3}
shared=${FACELIVE_SHARED:-../shared}
manifest=$shared/data/dev/manifest.csv
venv=target/refpeer-venv
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$shared/bench/requirements.txt"
fi
"$shared/bench/link_models.sh" target/refmodels
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "before: $before ($($before --version)); after: $after ($($after --version))"
for r in $(seq "$rounds"); do
  echo "== round $r"
  for side in before after; do
    echo "-- $side: default configuration, bench (first pass, then 2 passes of steady state)"
    "${!side}" bench "$manifest" --threads 1 --repeat 3
  done
  if [ -n "${PACK:-}" ]; then
    echo "-- after with --pack $PACK"
    "$after" --pack "$PACK" bench "$manifest" --threads 1 --repeat 3
    # The head runs inside the judge stage: its mean time with and without the pack.
    images=$(tail -n +2 "$manifest" | cut -d, -f1 | sed "s|^|$shared/data/dev/|")
    for pack in "" "$PACK"; do
      echo "-- after, stage times${pack:+ with --pack}"
      # check exits 3 when an image is an attack: the timings are what is read here.
      # shellcheck disable=SC2086
      { "$after" ${pack:+--pack "$pack"} check --json --threads 1 $images 2>/dev/null || true; } |
        python3 bench/stage_times.py
    done
  fi
  echo "-- refpeer"
  "$venv/bin/python" "$shared/bench/refpeer.py" target/refmodels "$manifest" "$shared/data/dev" --threads 1 2>/dev/null
done
