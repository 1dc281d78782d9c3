#!/usr/bin/env bash
# ML-1M comparison table (README): every model on one split (all ratings, leave-one-out by time,
# full-catalogue ranking, seen items excluded, histories up to 200).
# Each model trains with its own time cap (minutes, env below) unless its folder already holds one;
# SASRec-CE comes from experiments/compare_ml1m_sasrec.sh. THREADS=1 lets two of these share 2 cores.
set -euo pipefail
RUN=${RUN:-runs/ml-1m}
export OMP_NUM_THREADS=${THREADS:-1}
declare -A MINUTES=([llm2sasrec]=${LLM2SASREC_MIN:-30} [bert4rec]=${BERT4REC_MIN:-20}
  [llm2bert4rec]=${LLM2BERT4REC_MIN:-20} [tiger]=${TIGER_MIN:-15})
python -m tidrec.data --dataset ml-1m --out "$RUN/data"
for model in llmseqsim llm2sasrec bert4rec llm2bert4rec tiger; do
  if [[ -e "$RUN/models/$model/best.ckpt" || -e "$RUN/models/$model/$model.json" ]]; then
    echo "$model: already trained in $RUN/models/$model"; continue
  fi
  cap=()
  [[ -n "${MINUTES[$model]:-}" ]] && cap=(--max-time "${MINUTES[$model]}")
  recipe=()
  [[ "$model" == tiger ]] && recipe=(--recipe examples)  # the table's generative row: TIGER's recipe
  nice -n 10 python -m tidrec.fit --run "$RUN" --model "$model" --max-epochs 200 --patience 10 \
    "${cap[@]}" "${recipe[@]}" --progress false
done
nice -n 10 python -m tidrec.compare --run "$RUN" --dataset ml-1m --progress false \
  --models pop sasrec bert4rec llmseqsim llm2sasrec llm2bert4rec tiger
