"""The test pass (WER/CER per test set) and one-shot inference from a checkpoint.

Decoding is greedy CTC (best path) without ``--scorer_path``; with it, CTC beam search
scored by the package's KenLM model, a test batch decoded in parallel processes
(native_client/ctcdecode/decoder.py, doc/DECODER.rst).
"""

from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from ctcdecode import Alphabet, BatchDecoder, BeamOptions, Scorer, ctc_greedy_decoder
from util.audio import read_audio
from util.config import Config, DecoderConfig
from util.evaluate_tools import SetReport, make_sample_result
from util.features import compute_features
from util.feeding import batch_plan, make_dataset
from util.progress import Progress
from util.samples import Sample, SampleSet
from util.steps import Steps


def decode(probs: np.ndarray, length: int, alphabet: Alphabet) -> str:
    """Greedy (best path) text of one utterance. probs : float32 [T, n_classes]."""
    return ctc_greedy_decoder(probs, alphabet, length).text


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
    decoder: Optional[BatchDecoder], probs: Sequence[np.ndarray], alphabet: Alphabet
) -> List[str]:
    """Transcripts of a batch. probs[i] : float32 [T_i, n_classes], valid frames."""
    if decoder is None:
        return [decode(p, len(p), alphabet) for p in probs]
    results = decoder.decode(list(probs), [len(p) for p in probs])
    return [hyps[0].text if hyps else "" for hyps in results]


@dataclass(frozen=True)
class Prediction:
    """The acoustic model's output for one sample. probs : float32 [T, n_classes]
    (valid frames only); loss: its CTC loss."""

    sample: Sample
    probs: np.ndarray
    loss: float


def predict(
    steps: Steps, samples: Sequence[Sample], cfg: Config, label: str = "Predict"
) -> Iterator[List[Prediction]]:
    """Run the acoustic model over ``samples``, one batch at a time: the one loop.

    Yields the batch's Predictions (``--test_batch_size``, ``--reverse_test`` order;
    each carries its Sample), leaving out samples whose audio does not decode (one
    warning at the end names them; see util/feeding.py). The test pass and
    lm_optimizer.py both use it. Progress is shown under ``label`` (a bar with
    ``--show_progressbar``).
    """
    samples = list(samples)
    plan = batch_plan(
        samples, cfg.data.test_batch_size, 0, 0, False, cfg.data.reverse_test
    )
    progress = Progress(label, len(plan), cfg.train.show_progressbar)
    undecodable: List[str] = []
    for n, batch in enumerate(make_dataset(samples, plan, cfg.features), 1):
        losses, probs = steps.eval_step(batch)
        losses, probs = losses.numpy(), probs.numpy()
        lengths = cfg.model.output_frames(batch["features_len"].numpy())
        index = batch["index"].numpy()
        skipped = batch["skipped"].numpy()  # util.feeding warned: audio undecodable
        undecodable += [samples[i].wav_filename for i in index[skipped]]
        yield [
            Prediction(
                samples[i],
                np.ascontiguousarray(probs[row, : int(lengths[row])]),
                float(losses[row]),
            )
            for row, i in enumerate(index)
            if not skipped[row]
        ]
        progress.update(n)
    progress.finish()
    if undecodable:
        logging.warning(
            "%s: %d sample(s) skipped, audio does not decode: %s",
            label,
            len(undecodable),
            ", ".join(undecodable),
        )


def test_set(
    steps: Steps,
    sample_set: SampleSet,
    cfg: Config,
    alphabet: Alphabet,
    decoder: Optional[BatchDecoder] = None,
) -> SetReport:
    """Decode every sample of one set (greedy, or with ``decoder``) and score it."""
    results = []
    name = f"Test {sample_set.name}"
    for batch in predict(steps, sample_set.samples, cfg, name):
        texts = decode_batch(decoder, [p.probs for p in batch], alphabet)
        results += [
            make_sample_result(p.sample.wav_filename, p.sample.transcript, text, p.loss)
            for p, text in zip(batch, texts)
        ]
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
    features, features_len = compute_features(tf.constant(samples), cfg.features)
    logits = steps.model(features[tf.newaxis], features_len[tf.newaxis], training=False)
    probs = tf.nn.softmax(logits)[0].numpy()
    decoder = make_decoder(cfg.decoder, alphabet)
    try:
        n_out = cfg.model.output_frames(int(features_len))
        return decode_batch(decoder, [probs[:n_out]], alphabet)[0]
    finally:
        if decoder is not None:
            decoder.close()
