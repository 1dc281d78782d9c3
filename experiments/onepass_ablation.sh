#!/usr/bin/env bash
# Ablation of the generative model (issue 12): one run folder per setting, all on one data split.
# Usage: experiments/onepass_ablation.sh DATASET ROOT SETTING...   e.g.
#   experiments/onepass_ablation.sh ml-100k runs/ablation-ml100k examples-text256 cb32-recency
# Each setting tokenizes (unless ROOT/SETTING/tokenizer exists), trains the generative model with the
# flags below on top of the preset, and evaluates it with tidrec.compare (test split, seen items
# excluded); ROOT/SETTING.log keeps the output, ROOT/SETTING/results.md the row. The baselines come
# from `tidrec.compare --run ROOT/base --models pop sasrec ...` on the same data.
# THREADS (default 1) lets two settings share a 2-core machine; EXTRA adds flags to every fit.
# ML-1M runs of issues 12 and 14 (about two CPU hours each):
#   EXTRA="--max-items 200 --max-epochs 8 --val-users 1000 --max-time 130" THREADS=1 \
#   experiments/onepass_ablation.sh ml-1m runs/ablation-ml1m preset preset-pretrain preset-mixed
set -euo pipefail
DATASET=$1 ROOT=$2
shift 2
export OMP_NUM_THREADS=${THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} PYTHONUNBUFFERED=1

# setting -> "tokenize flags | fit flags (on top of the preset)". The preset changed (trie softmax on,
# no attention-weight dropout; then one decoder layer, the words dropout kernel and 40 epochs):
# settings measured before pin what they ran with ($PREV, $PREV1), so they still give the README's
# ablation rows.
PREV1="--num-decoder-layers 2 --dropout-kernel torch --max-epochs 15 --patience 5"
PREV="--trie-softmax false --attention-dropout 0.2 $PREV1"
declare -A SETTINGS=(
  [examples-text256]="--item-vectors text --codebook-size 256 | --recipe examples"
  [onepass-text256]="--item-vectors text --codebook-size 256 | --recency-bias false $PREV"
  [onepass-cooc256]="--item-vectors text+cooc --codebook-size 256 | --recency-bias false $PREV"
  [cb64]="--item-vectors text+cooc --codebook-size 64 | --recency-bias false $PREV"
  [cb32]="--item-vectors text+cooc --codebook-size 32 | --recency-bias false $PREV"
  [cb32-recency]="--item-vectors text+cooc --codebook-size 32 | $PREV"
  [cb32-recency-noid]="--item-vectors text+cooc --codebook-size 32 | --item-id-embedding false $PREV"
  [cb16-recency]="--item-vectors text+cooc --codebook-size 16 | $PREV"
  [text32-recency]="--item-vectors text --codebook-size 32 | $PREV"
  [cooc32-recency]="--item-vectors cooc --codebook-size 32 | $PREV"
  [cw2-32-recency]="--item-vectors text+cooc --collab-weight 2 --codebook-size 32 | $PREV"
  [cb32-recency-ts]="--item-vectors text+cooc --codebook-size 32 | --trie-softmax true --attention-dropout 0.2 $PREV1"
  [preset]="--item-vectors text+cooc --codebook-size 32 | $PREV1"
  [preset-nodes]="--item-vectors text+cooc --codebook-size 32 | --node-embeddings true $PREV1"
  [preset-pretrain]="--item-vectors text+cooc --codebook-size 32 | --objective pretrain $PREV1"
  [preset-mixed]="--item-vectors text+cooc --codebook-size 32 | --objective mixed $PREV1"
  [preset40]="--item-vectors text+cooc --codebook-size 32 |"
)

mkdir -p "$ROOT"
python -m tidrec.data --dataset "$DATASET" --out "$ROOT/base/data"
for setting in "$@"; do
  [[ -v "SETTINGS[$setting]" ]] || { echo "unknown setting $setting (known: ${!SETTINGS[*]})" >&2; exit 2; }
  tokenize=${SETTINGS[$setting]%%|*} fit=${SETTINGS[$setting]#*|}
  run=$ROOT/$setting
  {
    mkdir -p "$run"
    [[ -e "$run/data" ]] || cp -r "$ROOT/base/data" "$run/data"
    # shellcheck disable=SC2086
    [[ -e "$run/tokenizer/sids.parquet" ]] || python -m tidrec.tokenize --out "$run" $tokenize --progress false
    # shellcheck disable=SC2086
    [[ -e "$run/models/tiger/best.ckpt" ]] || python -m tidrec.fit --run "$run" --model tiger $fit ${EXTRA:-} --progress false
    python -m tidrec.compare --run "$run" --models tiger --progress false
  } >"$ROOT/$setting.log" 2>&1
  tail -n 1 "$run/results.md"
done
