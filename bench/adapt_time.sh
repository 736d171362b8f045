#!/usr/bin/env bash
# How long `facelive adapt` takes on 1,000 images on this machine: the domain set's 400
# crops listed two and a half times (every row goes through the models; the groups stay the
# five projects), through the release build, with peak memory. Figures go into
# docs/BENCHMARKS.md by hand.
#
#   bench/adapt_time.sh                 # the head
#   bench/adapt_time.sh --fine-tune     # and fine-tuning on the same folds (a release
#                                       # build with --features facelive/fine-tune)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
domain=$(cd "$shared/data/domain" && pwd)
bin=./target/release/facelive
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -1 "$domain/manifest.csv" > "$work/manifest.csv"
for _ in 1 2 3; do
  tail -n +2 "$domain/manifest.csv" | sed "s|^|$domain/|" >> "$work/rows.csv"
done
head -n 1000 "$work/rows.csv" >> "$work/manifest.csv"
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "rows: $(($(wc -l < "$work/manifest.csv") - 1))"
/usr/bin/time -f "wall %e s, user %U s, peak RSS %M KB" \
  "$bin" adapt "$work/manifest.csv" --group-by source_repo --out "$work/out" --force "$@" |
  grep -E "^Time on this machine|^At balanced"
