#!/usr/bin/env python3
"""WER/CER of an exported ``.tflite`` model on CSV test sets, through the client.

    python evaluate_tflite.py --model export/output_graph.tflite \
        --scorer kenlm.scorer --csv test.csv[,other.csv] --proc 2

Each worker process loads the model (and scorer) once and transcribes files with the
``deepspeech`` client exactly as users do, so this measures what users get (int8
models included). CSV columns as for training (``wav_filename,...,transcript``;
relative paths resolve against the CSV's directory). Corpus WER/CER as
util/evaluate_tools.py: total edit distance / total reference length.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from ctcdecode.pool import WorkerPool
from util.evaluate_tools import char_errors, word_errors  # no TensorFlow
from util.samples import read_csv_rows


class Transcriber:
    """One client Model per worker process, loaded on its first file (it cannot be
    pickled; the settings can)."""

    def __init__(
        self,
        model_path: str,
        scorer: Optional[str],
        beam_width: Optional[int],
        alpha: Optional[float],
        beta: Optional[float],
    ) -> None:
        self.settings = (model_path, scorer, beam_width, alpha, beta)
        self._model = None

    def __getstate__(self) -> Dict[str, object]:
        return {"settings": self.settings, "_model": None}

    def _load(self):
        import deepspeech

        model_path, scorer, beam_width, alpha, beta = self.settings
        model = deepspeech.Model(model_path, num_threads=1)
        if beam_width:
            model.setBeamWidth(beam_width)
        if scorer:
            model.enableExternalScorer(scorer)
            if alpha is not None and beta is not None:
                model.setScorerAlphaBeta(alpha, beta)
        return model

    def transcribe(self, path: str, reference: str) -> Dict[str, object]:
        from deepspeech.audio import read_audio

        if self._model is None:
            self._model = self._load()
        audio, _ = read_audio(path, self._model.sampleRate())
        return {"wav_filename": path, "src": reference, "res": self._model.stt(audio)}


def read_csv(path: str) -> List[Tuple[str, str]]:
    """(absolute audio path, transcript) rows of a DeepSpeech CSV."""
    return [(r.wav_filename, r.transcript) for r in read_csv_rows(path)]


def score(results: Sequence[Dict[str, object]]) -> Tuple[float, float]:
    """Corpus (WER, CER)."""
    words = [word_errors(str(r["src"]), str(r["res"])) for r in results]
    chars = [char_errors(str(r["src"]), str(r["res"])) for r in results]
    wer = sum(d for d, _ in words) / max(1, sum(n for _, n in words))
    cer = sum(d for d, _ in chars) / max(1, sum(n for _, n in chars))
    return wer, cer


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="exported .tflite model")
    p.add_argument("--scorer", help=".scorer package (default: no LM)")
    p.add_argument("--csv", required=True, help="comma-separated test CSV files")
    p.add_argument("--proc", type=int, default=os.cpu_count(), help="processes")
    p.add_argument("--beam_width", type=int, help="default: the model's")
    p.add_argument("--lm_alpha", type=float)
    p.add_argument("--lm_beta", type=float)
    p.add_argument("--dump", help="write per-file results as JSON here")
    args = p.parse_args(argv)
    worker = Transcriber(
        args.model, args.scorer, args.beam_width, args.lm_alpha, args.lm_beta
    )
    all_results = {}
    with WorkerPool(worker, args.proc) as pool:
        for csv_path in filter(None, args.csv.split(",")):
            results = pool.map("transcribe", read_csv(csv_path))
            wer, cer = score(results)
            print(f"{csv_path}: {len(results)} files, WER {wer:.4f}, CER {cer:.4f}")
            all_results[csv_path] = results
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as out:
            json.dump(all_results, out, indent=2, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
