#!/usr/bin/env bash
# How data/own_data_sample/recordings/ was made (not run by CI or by the walkthrough):
# six synthetic "speakers", five utterances each, from sentences.txt. Four flite voices
# (16 kHz) and two espeak-ng voices (22.05 kHz, so the importer has something to
# resample). Needs Debian's flite and espeak-ng packages:
#   apt-get install flite espeak-ng
# Line k of sentences.txt goes to speaker k % 6 as utterance k / 6, so every speaker
# says different sentences. The .txt files keep the sentences' capitals and
# punctuation, as real transcripts do; the importer's --normalize removes them.
set -euo pipefail
cd "$(dirname "$0")"
speakers=(flite:kal flite:awb flite:rms flite:slt espeak:en-us+m3 espeak:en-gb+f2)
names=(kal awb rms slt enus engb)
rm -rf recordings
k=0
while IFS= read -r sentence; do
  [ -n "$sentence" ] || continue
  s=$((k % 6)); n=$((k / 6 + 1))
  dir="recordings/${names[$s]}"; mkdir -p "$dir"
  out="$dir/${names[$s]}_$(printf %02d "$n")"
  engine=${speakers[$s]%%:*}; voice=${speakers[$s]#*:}
  if [ "$engine" = flite ]; then
    flite -voice "$voice" -t "$sentence" -o "$out.wav"
  else
    espeak-ng -v "$voice" -s 150 -w "$out.wav" "$sentence"
  fi
  printf '%s\n' "$sentence" > "$out.txt"
  k=$((k + 1))
done < sentences.txt
