#!/usr/bin/env bash
# The small-data recipe: DeepSpeech.py with the flags that made models generalise to
# voices they never heard on bench/accuracy (a few hundred sentences, ~20 voices); what
# each flag bought is in doc/ACCURACY.rst. Pass your data and anything to override:
#   bin/run-small-data.sh --train_files train.csv --dev_files dev.csv \
#       --test_files test.csv --checkpoint_dir runs/mine
# Later flags win, so e.g. "--n_hidden 1024" after these replaces the recipe's width.
# bench/accuracy/run.py reads RECIPE from this file: keep one flag (and its
# value) per line.
set -euo pipefail
cd "$(dirname "$0")/.."

RECIPE=(
  --n_hidden 512
  # no --feature_normalization: the dev set chose raw MFCCs, see doc/ACCURACY.rst
  --dropout_rate 0.2
  --train_batch_size 16
  --learning_rate 0.002
  --lr_warmup_steps 200
  --lr_decay cosine
  --lr_decay_floor 0.05
  --augment "frequency_mask[p=0.5,n=1:3,size=1:5,domain=features]"
  --augment "time_mask[p=0.5,n=2,size=30~20,domain=features]"
  --augment "add[p=0.3,stddev=0.1~0.05]"
  --augment "pitch[p=0.8,pitch=1~0.15]"
  --augment "tempo[p=0.8,factor=1~0.15]"
  --epochs 30
)

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3
echo "run-small-data.sh: ${RECIPE[*]} $*" >&2
exec "$PY" DeepSpeech.py "${RECIPE[@]}" "$@"
