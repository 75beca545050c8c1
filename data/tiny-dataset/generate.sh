#!/usr/bin/env bash
# How data/tiny-dataset/ was made (not run by CI or by bin/train-tiny-dataset.sh):
# sentences.tsv lists set, espeak-ng voice and sentence; each line becomes
# <set>/<set>_NN.wav (espeak-ng's 22.05 kHz output resampled to 16 kHz mono 16-bit by
# soxr) and a row of <set>.csv. Needs Debian's espeak-ng (apt-get install espeak-ng)
# and the project's Python environment (soxr, soundfile).
set -euo pipefail
cd "$(dirname "$0")/../.."
. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3
PY=$(command -v "$PY")
cd data/tiny-dataset
rm -rf train dev test train.csv dev.csv test.csv
declare -A count
while IFS=$'\t' read -r set voice sentence; do
  [ -n "$set" ] || continue
  n=$(( ${count[$set]:-0} + 1 )); count[$set]=$n
  mkdir -p "$set"
  out="$set/${set}_$(printf %02d "$n").wav"
  espeak-ng -v "$voice" -s 140 -w "$out.22k.wav" "$sentence"
  "$PY" - "$out.22k.wav" "$out" <<'PYEOF'
import sys
import soundfile
import soxr
audio, rate = soundfile.read(sys.argv[1], dtype="float32")
soundfile.write(sys.argv[2], soxr.resample(audio, rate, 16000), 16000, "PCM_16")
PYEOF
  rm "$out.22k.wav"
  [ -f "$set.csv" ] || echo "wav_filename,wav_filesize,transcript" > "$set.csv"
  echo "$out,$(stat -c %s "$out"),$sentence" >> "$set.csv"
done < sentences.tsv
