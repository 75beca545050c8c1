#!/usr/bin/env bash
# The doc/OWN_DATA.rst walkthrough as one script: from a folder of recordings with
# transcripts (data/own_data_sample/recordings) to a tested, exported model that the
# deepspeech client runs. The page shows its steps between the "# [step]" markers;
# tests/test_own_data.py runs it with a tiny model (EPOCHS=2 N_HIDDEN=16 N_TRIALS=3)
# so every command on the page keeps working. Run from anywhere:
#   bin/run-own-data-example.sh            # OUT=runs/own_data, about 3 minutes on 2 cores
# Extra arguments go to the training command ("$@").
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/own_data}
EPOCHS=${EPOCHS:-200}
N_HIDDEN=${N_HIDDEN:-256}
N_TRIALS=${N_TRIALS:-100}

. bin/_python.sh  # sets PY

# [import]
"$PY" bin/import_dir.py "$OUT/data" \
  --archive data/own_data_sample/recordings \
  --alphabet data/alphabet.txt --normalize \
  --dev_percent 15 --test_percent 15 --speaker_from parent --seed 1 \
  --no-show_progressbar
# [import-end]

# [check]
"$PY" bin/check_characters.py --alphabet data/alphabet.txt \
  --csv "$OUT/data/train.csv,$OUT/data/dev.csv,$OUT/data/test.csv"
# [check-end]

# [scorer]
bash data/lm/build_kenlm.sh
"$PY" data/lm/generate_lm.py \
  --input_txt data/own_data_sample/text.txt --output_dir "$OUT/lm" \
  --top_k 1000 --arpa_order 3 --max_arpa_memory 64M --binary_type trie \
  --discount_fallback --alphabet data/alphabet.txt --show_progressbar false
"$PY" native_client/generate_scorer_package.py \
  --alphabet data/alphabet.txt --lm "$OUT/lm/lm.binary" \
  --vocab "$OUT/lm/vocab-1000.txt" --package "$OUT/own.scorer"
# [scorer-end]

# [train]
# --max_epochs: a re-run after an interruption resumes up to this total (--epochs
# alone means this many more, DeepSpeech 0.9's meaning).
"$PY" -u DeepSpeech.py \
  --train_files "$OUT/data/train.csv" --dev_files "$OUT/data/dev.csv" \
  --checkpoint_dir "$OUT/checkpoints" --summary_dir "$OUT/summaries" \
  --feature_cache "$OUT/feature_cache" \
  --n_hidden "$N_HIDDEN" --dropout_rate 0.2 \
  --train_batch_size 4 --dev_batch_size 4 --learning_rate 0.001 \
  --epochs "$EPOCHS" --max_epochs "$EPOCHS" --early_stop --es_epochs 30 \
  --reduce_lr_on_plateau --plateau_epochs 15 \
  --show_progressbar=false "$@"
# [train-end]

# [tune]
"$PY" lm_optimizer.py \
  --test_files "$OUT/data/dev.csv" --checkpoint_dir "$OUT/checkpoints" \
  --scorer_path "$OUT/own.scorer" --n_trials "$N_TRIALS" --write_scorer_defaults \
  --beam_width 256
# [tune-end]

# [test]
"$PY" -u DeepSpeech.py \
  --test_files "$OUT/data/test.csv" --checkpoint_dir "$OUT/checkpoints" \
  --scorer_path "$OUT/own.scorer" --test_batch_size 4 --report_count 3 \
  --show_progressbar=false
# [test-end]

# [export]
"$PY" -u DeepSpeech.py \
  --checkpoint_dir "$OUT/checkpoints" --export_dir "$OUT/export" --export_tflite \
  --export_model_name own-data-example --export_language en-US
# [export-end]

# [client]
DEEPSPEECH=$(dirname "$PY")/deepspeech  # installed with the project (pip install -e .)
[ -x "$DEEPSPEECH" ] || DEEPSPEECH=deepspeech  # or alone: pip install ./native_client/python
"$DEEPSPEECH" --model "$OUT/export/output_graph.tflite" --scorer "$OUT/own.scorer" \
  --audio data/own_data_sample/recordings/slt/slt_01.wav \
  data/own_data_sample/recordings/awb/awb_01.wav
# [client-end]
