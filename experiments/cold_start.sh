#!/usr/bin/env bash
# The cold-start protocol on one dataset (issue 15): the newest SHARE of the catalogue is held out of
# training; every model is compared on cold and warm test targets, and the generative model is
# evaluated again with the held-out items' SIDs built from imputed collaborative vectors (the same
# trained model serves both tables: the fitted items' SIDs are identical).
#   bash experiments/cold_start.sh ml-100k /tmp/cold 0.2
# Writes ROOT/plain and ROOT/impute10 (run folders); prints both tables and the rank diagnostic.
set -euo pipefail
DATASET=${1:?dataset}; ROOT=${2:?output root}; SHARE=${3:-0.2}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-1}
python -m tidrec.tokenize --dataset "$DATASET" --cold-start "$SHARE" --out "$ROOT/plain" --progress false
# the cpu preset as it was when the README's cold-start tables were made
python -m tidrec.fit --run "$ROOT/plain" --model tiger --num-decoder-layers 2 --dropout-kernel torch \
  --max-epochs 15 --patience 5 --progress false
python -m tidrec.compare --run "$ROOT/plain" --models tiger sasrec llmseqsim pop --progress false
mkdir -p "$ROOT/impute10"
cp -r "$ROOT/plain/data" "$ROOT/impute10/"
ln -sfn "$(cd "$ROOT/plain" && pwd)/embeddings" "$ROOT/impute10/embeddings"
python -m tidrec.tokenize --out "$ROOT/impute10" --cold-impute 10 --progress false
mkdir -p "$ROOT/impute10/models"
cp -r "$ROOT/plain/models/tiger" "$ROOT/impute10/models/" && rm -rf "$ROOT/impute10/models/tiger/eval"
python -m tidrec.compare --run "$ROOT/impute10" --models tiger pop --progress false
python experiments/cold_rank.py "$ROOT/plain" "$ROOT/impute10"
