#!/usr/bin/env bash
# ML-100K comparison table (README): popularity, SASRec, BERT4Rec, LLMSeqSim, LLM2SASRec, LLM2BERT4Rec.
# CPU settings: histories of 50 items (ML-100K), at most 40 epochs, patience 5, 6 minutes per model;
# each model keeps its preset batch size (128 for the baselines, 64 for the CPU-preset generative model).
# Pass `tiger` as an argument to add the generative model (tokenized and trained here under the same cap).
# The table lands in $RUN/results.{md,json,png}.
set -euo pipefail
RUN=${RUN:-runs/ml-100k}
nice -n 10 python -m tidrec.compare --run "$RUN" --dataset ml-100k \
  --models pop sasrec bert4rec llmseqsim llm2sasrec llm2bert4rec "$@" \
  --max-len 50 --max-epochs 40 --patience 5 --max-time 6 --progress false
