"""CTC decoding of the model's probabilities with the ``ctcdecode`` package.

``pip install ./native_client/python`` (the client alone) and ``pip install -e .``
(the repository) both install ``native_client/ctcdecode`` as the top-level package
``ctcdecode``, the very module the trainer uses. Three ways in, one set
of options (:class:`DecoderSettings`): :func:`decode` (one utterance),
:func:`batch_decoder` (many, in processes), :func:`streaming_decoder` (incremental).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import ctcdecode

from .metadata import CandidateTranscript, TokenMetadata, make_words

Alphabet = ctcdecode.Alphabet
UTF8Alphabet = ctcdecode.UTF8Alphabet
Scorer = ctcdecode.Scorer
CUTOFF_TOP_N = 40  # labels tried per frame (DeepSpeech's client default)


@dataclass(frozen=True)
class DecoderSettings:
    """A Model's decoder settings at one moment (read once per decode or stream).

    beam_width: hypotheses kept per frame.
    scorer: the external scorer, or None (lexicon-free beam search).
    hot_words: (word, boost) pairs; they only count with a scorer.
    """

    beam_width: int
    scorer: Optional["ctcdecode.Scorer"]
    hot_words: Tuple[Tuple[str, float], ...] = ()

    def options(self, num_results: int = 1) -> "ctcdecode.BeamOptions":
        return ctcdecode.BeamOptions(
            beam_size=self.beam_width, cutoff_top_n=CUTOFF_TOP_N,
            num_results=num_results,
        )  # fmt: skip

    @property
    def active_hot_words(self) -> Optional[Dict[str, float]]:
        return (
            dict(self.hot_words) if self.scorer is not None and self.hot_words else None
        )


def decode(
    probs: np.ndarray,
    alphabet: "ctcdecode.Alphabet",
    settings: DecoderSettings,
    num_results: int,
    frame_s: float,
) -> List[CandidateTranscript]:
    """Best ``num_results`` transcripts of probs float32 [T, n_classes], best first.

    Beam search (lexicon-free without a scorer, as DeepSpeech's client).
    ``frame_s``: seconds per frame (the feature step).
    """
    if len(probs) == 0:
        return candidates([], alphabet, frame_s)
    results = ctcdecode.ctc_beam_search_decoder(
        np.ascontiguousarray(probs, dtype=np.float32),
        alphabet,
        settings.beam_width,
        cutoff_top_n=CUTOFF_TOP_N,
        scorer=settings.scorer,
        hot_words=settings.active_hot_words,
        num_results=num_results,
    )
    return candidates(results, alphabet, frame_s)


def candidates(
    results: Sequence["ctcdecode.DecodeResult"],
    alphabet: "ctcdecode.Alphabet",
    frame_s: float,
) -> List[CandidateTranscript]:
    """CandidateTranscripts of decoder results; one empty transcript if none."""
    out = []
    for result in results:
        # One token per character: in bytes output mode a character's bytes are one
        # token, at its first byte's frame (DeepSpeech 0.9).
        tokens = tuple(
            TokenMetadata(text, int(step), step * frame_s)
            for text, step in (
                (text, result.timesteps[first])
                for text, first in alphabet.characters(result.tokens)
            )
        )
        out.append(
            CandidateTranscript(
                tokens, result.confidence, tuple(make_words(tokens, frame_s))
            )
        )
    return out or [CandidateTranscript((), 0.0, ())]


def streaming_decoder(
    alphabet: "ctcdecode.Alphabet", settings: DecoderSettings
) -> "ctcdecode.StreamingDecoder":
    """An incremental decoder for one stream (ctcdecode/streaming.py)."""
    return ctcdecode.StreamingDecoder(
        alphabet, settings.options(), settings.scorer, settings.active_hot_words
    )


def batch_decoder(
    alphabet: "ctcdecode.Alphabet",
    settings: DecoderSettings,
    num_results: int,
    num_processes: int,
) -> "ctcdecode.BatchDecoder":
    """A pool of ``num_processes`` decoder processes; close it (context manager)."""
    return ctcdecode.BatchDecoder(
        alphabet, settings.options(num_results), settings.scorer,
        settings.active_hot_words, num_processes,
    )  # fmt: skip


def decode_batch(
    decoder: "ctcdecode.BatchDecoder",
    probs_list: Sequence[np.ndarray],
    alphabet: "ctcdecode.Alphabet",
    frame_s: float,
) -> List[List[CandidateTranscript]]:
    """Transcripts per utterance; empty utterances skip the pool."""
    todo = [i for i, p in enumerate(probs_list) if len(p)]
    decoded = decoder.decode(
        [np.ascontiguousarray(probs_list[i], np.float32) for i in todo],
        [len(probs_list[i]) for i in todo],
    )
    results: Dict[int, List] = dict(zip(todo, decoded))
    return [
        candidates(results.get(i, []), alphabet, frame_s)
        for i in range(len(probs_list))
    ]


def settings_of(
    beam_width: int,
    scorer: Optional["ctcdecode.Scorer"],
    hot_words: Mapping[str, float],
) -> DecoderSettings:
    return DecoderSettings(int(beam_width), scorer, tuple(sorted(hot_words.items())))
