"""The test pass (WER/CER per test set) and one-shot inference from a checkpoint.

Decoding is greedy CTC (best path) without ``--scorer_path``; with it, CTC beam search
scored by the package's KenLM model, a test batch decoded in parallel processes
(native_client/ctcdecode/decoder.py, doc/DECODER.rst).
"""

from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from ctcdecode import Alphabet, BatchDecoder, BeamOptions, Scorer
from util.audio import read_audio
from util.config import Config, DecoderConfig
from util.ctc import greedy_decode
from util.evaluate_tools import SetReport, make_sample_result
from util.features import compute_mfcc
from util.feeding import batch_plan, make_dataset
from util.progress import Progress
from util.samples import SampleSet
from util.steps import Steps


def decode(probs: np.ndarray, length: int, alphabet: Alphabet) -> str:
    """Text of one utterance. probs : float32 [T, n_classes]."""
    return alphabet.decode(greedy_decode(probs, length))


def load_scorer(cfg: DecoderConfig, alphabet: Alphabet) -> Optional[Scorer]:
    """The ``--scorer_path`` scorer, checked against ``alphabet``; None without one.

    Raises ScorerError (a ValueError) for a missing, corrupt or other-alphabet scorer,
    so DeepSpeech.py can call it before training starts.
    """
    if cfg.scorer_path is None:
        return None
    scorer = Scorer(cfg.lm_alpha, cfg.lm_beta, cfg.scorer_path, alphabet)
    logging.info(
        "beam search (width %d) with scorer %s: lm_alpha %g, lm_beta %g",
        cfg.beam_width, cfg.scorer_path, scorer.alpha, scorer.beta,
    )  # fmt: skip
    return scorer


def make_decoder(cfg: DecoderConfig, alphabet: Alphabet) -> Optional[BatchDecoder]:
    """Beam search decoder with the scorer, or None for greedy decoding. Close it."""
    scorer = load_scorer(cfg, alphabet)
    if scorer is None:
        return None
    options = BeamOptions(cfg.beam_width, cfg.cutoff_prob, cfg.cutoff_top_n)
    return BatchDecoder(alphabet, options, scorer, None, cfg.decoder_processes)


def decode_batch(
    decoder: Optional[BatchDecoder],
    probs: np.ndarray,
    lengths: Sequence[int],
    alphabet: Alphabet,
) -> List[str]:
    """Transcripts of a batch. probs : float32 [B, T, n_classes]; lengths : [B]."""
    if decoder is None:
        return [decode(row, int(n), alphabet) for row, n in zip(probs, lengths)]
    results = decoder.decode(list(probs), [int(n) for n in lengths])
    return [hyps[0].text if hyps else "" for hyps in results]


def test_set(
    steps: Steps,
    sample_set: SampleSet,
    cfg: Config,
    alphabet: Alphabet,
    decoder: Optional[BatchDecoder] = None,
) -> SetReport:
    """Decode every sample of one set (greedy, or with ``decoder``) and score it."""
    samples = list(sample_set.samples)
    plan = batch_plan(
        samples, cfg.data.test_batch_size, 0, 0, False, cfg.data.reverse_test
    )
    results = []
    progress = Progress(
        f"Test {sample_set.name}", len(plan), cfg.train.show_progressbar
    )
    for n, batch in enumerate(make_dataset(samples, plan, cfg.features), 1):
        losses, probs = steps.eval_step(batch)
        lengths = batch["features_len"].numpy()
        texts = decode_batch(decoder, probs.numpy(), lengths, alphabet)
        for row, index in enumerate(batch["index"].numpy()):
            sample = samples[index]
            text = texts[row]
            results.append(
                make_sample_result(
                    sample.wav_filename, sample.transcript, text, float(losses[row])
                )
            )
        progress.update(n)
    progress.finish()
    return SetReport(sample_set.name, tuple(results))


def run_tests(
    steps: Steps, sample_sets: Sequence[SampleSet], cfg: Config, alphabet: Alphabet
) -> List[SetReport]:
    decoder = make_decoder(cfg.decoder, alphabet)
    try:
        reports = [test_set(steps, s, cfg, alphabet, decoder) for s in sample_sets]
    finally:
        if decoder is not None:
            decoder.close()
    for report in reports:
        logging.info(
            "Test on %s - WER: %f, CER: %f, loss: %f",
            report.name,
            report.wer,
            report.cer,
            report.mean_loss,
        )
    return reports


def transcribe_file(steps: Steps, path: str, cfg: Config, alphabet: Alphabet) -> str:
    """Transcript of one audio file (any format/rate/channels util/audio.py reads)."""
    samples, conversion = read_audio(path, cfg.features.audio_sample_rate)
    if conversion.resampled or conversion.downmixed:
        logging.info(
            "%s: converted from %d Hz, %d channel(s)",
            path,
            conversion.source_rate,
            conversion.source_channels,
        )
    features, features_len = compute_mfcc(tf.constant(samples), cfg.features)
    logits = steps.model(features[tf.newaxis], features_len[tf.newaxis], training=False)
    probs = tf.nn.softmax(logits)[0].numpy()
    decoder = make_decoder(cfg.decoder, alphabet)
    try:
        texts = decode_batch(decoder, probs[np.newaxis], [int(features_len)], alphabet)
        return texts[0]
    finally:
        if decoder is not None:
            decoder.close()
