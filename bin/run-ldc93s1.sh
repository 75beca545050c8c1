#!/usr/bin/env bash
# Smoke run: overfit the single LDC93S1 utterance, test on it with a small KenLM
# scorer built from data/lm/vocab.txt, export the model.
# The test phase prints the transcript. Extra arguments go to DeepSpeech.py ("$@"),
# after the settings below, so they override them.
#
#   bin/run-ldc93s1.sh --model deepspeech2    # DeepSpeech2 CPU smoke mode: 2 GRU
#       layers of 128, spectrogram features; a few minutes on a laptop CPU
#   bin/run-ldc93s1.sh --feature_type fbank --feature_normalization utterance
#       # DS1 on 80 log mel filterbank energies (unnormalised they train poorly)
#   bin/run-ldc93s1.sh --bytes_output_mode    # UTF-8 bytes output (300 epochs) with a
#       bytes-mode character scorer built from the same text
set -euo pipefail
cd "$(dirname "$0")/.."

OUT_DIR=${OUT_DIR:-runs/ldc93s1}
N_HIDDEN=100
EPOCHS=200
LEARNING_RATE=0.003
DROPOUT_RATE=0
# --model deepspeech2: small widths (the reference's 5 x 800 takes hours here), and a
# batch-norm decay short enough for the moving averages to follow a short run.
MODEL_ARGS=()
BYTES_OUTPUT_MODE=0
for arg in "$@"; do
  case "$arg" in
    deepspeech2 | --model=deepspeech2)
      MODEL_ARGS=(--rnn_layers 2 --rnn_hidden_size 128 --batch_norm_decay 0.9)
      EPOCHS=100
      LEARNING_RATE=0.002
      ;;
    --bytes_output_mode | --bytes_output_mode=true)
      BYTES_OUTPUT_MODE=1
      EPOCHS=300  # bytes are longer labels: 200 epochs leave a few wrong
      MODEL_ARGS=(--beam_width 256)  # bytes-mode scorers are slower (doc/DECODER.rst)
      ;;
  esac
done
LM_TOP_K=5000  # more than the 2559 distinct words of data/lm/vocab.txt: keep them all

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3

"$PY" bin/import_ldc93s1.py "$OUT_DIR"

# A small scorer from data/lm/vocab.txt (it holds the LDC93S1 sentence): KenLM tools
# (built once into tools/kenlm/bin), a 3-gram LM, then the .scorer package.
# In bytes output mode the LM is a character LM (DeepSpeech 0.9's bytes scorers): the
# same text with a space between characters, packaged with --force_bytes_output_mode.
bash data/lm/build_kenlm.sh
LM_TEXT=data/lm/vocab.txt
PACKAGE_ARGS=(--alphabet data/alphabet.txt)
if [ "$BYTES_OUTPUT_MODE" = 1 ]; then
  mkdir -p "$OUT_DIR/lm"
  LM_TEXT="$OUT_DIR/lm/characters.txt"
  "$PY" -c 'import sys
for line in open(sys.argv[1], encoding="utf-8"):
    print(" ".join(line.split()).replace(" ", "").replace("", " ").strip())' \
    data/lm/vocab.txt > "$LM_TEXT"
  PACKAGE_ARGS=(--force_bytes_output_mode)
fi
"$PY" data/lm/generate_lm.py \
  --input_txt "$LM_TEXT" \
  --output_dir "$OUT_DIR/lm" \
  --top_k "$LM_TOP_K" \
  --arpa_order 3 \
  --max_arpa_memory 64M \
  --binary_type trie \
  --discount_fallback \
  --alphabet data/alphabet.txt \
  --show_progressbar false
"$PY" native_client/generate_scorer_package.py \
  "${PACKAGE_ARGS[@]}" \
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
  ${MODEL_ARGS[@]+"${MODEL_ARGS[@]}"} \
  "$@"
