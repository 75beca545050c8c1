#!/usr/bin/env bash
# DeepSpeech2 on LibriSpeech with the defaults of TensorFlow's reference recipe
# (tensorflow/models research/deep_speech/run_deep_speech.sh + deep_speech.py):
#   1. import : the LibriSpeech archives found in $DATA_DIR are used, missing ones are
#               downloaded; FLAC -> 16 kHz WAV, one CSV per split
#   2. train  : --model deepspeech2 (2 convolutions, 5 bidirectional GRU layers of 800,
#               batch norm), spectrogram features with per-utterance normalisation,
#               batch 128, learning rate 5e-4, 10 epochs, SortaGrad then batch-wise
#               shuffling, every visible GPU (--num_gpus -1)
#   3. test   : test-clean, WER/CER report in $OUT_DIR/test.json
#
# --train_batch_size is per replica here (the reference divides its --batch_size by
# the GPU count): with N GPUs pass BATCH_SIZE=$((128 / N)) to keep its global 128.
# Resumable: the importer skips converted files, training resumes from the last
# checkpoint. On a CPU this takes weeks; see doc/TRAINING.rst for a smoke run
# (bin/run-ldc93s1.sh --model deepspeech2). Extra arguments go to DeepSpeech.py.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA_DIR=${DATA_DIR:-data/librispeech}     # archives, extracted source, wav/, CSVs
OUT_DIR=${OUT_DIR:-runs/deepspeech2}       # checkpoints, summaries, export, test.json
SPLITS=${SPLITS:-train-clean-100,train-clean-360,train-other-500,dev-clean,test-clean}
TRAIN=${TRAIN:-train-clean-100,train-clean-360,train-other-500}
BATCH_SIZE=${BATCH_SIZE:-128}              # reference: 128
LEARNING_RATE=${LEARNING_RATE:-0.0005}     # reference: 5e-4
EPOCHS=${EPOCHS:-10}                       # reference: 10
RNN_LAYERS=${RNN_LAYERS:-5}
RNN_HIDDEN_SIZE=${RNN_HIDDEN_SIZE:-800}
RNN_TYPE=${RNN_TYPE:-gru}
NUM_GPUS=${NUM_GPUS:--1}                   # -1: every visible GPU
LIMIT=${LIMIT:-0}                          # samples per set; 0 = all
WORKERS=${WORKERS:-$(nproc)}               # conversion processes

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3

"$PY" bin/import_librivox.py "$DATA_DIR" --download --splits "$SPLITS" \
  --workers "$WORKERS" --alphabet data/alphabet.txt --filter_alphabet

train_csvs=""
for split in ${TRAIN//,/ }; do
  train_csvs="${train_csvs:+$train_csvs,}$DATA_DIR/librivox-$split.csv"
done

"$PY" -u DeepSpeech.py \
  --model deepspeech2 \
  --rnn_layers "$RNN_LAYERS" --rnn_hidden_size "$RNN_HIDDEN_SIZE" --rnn_type "$RNN_TYPE" \
  --feature_type spectrogram --feature_normalization utterance \
  --train_files "$train_csvs" \
  --dev_files "$DATA_DIR/librivox-dev-clean.csv" \
  --test_files "$DATA_DIR/librivox-test-clean.csv" \
  --train_batch_size "$BATCH_SIZE" --dev_batch_size "$BATCH_SIZE" \
  --test_batch_size "$BATCH_SIZE" \
  --limit_train "$LIMIT" --limit_dev "$LIMIT" --limit_test "$LIMIT" \
  --learning_rate "$LEARNING_RATE" \
  --epochs "$EPOCHS" \
  --num_gpus "$NUM_GPUS" \
  --random_seed 1 \
  --feature_cache "$OUT_DIR/feature_cache" \
  --checkpoint_dir "$OUT_DIR/checkpoints" \
  --summary_dir "$OUT_DIR/summaries" \
  --export_dir "$OUT_DIR/export" --export_tflite \
  --test_output_file "$OUT_DIR/test.json" \
  "$@"
