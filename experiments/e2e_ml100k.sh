#!/usr/bin/env bash
# The README's first command on ML-100K, timed (seen items are excluded from the lists by default).
# Usage: experiments/e2e_ml100k.sh [out-folder]   (default runs/ml-100k)
# OMP_WAIT_POLICY=PASSIVE keeps libgomp from spinning when the CPU is shared (10-100x slower otherwise).
set -euo pipefail
OUT=${1:-runs/ml-100k}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
time nice -n 10 python -m tidrec.run --dataset ml-100k --out "$OUT" --progress false
