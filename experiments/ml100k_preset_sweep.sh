#!/usr/bin/env bash
# How the cpu preset of the generative model was chosen (issue 12): settings of the one-pass model
# on ML-100K, each on its seed's own data split and SIDs, beside SASRec-CE and popularity.
#   bash experiments/ml100k_preset_sweep.sh ROOT SEED SETTING...   e.g.
#   bash experiments/ml100k_preset_sweep.sh runs/sweep 42 preset15 d1 d1-e25 d1-e40
# ROOT/sSEED gets the data, the SIDs, SASRec and popularity (`tidrec.compare`); each setting trains
# the generative model in ROOT/SETTING-sSEED on copies of them and writes its results.md there.
# `python experiments/sweep_table.py ROOT` prints validation and test NDCG@10 per setting and seed.
# THREADS (default 1) lets two sweeps share a 2-core machine.
set -euo pipefail
ROOT=${1:?output root} SEED=${2:?seed}
shift 2
export OMP_NUM_THREADS=${THREADS:-1} PYTHONUNBUFFERED=1

# setting -> flags for the generative model; preset15 is the cpu preset before this sweep
PREV="--num-decoder-layers 2 --dropout-kernel torch --max-epochs 15 --patience 5"
D1="--num-decoder-layers 1 --dropout-kernel words --max-epochs 15 --patience 5"
declare -A SETTINGS=(
  [preset15]="$PREV"
  [d1]="$D1"
  [d1-dropout0.3]="$D1 --dropout 0.3"
  [d1-itemloss0.1]="$D1 --item-loss 0.1"
  [d1-e25]="$D1 --max-epochs 25 --patience 10"
  [d1-e25-dropout0.1]="$D1 --max-epochs 25 --patience 10 --dropout 0.1"
  [d2-e25]="$PREV --dropout-kernel words --max-epochs 25 --patience 10"
  [d1-e40]="$D1 --max-epochs 40 --patience 10"  # the cpu preset since this sweep
)

for setting in "$@"; do
  [[ -v "SETTINGS[$setting]" ]] || { echo "unknown setting $setting (known: ${!SETTINGS[*]})" >&2; exit 2; }
done
base=$ROOT/s$SEED
mkdir -p "$base"
[[ -e "$base/tokenizer/sids.parquet" ]] || python -m tidrec.tokenize --dataset ml-100k --out "$base" --seed "$SEED" --progress false
[[ -e "$base/results.md" ]] || python -m tidrec.compare --run "$base" --models sasrec pop --seed "$SEED" --progress false
for setting in "$@"; do
  run=$ROOT/$setting-s$SEED
  mkdir -p "$run"
  [[ -e "$run/data" ]] || cp -r "$base/data" "$base/tokenizer" "$run/"
  # shellcheck disable=SC2086
  python -m tidrec.compare --run "$run" --models tiger --seed "$SEED" --progress false ${SETTINGS[$setting]} \
    >"$run/compare.log" 2>&1
  echo "$setting s$SEED: $(grep '^| tiger' "$run/results.md")"
done
