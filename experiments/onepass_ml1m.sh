#!/usr/bin/env bash
# The one-pass generative model on ML-1M (issue 12): all ratings, leave-one-out, full ranking, seen
# items excluded. SIDs from text and co-occurrence (3 x 32 codes), then the cpu preset trained on one
# random 50-item window per user and epoch, lr 2e-3, bf16 autocast (fp32 where the CPU has no bf16
# units: pass PRECISION=32), all EPOCHS epochs (55 took about 115 minutes on one thread of the
# 2-core development box; early stopping after 5 flat validations on 1,000 users ended both seeds
# with a third of the cosine schedule left, 0.007 and 0.010 NDCG@10 short, so the patience is EPOCHS);
# the 125-minute cap is only a safety net. SEED seeds both the SIDs and the model.
# Two decoder layers and torch's dropout are pinned: the cpu preset has one and the words kernel
# since they won on ML-100K, but on ML-1M one layer lost 0.0035 NDCG@10 (README, ‡ section).
# THREADS sets torch's CPU threads. Further arguments go to tidrec.fit (later flags win), e.g. issue 14's
# ML-1M ablation in the same time: EPOCHS=50 ... --objective pretrain --pretrain-epochs 10, and
# EPOCHS=38 ... --objective mixed.
set -euo pipefail
RUN=${RUN:-runs/ml-1m-onepass}
SEED=${SEED:-42}
EPOCHS=${EPOCHS:-55}
PRECISION=${PRECISION:-bf16-mixed}
export OMP_NUM_THREADS=${THREADS:-1}
python -m tidrec.data --dataset ml-1m --out "$RUN/data"
python -m tidrec.tokenize --out "$RUN" --seed "$SEED"
python -m tidrec.fit --run "$RUN" --model tiger --max-items 50 --windows random --lr 2e-3 \
  --precision "$PRECISION" --max-epochs "$EPOCHS" --patience "$EPOCHS" --val-users 1000 \
  --max-time 125 --seed "$SEED" --num-decoder-layers 2 --dropout-kernel torch --progress false "$@"
python -m tidrec.compare --run "$RUN" --dataset ml-1m --models tiger pop --progress false
