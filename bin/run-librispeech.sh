#!/usr/bin/env bash
# LibriSpeech pipeline in the style of TensorFlow's DeepSpeech2 benchmark
# (tensorflow/models research/deep_speech/run_deep_speech.sh):
#   1. import  : download (or reuse) the archives, convert FLAC -> 16 kHz WAV, write CSVs
#   2. train   : train-clean-100 + train-clean-360, dev-clean for early stopping
#   3. test    : test-clean, WER/CER report in $OUT_DIR/test.json
#
# Defaults are for one GPU with >= 16 GB (install tensorflow[and-cuda], see
# doc/BUILDING.rst): n_hidden 2048, batch 32/32/32, 30 epochs, early stopping on dev.
# On CPU this runs for weeks; try LIMIT=1000 EPOCHS=1 N_HIDDEN=256 for a smoke run.
# Everything is resumable: the importer skips converted files and training resumes
# from the last checkpoint. Extra arguments go to DeepSpeech.py ("$@"), e.g.
#   bin/run-librispeech.sh --scorer_path data/lm/kenlm.scorer
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${DATA_DIR:-data/librispeech}     # archives, extracted source, wav/, CSVs
OUT_DIR=${OUT_DIR:-runs/librispeech}       # checkpoints, summaries, export, test.json
N_HIDDEN=${N_HIDDEN:-2048}
EPOCHS=${EPOCHS:-30}
BATCH_SIZE=${BATCH_SIZE:-32}
LEARNING_RATE=${LEARNING_RATE:-0.0001}
DROPOUT_RATE=${DROPOUT_RATE:-0.15}
MAX_DURATION=${MAX_DURATION:-0}            # s; 0 keeps every utterance (<= 35 s)
LIMIT=${LIMIT:-0}                          # samples per set; 0 = all
WORKERS=${WORKERS:-$(nproc)}               # conversion processes

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3

# 1. Import: archives already in $DATA_DIR are used, missing ones downloaded (~30 GB).
"$PY" bin/import_librivox.py "$DATA_DIR" --download \
  --splits train-clean-100,train-clean-360,dev-clean,test-clean \
  --workers "$WORKERS" --max_duration "$MAX_DURATION" \
  --alphabet data/alphabet.txt --filter_alphabet

# 2. Train and 3. test (the test phase runs after training in the same command).
# --max_epochs: a re-run after an interruption resumes up to this total (--epochs
# alone means this many more, DeepSpeech 0.9's meaning).
"$PY" -u DeepSpeech.py \
  --train_files "$DATA_DIR/librivox-train-clean-100.csv,$DATA_DIR/librivox-train-clean-360.csv" \
  --dev_files "$DATA_DIR/librivox-dev-clean.csv" \
  --test_files "$DATA_DIR/librivox-test-clean.csv" \
  --train_batch_size "$BATCH_SIZE" \
  --dev_batch_size "$BATCH_SIZE" \
  --test_batch_size "$BATCH_SIZE" \
  --limit_train "$LIMIT" --limit_dev "$LIMIT" --limit_test "$LIMIT" \
  --n_hidden "$N_HIDDEN" \
  --epochs "$EPOCHS" --max_epochs "$EPOCHS" \
  --learning_rate "$LEARNING_RATE" \
  --dropout_rate "$DROPOUT_RATE" \
  --early_stop --es_epochs 5 \
  --feature_cache "$OUT_DIR/feature_cache" \
  --checkpoint_dir "$OUT_DIR/checkpoints" \
  --summary_dir "$OUT_DIR/summaries" \
  --export_dir "$OUT_DIR/export" \
  --test_output_file "$OUT_DIR/test.json" \
  "$@"
