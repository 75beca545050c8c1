#!/usr/bin/env python3
"""CTC decoder speed in CPU s per audio s: ours (flashlight-text) vs pyctcdecode.

    .venv/bin/python bench/decoder_speed.py                 # beams 100 500 1024
    .venv/bin/python bench/decoder_speed.py --beams 100 --n_utterances 4

Emissions are synthetic but shaped like a trained model's: sentences from
data/lm/vocab.txt, each character held for 1-3 frames (20 ms) with 0-3 blank frames
between characters, logits = N(0, sigma) noise + a peak on the path label, softmax.
Both decoders get the same probabilities and the same KenLM binary, built from
data/lm/vocab.txt with data/lm/generate_lm.py (needs ``make kenlm``), with the same
alpha/beta (both convert KenLM's log10 to natural log). pyctcdecode runs with its
defaults (beam_prune_logp -10, token_min_logp -5); it is only a dev dependency:
``pip install --no-deps pyctcdecode==0.5.0 pygtrie==2.6.2`` (its metadata pins
numpy<2, which it does not need).

Reported: CPU s per audio s of one process (``time.process_time``), and wall s per
audio s of the 2-process batch decoder (ours; its CPU time is in the children).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Sequence, Tuple

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ctcdecode import (  # noqa: E402
    Alphabet,
    BatchDecoder,
    BeamOptions,
    Scorer,
    ctc_beam_search_decoder,
)
from util.evaluate_tools import word_errors  # noqa: E402  (pure numpy, no TensorFlow)

FRAME_S = 0.02  # s of audio per output frame (20 ms feature step)
ALPHA, BETA = 0.931289039105002, 1.1834137581510284


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beams", type=int, nargs="+", default=[100, 500, 1024])
    parser.add_argument("--n_utterances", type=int, default=8)
    parser.add_argument("--words_per_utterance", type=int, default=14)
    parser.add_argument("--sigma", type=float, default=1.5, help="logit noise")
    parser.add_argument(
        "--peak", type=float, default=6.5, help="logit of the path label"
    )
    parser.add_argument("--cutoff_top_n", type=int, default=40)
    parser.add_argument(
        "--beam_threshold", type=float, default=50.0, help="ours: nats below the best"
    )
    parser.add_argument("--lm_dir", default="", help="dir with lm.binary + vocab-*.txt")
    parser.add_argument("--no_pyctcdecode", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_lm(lm_dir: str) -> Tuple[str, List[str]]:
    """(lm.binary, vocabulary) from ``lm_dir``, building it there if it is empty."""
    if not os.path.exists(os.path.join(lm_dir, "lm.binary")):
        subprocess.run(
            [sys.executable, os.path.join(REPO_ROOT, "data", "lm", "generate_lm.py"),
             "--input_txt", os.path.join(REPO_ROOT, "data", "lm", "vocab.txt"),
             "--output_dir", lm_dir, "--top_k", "500000", "--arpa_order", "3",
             "--max_arpa_memory", "256M", "--binary_type", "trie",
             "--discount_fallback", "--show_progressbar", "false"],
            check=True, capture_output=True,
        )  # fmt: skip
    vocab_file = [f for f in os.listdir(lm_dir) if f.startswith("vocab-")][0]
    with open(os.path.join(lm_dir, vocab_file), encoding="utf-8") as fin:
        vocab = fin.read().split()
    return os.path.join(lm_dir, "lm.binary"), vocab


def make_emissions(
    args: argparse.Namespace, alphabet: Alphabet, vocab: Sequence[str]
) -> Tuple[List[np.ndarray], List[str]]:
    """(softmax probs float32 [T, n_classes], transcript) per utterance."""
    rng = np.random.default_rng(args.seed)
    out, texts = [], []
    for _ in range(args.n_utterances):
        words = rng.choice(np.array(vocab), size=args.words_per_utterance)
        texts.append(" ".join(words))
        path: List[int] = []
        for label in alphabet.encode(" ".join(words)):
            path += [alphabet.blank_index] * int(rng.integers(0, 4))
            path += [label] * int(rng.integers(1, 4))
        path += [alphabet.blank_index] * 5
        logits = rng.normal(0.0, args.sigma, (len(path), alphabet.n_classes))
        logits[np.arange(len(path)), path] += args.peak
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append((probs / probs.sum(axis=1, keepdims=True)).astype(np.float32))
    return out, texts


def cpu_per_audio_s(
    fn: Callable[[np.ndarray], str], utts: List[np.ndarray], texts: List[str]
) -> Tuple[float, float]:
    """(CPU s per audio s, WER) of decoding ``utts`` one by one with ``fn``."""
    audio_s = sum(len(u) for u in utts) * FRAME_S
    start = time.process_time()
    hyps = [fn(probs) for probs in utts]
    cpu = time.process_time() - start
    errors = [word_errors(ref, hyp) for ref, hyp in zip(texts, hyps)]
    return cpu / audio_s, sum(e for e, _ in errors) / sum(n for _, n in errors)


def pool_wall_per_audio_s(decoder: BatchDecoder, utts: List[np.ndarray]) -> float:
    decoder.decode(utts[:2], [len(u) for u in utts[:2]])  # start the workers first
    audio_s = sum(len(u) for u in utts) * FRAME_S
    start = time.perf_counter()
    decoder.decode(utts, [len(u) for u in utts])
    return (time.perf_counter() - start) / audio_s


def pyctcdecode_fn(alphabet: Alphabet, lm_path: str, vocab: Sequence[str], beam: int):
    from pyctcdecode import build_ctcdecoder

    labels = list(alphabet.symbols) + [""]  # "" is pyctcdecode's blank; ours is last
    kwargs = {} if lm_path is None else dict(kenlm_model_path=lm_path, unigrams=vocab)
    decoder = build_ctcdecoder(labels, alpha=ALPHA, beta=BETA, **kwargs)
    return lambda probs: decoder.decode(
        np.log(np.maximum(probs, 1e-30)), beam_width=beam
    )


def greedy_wer(utts: List[np.ndarray], texts: List[str], alphabet: Alphabet) -> float:
    from ctcdecode import ctc_greedy_decoder

    return cpu_per_audio_s(lambda p: ctc_greedy_decoder(p, alphabet).text, utts, texts)[
        1
    ]


def main() -> None:
    args = parse_args()
    alphabet = Alphabet(os.path.join(REPO_ROOT, "data", "alphabet.txt"))
    lm_dir = args.lm_dir or os.path.join(tempfile.gettempdir(), "bench-decoder-lm")
    os.makedirs(lm_dir, exist_ok=True)
    lm_path, vocab = build_lm(lm_dir)
    utts, texts = make_emissions(args, alphabet, vocab)
    audio_s = sum(len(u) for u in utts) * FRAME_S
    print(
        f"{len(utts)} utterances, {audio_s:.1f} s of audio, {len(vocab)} words, "
        f"cutoff_top_n {args.cutoff_top_n}, greedy WER "
        f"{greedy_wer(utts, texts, alphabet):.3f}"
    )
    print(
        "| beam | scorer | ours 1 proc (CPU s/audio s) | ours 2 procs (wall s/audio s) "
        "| pyctcdecode (CPU s/audio s) | pyctcdecode / ours | WER ours "
        "| WER pyctcdecode |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for beam in args.beams:
        for with_lm in (False, True):
            scorer = (
                Scorer.from_lm(ALPHA, BETA, lm_path, vocab, alphabet)
                if with_lm
                else None
            )
            if scorer is not None:
                scorer.parts()  # load the LM and build the trie outside the timing
            ours, wer = cpu_per_audio_s(
                lambda p: ctc_beam_search_decoder(
                    p,
                    alphabet,
                    beam,
                    cutoff_top_n=args.cutoff_top_n,
                    scorer=scorer,
                    beam_threshold=args.beam_threshold,
                )[0].text,
                utts,
                texts,
            )
            options = BeamOptions(
                beam, cutoff_top_n=args.cutoff_top_n, beam_threshold=args.beam_threshold
            )
            with BatchDecoder(alphabet, options, scorer, None, 2) as decoder:
                pool = pool_wall_per_audio_s(decoder, utts)
            peer = ratio = peer_wer = "n/a"
            if not args.no_pyctcdecode:
                fn = pyctcdecode_fn(alphabet, lm_path if with_lm else None, vocab, beam)
                peer_v, peer_w = cpu_per_audio_s(fn, utts, texts)
                peer, ratio = f"{peer_v:.4f}", f"{peer_v / ours:.1f}x"
                peer_wer = f"{peer_w:.3f}"
            print(
                f"| {beam} | {'yes' if with_lm else 'no'} | {ours:.4f} | {pool:.4f} "
                f"| {peer} | {ratio} | {wer:.3f} | {peer_wer} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
