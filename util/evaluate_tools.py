"""Word and character error rates, and the test-pass report, in pure Python/numpy.

This module holds no TensorFlow so that both the test pass (``DeepSpeech.py
--test_files``) and the inference client can score transcripts with one
implementation. Its numbers and text follow DeepSpeech 0.9's
``training/deepspeech_training/util/evaluate_tools.py``, whose report users already
parse:

* A sample's word errors are the edit distance over ``str.split()`` words; its
  character errors are the edit distance over the raw strings, spaces included.
* A set's WER/CER is total distance over total reference length (a micro average),
  not the mean of per-sample rates, and is capped at 1.0 as DeepSpeech did.
* ``--test_output_file`` is a JSON list with one dict per sample.

Contract: every function is pure except ``write_results_json``, which writes one file
atomically. Nothing here prints; callers at the edge print or log ``format_report``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Sequence, Tuple

import numpy as np
from absl import logging

from ctcdecode.fileio import atomic_write

REPORT_RULE = "-" * 80  # DeepSpeech's separator between report blocks.
SECTION_BEST = "Best WER"
SECTION_MEDIAN = "Median WER"
SECTION_WORST = "Worst WER"


def _encode_tokens(
    a: Sequence[Hashable], b: Sequence[Hashable]
) -> Tuple[np.ndarray, np.ndarray]:
    """Map tokens of both sequences to shared int ids so numpy can compare them."""
    vocab: Dict[Hashable, int] = {}
    a_ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in a), np.int64, len(a))
    b_ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in b), np.int64, len(b))
    return a_ids, b_ids


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (unit-cost insert, delete, substitute) between two sequences.

    Works on strings (characters) and on lists of words; elements must be hashable.
    Keeps two rows of the dynamic-programming table and loops in Python over the
    shorter sequence only. Each row is computed with vector ops: substitutions and
    deletions elementwise, then the left-to-right insertion chain as a running
    minimum, because ``row[j] = min_k<=j (tmp[k] + j - k)``. This keeps long
    character transcripts (thousands of symbols) in milliseconds.
    """
    if len(a) > len(b):
        a, b = b, a
    if len(a) == 0:
        return len(b)
    a_ids, b_ids = _encode_tokens(a, b)
    cols = np.arange(len(b) + 1, dtype=np.int64)
    prev = cols
    for i, token in enumerate(a_ids, start=1):
        tmp = np.empty_like(prev)
        tmp[0] = i
        np.minimum(prev[:-1] + (b_ids != token), prev[1:] + 1, out=tmp[1:])
        prev = np.minimum.accumulate(tmp - cols) + cols
    return int(prev[-1])


def word_errors(ref: str, hyp: str) -> Tuple[int, int]:
    """Return (word edit distance, number of reference words).

    Words are ``str.split()`` tokens, so runs of whitespace and leading/trailing
    spaces never count as words, exactly as DeepSpeech's ``process_decode_result``.
    """
    ref_words = ref.split()
    return levenshtein(ref_words, hyp.split()), len(ref_words)


def char_errors(ref: str, hyp: str) -> Tuple[int, int]:
    """Return (character edit distance, number of reference characters).

    DeepSpeech compares the strings as they are, spaces included and without any
    normalisation, so a wrong word boundary costs one character error.
    """
    return levenshtein(ref, hyp), len(ref)


def _error_rate(distance: int, length: int) -> float:
    """distance / length, defined for an empty reference.

    DeepSpeech divided by zero on an empty transcript. Here an empty reference scores
    0.0 when the hypothesis is empty too (nothing to get wrong) and 1.0 otherwise
    (every emitted token is an error; capping keeps the rate comparable to others).
    """
    if length == 0:
        return 0.0 if distance == 0 else 1.0
    return distance / length


@dataclass(frozen=True)
class SampleResult:
    """Scores of one test utterance. ``loss`` is its CTC loss (nats)."""

    wav_filename: str
    src: str
    res: str
    loss: float
    word_distance: int
    word_length: int
    char_distance: int
    char_length: int

    @property
    def wer(self) -> float:
        """Word error rate; may exceed 1.0 when the hypothesis inserts words."""
        return _error_rate(self.word_distance, self.word_length)

    @property
    def cer(self) -> float:
        """Character error rate; may exceed 1.0 like ``wer``."""
        return _error_rate(self.char_distance, self.char_length)

    def to_json_dict(self) -> Dict[str, Any]:
        """The per-sample record of ``--test_output_file``, with plain Python types."""
        return {
            "wav_filename": self.wav_filename,
            "src": self.src,
            "res": self.res,
            "loss": float(self.loss),
            "wer": self.wer,
            "cer": self.cer,
        }


def make_sample_result(
    wav_filename: str, src: str, res: str, loss: float
) -> SampleResult:
    """Score transcript ``res`` against reference ``src`` for one utterance."""
    word_distance, word_length = word_errors(src, res)
    char_distance, char_length = char_errors(src, res)
    return SampleResult(
        wav_filename=wav_filename,
        src=src,
        res=res,
        loss=float(loss),
        word_distance=word_distance,
        word_length=word_length,
        char_distance=char_distance,
        char_length=char_length,
    )


@dataclass(frozen=True)
class SetReport:
    """All scored samples of one test CSV; ``name`` is the CSV path."""

    name: str
    samples: Tuple[SampleResult, ...]

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def wer(self) -> float:
        """Total word distance / total reference words, capped at 1.0.

        Long utterances weigh more than short ones, as in DeepSpeech's
        ``wer_cer_batch``; a mean of per-sample WERs would let one wrong one-word
        sample count as much as a whole paragraph. The cap is DeepSpeech's too.
        """
        distance = sum(s.word_distance for s in self.samples)
        length = sum(s.word_length for s in self.samples)
        return min(_error_rate(distance, length), 1.0)

    @property
    def cer(self) -> float:
        """Total character distance / total reference characters, capped at 1.0."""
        distance = sum(s.char_distance for s in self.samples)
        length = sum(s.char_length for s in self.samples)
        return min(_error_rate(distance, length), 1.0)

    @property
    def mean_loss(self) -> float:
        """Mean per-sample loss; NaN for an empty set rather than a numpy warning."""
        if not self.samples:
            return math.nan
        return float(np.mean([s.loss for s in self.samples]))


def _sorted_for_report(samples: Sequence[SampleResult]) -> List[SampleResult]:
    """Ascending WER, ties broken by descending loss.

    DeepSpeech sorted by loss descending and then (stably) by WER, so among equally
    wrong samples the most confident ones come first: a confident wrong answer points
    at systemic problems such as transcription errors in the data.
    """
    return sorted(samples, key=lambda s: (s.wer, -s.loss))


def report_samples(
    report: SetReport, report_count: int
) -> List[Tuple[str, List[SampleResult]]]:
    """Pick the best, median and worst ``report_count`` samples of a set.

    Returns ``[("Best WER", [...]), ("Median WER", [...]), ("Worst WER", [...])]``,
    always all three sections, in that order. With at least ``3 * report_count``
    samples the slices are exactly DeepSpeech 0.9's ``print_report``. With fewer,
    DeepSpeech's slices overlapped and printed samples twice; here each sample is
    shown at most once, claimed first by Best, then Worst, then Median, so small sets
    (e.g. LDC93S1 with its single sample) read cleanly.
    """
    if report_count < 0:
        raise ValueError(f"report_count must be >= 0, got {report_count}")
    ordered = _sorted_for_report(report.samples)
    n = len(ordered)
    best_end = min(report_count, n)
    worst_start = max(best_end, n - report_count)
    median_start = max(best_end, n // 2 - report_count // 2)
    median_end = min(worst_start, n // 2 + report_count - report_count // 2)
    return [
        (SECTION_BEST, ordered[:best_end]),
        (SECTION_MEDIAN, ordered[median_start : max(median_start, median_end)]),
        (SECTION_WORST, ordered[worst_start:]),
    ]


def _format_sample(sample: SampleResult) -> List[str]:
    """One sample block, as DeepSpeech's ``print_single_sample`` printed it."""
    return [
        "WER: %f, CER: %f, loss: %f" % (sample.wer, sample.cer, sample.loss),
        " - wav: file://%s" % sample.wav_filename,
        ' - src: "%s"' % sample.src,
        ' - res: "%s"' % sample.res,
        REPORT_RULE,
    ]


def format_report(report: SetReport, report_count: int) -> str:
    """The test report text, line for line what DeepSpeech 0.9 printed.

    Users and scripts grep the ``Test on ... - WER: ...`` summary line, so the
    wording and the ``%f`` formatting are kept. Section headers keep DeepSpeech's
    trailing space (``print('Best WER:', '\\n' + '-' * 80)``). The text has no final
    newline; the caller prints or logs it.
    """
    lines = [
        "Test on %s - WER: %f, CER: %f, loss: %f"
        % (report.name, report.wer, report.cer, report.mean_loss),
        REPORT_RULE,
    ]
    for section, samples in report_samples(report, report_count):
        if not samples:  # a small set: no empty "Median WER:" header
            continue
        lines.extend([f"{section}: ", REPORT_RULE])
        for sample in samples:
            lines.extend(_format_sample(sample))
    return "\n".join(lines)


def _results_records(reports: Sequence[SetReport]) -> List[Dict[str, Any]]:
    """Flatten reports into per-sample dicts tagged with their test CSV."""
    return [
        {**sample.to_json_dict(), "test_set": report.name}
        for report in reports
        for sample in report.samples
    ]


def write_results_json(path: str, reports: Sequence[SetReport]) -> None:
    """Write ``--test_output_file``: a JSON list of per-sample dicts, atomically.

    The file goes to a temporary name in the destination directory and is then
    ``os.replace``d, so a crash or a concurrent reader never sees half a file and
    a previous result file survives a failed write. Text stays readable UTF-8
    (``ensure_ascii=False``), as DeepSpeech's ``save_samples_json`` intended.
    """
    records = _results_records(reports)
    with atomic_write(path) as fout:
        json.dump(records, fout, ensure_ascii=False, indent=2)
    logging.info("Wrote %d test results to %s", len(records), path)
