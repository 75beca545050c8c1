#!/usr/bin/env bash
# The tiny-dataset demo (as the Russian DeepSpeech's): train on data/tiny-dataset/
# (Russian, separate train/dev/test sets), validate every epoch, stop early when the dev
# loss stops improving, then test with a KenLM scorer built from the training text.
# Minutes on a laptop CPU. Extra arguments go to DeepSpeech.py ("$@").
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=data/tiny-dataset
ALPHABET=data/russian_sample/alphabet.ru
OUT_DIR=${OUT_DIR:-runs/tiny-dataset}

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3

# The language model: a 3-gram of the training transcripts, packaged as a scorer.
mkdir -p "$OUT_DIR/lm"
"$PY" -c 'import csv, sys; [print(r["transcript"]) for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))]' \
  "$DATA/train.csv" > "$OUT_DIR/lm/train.txt"
bash data/lm/build_kenlm.sh
"$PY" data/lm/generate_lm.py \
  --input_txt "$OUT_DIR/lm/train.txt" \
  --output_dir "$OUT_DIR/lm" \
  --top_k 1000 \
  --arpa_order 3 \
  --max_arpa_memory 64M \
  --binary_type trie \
  --discount_fallback \
  --alphabet "$ALPHABET" \
  --show_progressbar false
"$PY" native_client/generate_scorer_package.py \
  --alphabet "$ALPHABET" \
  --lm "$OUT_DIR/lm/lm.binary" \
  --vocab "$OUT_DIR/lm/vocab-1000.txt" \
  --package "$OUT_DIR/kenlm.scorer"

# --max_epochs: a re-run after an interruption resumes up to this total (--epochs
# alone means this many more, DeepSpeech 0.9's meaning).
"$PY" -u DeepSpeech.py \
  --train_files "$DATA/train.csv" \
  --dev_files "$DATA/dev.csv" \
  --test_files "$DATA/test.csv" \
  --alphabet_config_path "$ALPHABET" \
  --train_batch_size 4 \
  --dev_batch_size 3 \
  --test_batch_size 3 \
  --n_hidden 64 \
  --epochs 200 --max_epochs 200 \
  --learning_rate 0.003 \
  --dropout_rate 0.1 \
  --early_stop \
  --es_epochs 4 \
  --es_min_delta 0.05 \
  --checkpoint_dir "$OUT_DIR/checkpoints" \
  --summary_dir "$OUT_DIR/summaries" \
  --scorer_path "$OUT_DIR/kenlm.scorer" \
  --report_count 3 \
  "$@"
