#!/usr/bin/env bash
# The release build of this tree against one of BEFORE_REV, alternating on the dev set,
# one thread, with the reference peer in the same run: did a change slow the default
# configuration? Also the domain set's adapted pack (made here with `adapt --force`, into
# target/adapt-forced), to show what its head costs. Figures go into docs/BENCHMARKS.md by
# hand.
#
#   bench/before_after.sh BEFORE_REV [ROUNDS]        # e.g. bench/before_after.sh c7d83a5 3
#
# BEFORE_REV is built once, in a worktree with a target folder of its own (sharing
# target/ between two checkouts of the same crates confuses cargo's fingerprints), and
# kept as target/facelive-BEFORE_REV.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$1 rounds=${2:-3}
shared=${FACELIVE_SHARED:-../shared}
manifest=$shared/data/dev/manifest.csv
venv=target/refpeer-venv
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
command -v nasm >/dev/null || { apt-get update -qq && apt-get install -y -qq nasm >/dev/null; }
cargo build --release --workspace
after=./target/release/facelive
before=./target/facelive-$rev
if [ ! -x "$before" ]; then
  rm -rf target/before-tree
  git worktree add --force target/before-tree "$rev"
  (cd target/before-tree && CARGO_TARGET_DIR=../before-target cargo build --release -p facelive)
  cp target/before-target/release/facelive "$before"
  git worktree remove --force target/before-tree
fi
pack=target/adapt-forced
"$after" adapt "$shared/data/domain/manifest.csv" --group-by source_repo --seed 7 \
  --out "$pack" --force --name domain-forced >/dev/null
scripts/refpeer-venv.sh >/dev/null
"$shared/bench/link_models.sh" target/refmodels
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "before: $before ($rev); after: $after ($(git rev-parse --short HEAD))"
images=$(tail -n +2 "$manifest" | cut -d, -f1 | sed "s|^|$shared/data/dev/|")
for r in $(seq "$rounds"); do
  echo "== round $r"
  for side in before after; do
    echo "-- $side: default configuration, bench (first pass, then 2 passes of steady state)"
    "${!side}" bench "$manifest" --threads 1 --repeat 3
  done
  echo "-- after with --pack $pack"
  "$after" --pack "$pack" bench "$manifest" --threads 1 --repeat 3
  # The head runs inside the judge stage: its mean time without and with the pack.
  for p in "" "$pack"; do
    echo "-- after, stage times${p:+ with --pack}"
    # check exits 3 when an image is an attack: the timings are what is read here.
    # shellcheck disable=SC2086
    { "$after" ${p:+--pack "$p"} check --json --threads 1 $images 2>/dev/null || true; } |
      python3 bench/stage_times.py
  done
  echo "-- refpeer"
  "$venv/bin/python" "$shared/bench/refpeer.py" target/refmodels "$manifest" "$shared/data/dev" --threads 1 2>/dev/null
done
