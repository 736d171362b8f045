#!/usr/bin/env bash
# Fine-tuning the judges' last block against the logistic head, on the same grouped folds
# of the domain set (leave one project out, seed 7): for several training settings, the
# out-of-fold ACER at balanced of the base pack, the head and the fine-tuned judges, and
# the McNemar counts between the last two. Then the same with images as groups (leaky:
# near-duplicate frames on both sides), which shows the fine-tuning does learn. Figures go
# into docs/ADAPT.md by hand.
#
#   bench/fine_tune.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FACELIVE_SHARED:-../shared}
bin=./target/release/facelive
export FACELIVE_MODELS_DIR=${FACELIVE_MODELS_DIR:-$shared/models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
run() {
  local group=$1 epochs=$2 rate=$3 pull=$4
  echo "## --group-by $group --epochs $epochs --learning-rate $rate --pull $pull"
  "$bin" adapt "$shared/data/domain/manifest.csv" --group-by "$group" --out "$work/out" \
    --seed 7 --fine-tune --epochs "$epochs" --learning-rate "$rate" --pull "$pull" |
    grep -E "^\| (base, calibrated|head \(adapted\)|fine-tuned judges) \| [0-9]|^Of the images the fine|^Time on this machine: trunks" || true
}
for s in "8 0.0001 0.01" "30 0.001 0.01" "30 0.001 0" "60 0.003 0.001" "20 0.01 0.01"; do
  run source_repo $s
done
for s in "8 0.0001 0.01" "30 0.001 0.01"; do
  run file $s
done
