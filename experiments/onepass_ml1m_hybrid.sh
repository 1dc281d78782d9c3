#!/usr/bin/env bash
# Issue 12's best ML-1M recipe: onepass_ml1m.sh with SASRec's loss on the encoder (--item-loss 0.1)
# and the cheaper dropout masks (--dropout-kernel words) for EPOCHS epochs (70: 74 minutes per seed on
# one thread each of a 2-core box running both seeds), then the test split ranked by the beams' SID
# log-probability plus ITEM_SCORE times the item head's (2: the best weight on the two seeds'
# validation splits; experiments/item_head.py R --split valid compares weights). The script's own
# tidrec.compare step still reports the SID ranking alone, beside popularity.
#   SEED=42 bash experiments/onepass_ml1m_hybrid.sh     (and SEED=1)
set -euo pipefail
RUN=${RUN:-runs/ml-1m-hybrid}
ITEM_SCORE=${ITEM_SCORE:-2}
RUN=$RUN EPOCHS=${EPOCHS:-70} bash "$(dirname "$0")/onepass_ml1m.sh" --item-loss 0.1 --dropout-kernel words "$@"
OMP_NUM_THREADS=${THREADS:-1} python -m tidrec.evaluate --run "$RUN" --exclude-history true \
  --item-score "$ITEM_SCORE"
