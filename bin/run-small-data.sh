#!/usr/bin/env bash
# The small-data recipe: DeepSpeech.py with the flags that made models generalise to
# voices they never heard on bench/accuracy (a few hundred sentences, ~20 voices); what
# each flag bought is in doc/ACCURACY.rst. Pass your data and anything to override:
#   bin/run-small-data.sh --train_files train.csv --dev_files dev.csv \
#       --test_files test.csv --checkpoint_dir runs/mine
# Later flags win, so e.g. "--n_hidden 1024" after these replaces the recipe's width.
# bench/accuracy/run.py reads SMALL_DATA_FLAGS from this file: keep one flag (and its
# value) per line.
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL_DATA_FLAGS=(
  --feature_normalization utterance
  --n_hidden 512
  --dropout_rate 0.3
  --learning_rate 0.001
  --epochs 30
)

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3
echo "run-small-data.sh: ${SMALL_DATA_FLAGS[*]} $*" >&2
exec "$PY" DeepSpeech.py "${SMALL_DATA_FLAGS[@]}" "$@"
