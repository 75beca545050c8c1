#!/usr/bin/env bash
# Smoke run: overfit the single LDC93S1 utterance, test on it with a small KenLM
# scorer built from data/lm/vocab.txt, export the model.
# The test phase prints the transcript. Extra arguments go to DeepSpeech.py ("$@").
set -euo pipefail
cd "$(dirname "$0")/.."

OUT_DIR=runs/ldc93s1
N_HIDDEN=100
EPOCHS=200
LEARNING_RATE=0.003
DROPOUT_RATE=0
LM_TOP_K=5000  # more than the 2559 distinct words of data/lm/vocab.txt: keep them all

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3

"$PY" bin/import_ldc93s1.py "$OUT_DIR"

# A small scorer from data/lm/vocab.txt (it holds the LDC93S1 sentence): KenLM tools
# (built once into tools/kenlm/bin), a 3-gram LM, then the .scorer package.
bash data/lm/build_kenlm.sh
"$PY" data/lm/generate_lm.py \
  --input_txt data/lm/vocab.txt \
  --output_dir "$OUT_DIR/lm" \
  --top_k "$LM_TOP_K" \
  --arpa_order 3 \
  --max_arpa_memory 64M \
  --binary_type trie \
  --discount_fallback \
  --alphabet data/alphabet.txt \
  --show_progressbar false
"$PY" native_client/generate_scorer_package.py \
  --alphabet data/alphabet.txt \
  --lm "$OUT_DIR/lm/lm.binary" \
  --vocab "$OUT_DIR/lm/vocab-$LM_TOP_K.txt" \
  --package "$OUT_DIR/kenlm.scorer"

# --max_epochs: a re-run after an interruption resumes up to this total (--epochs
# alone means this many more, DeepSpeech 0.9's meaning).
"$PY" -u DeepSpeech.py \
  --train_files "$OUT_DIR/ldc93s1.csv" \
  --test_files "$OUT_DIR/ldc93s1.csv" \
  --train_batch_size 1 \
  --test_batch_size 1 \
  --n_hidden "$N_HIDDEN" \
  --epochs "$EPOCHS" --max_epochs "$EPOCHS" \
  --learning_rate "$LEARNING_RATE" \
  --dropout_rate "$DROPOUT_RATE" \
  --checkpoint_dir "$OUT_DIR/checkpoints" \
  --export_dir "$OUT_DIR/export" \
  --summary_dir "$OUT_DIR/summaries" \
  --show_progressbar=false \
  --report_count 1 \
  --scorer_path "$OUT_DIR/kenlm.scorer" \
  "$@"
