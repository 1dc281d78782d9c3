set -euo pipefail
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
ROOT=${1:?output root}  # e.g. runs/cold-ml1m
python -m tidrec.tokenize --dataset ml-1m --cold-start 0.1 --out $ROOT/plain --progress false
python -m tidrec.compare --run $ROOT/plain --models tiger llmseqsim pop --progress false
mkdir -p $ROOT/impute10
cp -r $ROOT/plain/data $ROOT/impute10/
ln -sfn $ROOT/plain/embeddings $ROOT/impute10/embeddings
python -m tidrec.tokenize --out $ROOT/impute10 --cold-impute 10 --progress false
mkdir -p $ROOT/impute10/models
cp -r $ROOT/plain/models/tiger $ROOT/impute10/models/ && rm -rf $ROOT/impute10/models/tiger/eval
python -m tidrec.compare --run $ROOT/impute10 --models tiger pop --progress false
