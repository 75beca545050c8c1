"""CTC decoding: greedy, beam search, beam search with a KenLM scorer (no TensorFlow).

DeepSpeech's ``ds_ctcdecoder`` API on top of flashlight-text's C++ decoders; the
:class:`Scorer` lives in scorer.py, the full story in doc/DECODER.rst:

* without a scorer, :func:`ctc_beam_search_decoder` is a lexicon-free CTC beam search
  (flashlight ``LexiconFreeDecoder`` with no LM);
* with a :class:`Scorer`, it is a lexicon beam search (``LexiconDecoder``): words are
  spelled from the scorer's vocabulary and scored by its KenLM model. As in DeepSpeech
  0.9, whose dictionary FST dropped any prefix that left the vocabulary, **words
  outside the vocabulary are never produced** (flashlight's ``unk_score`` is -inf).

Scores. DeepSpeech ranked a prefix by ``ln P_ctc + alpha * ln P_lm + beta * n_words``,
converting KenLM's log10 scores to natural log (``log10 / log10(e)``). flashlight adds
``lm_weight * log10 P_lm + word_score * n_words`` to the natural-log emissions, so
``lm_weight = alpha * ln(10)`` and ``word_score = beta`` give DeepSpeech's ranking
(:data:`LOG10_TO_LN`). Hot words add ``boost`` to ``ln P_lm`` of each occurrence of the
word, multiplied by alpha, as DeepSpeech 0.9 did.

Word boundaries. Each vocabulary word is spelled with a trailing space, so words are
always separated by a space (as in DeepSpeech, where the LM scored a word when the space
after it came); the last word gets its space from one synthetic frame appended to the
emissions, where the space has probability 1. Results drop that frame.

Silence. A lexicon search sitting between words (at the trie's root) emits the space
label as silence, frame after frame; where the model heard a word that the vocabulary
cannot spell, these silence frames take its place. There a space is a word separator,
not a token of its own: results of a search with a scorer never start or end with one
and never hold two in a row (:func:`drop_silence`; issue 10 case 3 was
``' is five degrees outside'``). Without a scorer every space is the model's own label
and is kept, as the greedy decoder keeps it.

Memory. flashlight keeps every frame's hypotheses until the search ends, which grows
with the utterance (5 GB for 10 minutes at beam 50). Utterances longer than
:data:`BOUNDED_FROM_FRAMES` are fed to the incremental decoder of streaming.py
instead, which frees the frames all hypotheses agree on: memory stays bounded. Its
result is the whole search's unless hypotheses disagree for more than
``streaming.DEFAULT_MAX_LAG`` frames (then the best prefix is kept; see there).

Bytes output mode (:class:`UTF8Alphabet`, doc/DECODER.rst). Labels are UTF-8 bytes.
With a scorer the search stays lexicon-free, with :class:`ByteCharacterLM` as its LM:
only bytes that spell vocabulary entries (characters, for DeepSpeech 0.9's character
LMs) score above -inf, an entry is scored with alpha and beta when its last byte
arrives (0.9's ``is_scoring_boundary``), spaces between entries are free and unscored,
and a hypothesis ending inside a character cannot finish: results are whole
characters, valid UTF-8. (flashlight's lexicon search cannot be used there: a
completed one-token word cannot absorb repeated frames of its label, and characters
have no separator.) Without a scorer the search is over raw bytes; a hypothesis that
is not valid UTF-8 ranks after every one that is (its text shows U+FFFD where a
character is cut off).

Contracts: ``probs`` is float32 ``[T, n_classes]`` softmax output with the CTC blank
last (``n_classes == alphabet.size() + 1``); ``tokens`` are label ids (no blanks),
``timesteps[i]`` is the first frame (``0 <= t < length``) of ``tokens[i]``.

flashlight's decoders hold the GIL and cannot be pickled, so
:class:`BatchDecoder` decodes batches in a :class:`ctcdecode.pool.WorkerPool` (spawned
processes, so a parent running TensorFlow is safe), each building its decoder once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from absl import logging
from flashlight.lib.text import decoder as fl

from .alphabet import Alphabet, UTF8Alphabet
from .pool import WorkerPool
from .scorer import LOG10_TO_LN, ByteCharacterLM, HotWordLM, LMParts, Scorer
from .scorer_package import ScorerError

# Hypotheses scoring this many nats below the best of their frame are dropped
# (flashlight's beam_threshold). DeepSpeech had no such cut; 50 nats is e^-50 of the
# best, far below anything the beam keeps, and makes wide beams several times faster.
DEFAULT_BEAM_THRESHOLD = 50.0
# Utterances longer than this (frames; 10 s at 20 ms) are searched with bounded
# history (module docstring, Memory). It equals streaming.DEFAULT_MAX_LAG: up to
# there the bounded search cannot force a commit, so shorter results are the same.
BOUNDED_FROM_FRAMES = 500
_PRUNED_LOGP = -1e30  # log prob given to labels removed by cutoff_prob / zero probs


@dataclass(frozen=True)
class DecodeResult:
    """One transcript hypothesis.

    confidence: acoustic log probability (natural log) of the hypothesis' best CTC
        alignment, without LM terms: DeepSpeech 0.9's ``confidence``.
    text: the transcript.
    tokens: label ids, ``[n_tokens]``, blanks and repeats collapsed.
    timesteps: ``[n_tokens]`` frame where each token starts; multiply by the
        feature step (20 ms by default) for seconds.
    score: the beam's ranking score (``confidence`` + alpha * ln P_lm + beta * words
        (+ hot word boosts)); equals ``confidence`` without a scorer.
    """

    confidence: float
    text: str
    tokens: Tuple[int, ...]
    timesteps: Tuple[int, ...]
    score: float

    def words(self, alphabet: Alphabet) -> List[Tuple[str, int, int]]:
        """``(word, first frame, last token's frame)`` per space-separated word."""
        space = alphabet.space_index
        out: List[Tuple[str, int, int]] = []
        start = 0
        for i in range(len(self.tokens) + 1):
            if i == len(self.tokens) or self.tokens[i] == space:
                if i > start:
                    word = alphabet.decode(self.tokens[start:i])
                    out.append((word, self.timesteps[start], self.timesteps[i - 1]))
                start = i + 1
        return out


@dataclass(frozen=True)
class BeamOptions:
    """Beam search settings (DeepSpeech's names).

    beam_size: hypotheses kept per frame.
    cutoff_prob: per frame, keep the most likely labels until their probabilities sum
        to at least this (1.0 = no cut).
    cutoff_top_n: per frame, try at most this many labels (flashlight's
        beam_size_token).
    beam_threshold: drop hypotheses this many nats below the frame's best.
    num_results: hypotheses returned, best first.
    """

    beam_size: int = 1024
    cutoff_prob: float = 1.0
    cutoff_top_n: int = 40
    beam_threshold: float = DEFAULT_BEAM_THRESHOLD
    num_results: int = 1

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.cutoff_top_n < 1 or self.num_results < 1:
            raise ValueError("beam_size, cutoff_top_n and num_results must be >= 1")
        if not 0.0 < self.cutoff_prob <= 1.0:
            raise ValueError(f"cutoff_prob must be in (0, 1], got {self.cutoff_prob}")


# The bounded-history search of long utterances: (search, probs [T, C]) -> results.
# streaming.py, a layer above this module, registers it when it is imported (the
# package's __init__ imports it, so it is there whenever ctcdecode is used).
_bounded_search: Optional[Callable[["BeamSearch", np.ndarray], List[DecodeResult]]]
_bounded_search = None


def register_bounded_search(
    search: Callable[["BeamSearch", np.ndarray], List[DecodeResult]],
) -> None:
    """Set how :meth:`BeamSearch.decode` searches utterances over the bound."""
    global _bounded_search
    _bounded_search = search


class BeamSearch:
    """One decoder configuration; builds its flashlight decoder on first use."""

    def __init__(
        self,
        alphabet: Alphabet,
        options: BeamOptions,
        scorer: Optional[Scorer],
        hot_words: Optional[Mapping[str, float]],
    ) -> None:
        if scorer is not None and scorer.alphabet != alphabet:
            raise ScorerError(f"the scorer was loaded for {scorer.alphabet!r}")
        if hot_words and scorer is None:
            raise ValueError("hot words need a scorer (they boost LM word scores)")
        self.alphabet = alphabet
        self.options = options
        self.scorer = scorer
        self.hot_words = dict(hot_words or {})
        self._decoder: Any = None
        self._keep: Any = None  # keeps a Python LM alive while C++ holds it

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_decoder": None, "_keep": None}

    def decode(
        self, probs: np.ndarray, length: Optional[int] = None
    ) -> List[DecodeResult]:
        """Best ``num_results`` hypotheses. probs : float32 [T, n_classes]."""
        n_frames = check_probs(probs, self.alphabet, length)
        if n_frames > BOUNDED_FROM_FRAMES and _bounded_search is not None:
            return _bounded_search(self, probs[:n_frames])
        if self._decoder is None:
            self._decoder = self.build()
        emissions = log_emissions(
            probs[:n_frames], self.options.cutoff_prob, self.lexicon, self.alphabet
        )
        raw = self._decoder.decode(
            emissions.ctypes.data, emissions.shape[0], emissions.shape[1]
        )
        return _results(
            raw, n_frames, self.alphabet, self.options.num_results, self.lexicon
        )

    def build(self) -> Any:
        """A new flashlight decoder for these options (streaming.py builds its own)."""
        opts = self.options
        n_classes = self.alphabet.n_classes
        blank = self.alphabet.blank_index
        sil = self.alphabet.space_index
        token_beam = min(opts.cutoff_top_n, n_classes)
        if self.scorer is None:
            options = fl.LexiconFreeDecoderOptions(
                opts.beam_size, token_beam, opts.beam_threshold, 0.0, 0.0, False,
                fl.CriterionType.CTC,
            )  # fmt: skip
            self._keep = fl.ZeroLM()
            return fl.LexiconFreeDecoder(
                options, self._keep, blank if sil is None else sil, blank, []
            )
        parts = self.scorer.parts()
        if not self.lexicon:  # bytes output mode: a character LM over byte labels
            options = fl.LexiconFreeDecoderOptions(
                opts.beam_size, token_beam, opts.beam_threshold, 1.0, 0.0, False,
                fl.CriterionType.CTC,
            )  # fmt: skip
            self._keep = ByteCharacterLM(
                parts, self.alphabet, self.scorer.alpha, self.scorer.beta,
                self._boosts(parts, 1.0),
            )  # fmt: skip
            return fl.LexiconFreeDecoder(options, self._keep, sil, blank, [])
        options = fl.LexiconDecoderOptions(
            opts.beam_size, token_beam, opts.beam_threshold,
            self.scorer.alpha * LOG10_TO_LN, self.scorer.beta, -math.inf, 0.0, False,
            fl.CriterionType.CTC,
        )  # fmt: skip
        self._keep = self._lm(parts)
        return fl.LexiconDecoder(
            options, parts.trie, self._keep, sil, blank, parts.unk, [], False
        )

    @property
    def lexicon(self) -> bool:
        """True for the lexicon search of a word scorer (module docstring); bytes
        output mode's scorer runs a lexicon-free search with ByteCharacterLM."""
        return self.scorer is not None and not isinstance(self.alphabet, UTF8Alphabet)

    def _lm(self, parts: LMParts) -> Any:
        if not self.hot_words:
            return parts.lm
        return HotWordLM(parts.lm, self._boosts(parts, 1.0 / LOG10_TO_LN))

    def _boosts(self, parts: LMParts, unit: float) -> Dict[int, float]:
        """Hot word boosts by LM word index, times ``unit`` (1/ln 10 for log10)."""
        boosts = {}
        for word, boost in self.hot_words.items():
            if not parts.words.contains(word):
                logging.warning("hot word %r is not in the scorer's vocabulary", word)
                continue
            boosts[parts.words.get_index(word)] = float(boost) * unit
        return boosts


def check_probs(probs: np.ndarray, alphabet: Alphabet, length: Optional[int]) -> int:
    """Valid frames of ``probs``; raise ValueError on a wrong shape."""
    if probs.ndim != 2 or probs.shape[1] != alphabet.n_classes:
        raise ValueError(
            f"probs must be [T, {alphabet.n_classes}] (labels + blank), got "
            f"{list(probs.shape)}"
        )
    n_frames = probs.shape[0] if length is None else int(length)
    if not 0 <= n_frames <= probs.shape[0]:
        raise ValueError(f"length {length} is outside [0, {probs.shape[0]}]")
    return n_frames


def log_emissions(
    probs: np.ndarray, cutoff_prob: float, final_space: bool, alphabet: Alphabet
) -> np.ndarray:
    """Natural-log emissions float32 [T (+1), n_classes], C-contiguous.

    cutoff_prob < 1 keeps, per frame, the most likely labels whose probabilities first
    reach cutoff_prob (DeepSpeech's get_pruned_log_probs). ``final_space`` appends the
    frame that lets a lexicon decoder finish the last word (module docstring).
    """
    probs = np.asarray(probs, dtype=np.float32)
    with np.errstate(divide="ignore"):
        logp = np.where(probs > 0, np.log(np.maximum(probs, 1e-38)), _PRUNED_LOGP)
    if cutoff_prob < 1.0 and len(probs):
        order = np.argsort(-probs, axis=1)
        cumulative = np.cumsum(np.take_along_axis(probs, order, axis=1), axis=1)
        # keep label k of the sorted row while the mass before it is < cutoff_prob
        keep_sorted = np.concatenate(
            [np.ones((len(probs), 1), bool), cumulative[:, :-1] < cutoff_prob], axis=1
        )
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        logp = np.where(keep, logp, _PRUNED_LOGP)
    if final_space:
        last = np.full((1, probs.shape[1]), _PRUNED_LOGP)
        last[0, alphabet.space_index] = 0.0
        logp = np.concatenate([logp, last])
    return np.ascontiguousarray(logp, dtype=np.float32)


def collapse(
    path: Sequence[int], blank: int, previous: int = -1, first_frame: int = 0
) -> Tuple[List[int], List[int]]:
    """(tokens, first frames) of a per-frame label path: merge repeats, drop blanks.

    ``previous``: the label of the frame before ``path`` (-1: none), so that a path
    continued in pieces (streaming.py) collapses as a whole; ``first_frame``: the
    frame index of ``path[0]``.
    """
    tokens: List[int] = []
    frames: List[int] = []
    for frame, label in enumerate(path, first_frame):
        if label != previous and label != blank:
            tokens.append(int(label))
            frames.append(frame)
        previous = label
    return tokens, frames


def drop_silence(
    tokens: Sequence[int],
    frames: Sequence[int],
    space: Optional[int],
    after_space: bool = True,
) -> Tuple[List[int], List[int], bool]:
    """Drop the space tokens that separate no words (module docstring, Silence).

    A space is kept only right after a non-space token; ``after_space``: the kept
    token before ``tokens`` was a space, or there is none (so a leading space goes).
    A trailing space is kept (a word may follow in a later piece; see
    :func:`strip_space`). Returns (tokens, frames, after_space at the end).
    """
    out_tokens: List[int] = []
    out_frames: List[int] = []
    for token, frame in zip(tokens, frames):
        if token == space:
            if after_space:
                continue
            after_space = True
        else:
            after_space = False
        out_tokens.append(int(token))
        out_frames.append(int(frame))
    return out_tokens, out_frames, after_space


def strip_space(
    tokens: List[int], frames: List[int], space: Optional[int]
) -> Tuple[List[int], List[int]]:
    """``tokens`` and ``frames`` without a final space token."""
    if tokens and tokens[-1] == space:
        return tokens[:-1], frames[:-1]
    return tokens, frames


def _words_only(
    tokens: Sequence[int], frames: Sequence[int], space: Optional[int]
) -> Tuple[List[int], List[int]]:
    """Tokens of a whole transcript: single spaces between words, none at the ends."""
    kept, kept_frames, _ = drop_silence(tokens, frames, space)
    return strip_space(kept, kept_frames, space)


def _results(
    raw: Sequence[Any],
    n_frames: int,
    alphabet: Alphabet,
    num_results: int,
    lexicon: bool,
) -> List[DecodeResult]:
    """DecodeResults of flashlight's hypotheses, best first, one per distinct text.

    flashlight's per-frame ``tokens`` hold a start token, one label per frame (the
    synthetic final frame included) and an end token; frames ``1..n_frames`` are ours.
    ``lexicon``: a scorer's search, whose silence spaces are dropped before
    hypotheses are compared.
    """
    out: List[DecodeResult] = []
    cut_off: List[DecodeResult] = []  # bytes mode: results ending inside a character
    seen = set()
    for hyp in raw:
        tokens, frames = collapse(
            list(hyp.tokens)[1 : n_frames + 1], alphabet.blank_index
        )
        if lexicon:
            tokens, frames = _words_only(tokens, frames, alphabet.space_index)
        key = tuple(tokens)
        if key in seen:
            continue
        seen.add(key)
        result = DecodeResult(
            confidence=float(hyp.emittingModelScore),
            text=alphabet.decode(tokens),
            tokens=key,
            timesteps=tuple(frames),
            score=float(hyp.score),
        )
        (out if alphabet.is_complete(key) else cut_off).append(result)
        if len(out) == num_results:
            break
    return (out + cut_off)[:num_results]


def ctc_greedy_decoder(
    probs: np.ndarray, alphabet: Alphabet, length: Optional[int] = None
) -> DecodeResult:
    """Best path: the most likely label per frame, repeats merged, blanks dropped.

    probs : float32 [T, n_classes] softmax output; length: valid frames (default T).
    """
    n_frames = check_probs(probs, alphabet, length)
    probs = np.asarray(probs[:n_frames], dtype=np.float32)
    best = np.argmax(probs, axis=1)
    with np.errstate(divide="ignore"):
        confidence = float(np.sum(np.log(probs[np.arange(n_frames), best])))
    tokens, frames = collapse(best.tolist(), alphabet.blank_index)
    return DecodeResult(
        confidence, alphabet.decode(tokens), tuple(tokens), tuple(frames), confidence
    )


def ctc_beam_search_decoder(
    probs: np.ndarray,
    alphabet: Alphabet,
    beam_size: int,
    cutoff_prob: float = 1.0,
    cutoff_top_n: int = 40,
    scorer: Optional[Scorer] = None,
    hot_words: Optional[Mapping[str, float]] = None,
    num_results: int = 1,
    beam_threshold: float = DEFAULT_BEAM_THRESHOLD,
) -> List[DecodeResult]:
    """CTC beam search of one utterance, with the scorer's LM when given.

    probs : float32 [T, n_classes] softmax output, blank last. hot_words: word ->
    boost added to the word's natural-log LM probability (needs a scorer).
    returns : up to ``num_results`` hypotheses, best first.
    """
    options = BeamOptions(
        beam_size, cutoff_prob, cutoff_top_n, beam_threshold, num_results
    )
    return BeamSearch(alphabet, options, scorer, hot_words).decode(probs)


class BatchDecoder:
    """Beam search over many utterances with fixed settings, in parallel processes.

    With ``num_processes > 1`` a pool of spawned processes is started once (each
    builds its decoder and loads the LM once) and reused by every :meth:`decode`;
    close it with :meth:`close` or use the object as a context manager.
    ``num_processes=None`` uses one process per CPU core.
    """

    def __init__(
        self,
        alphabet: Alphabet,
        options: BeamOptions,
        scorer: Optional[Scorer] = None,
        hot_words: Optional[Mapping[str, float]] = None,
        num_processes: Optional[int] = 2,
    ) -> None:
        self._pool = WorkerPool(
            BeamSearch(alphabet, options, scorer, hot_words), num_processes
        )
        self.num_processes = self._pool.num_processes

    def decode(
        self, probs_list: Sequence[np.ndarray], lengths: Sequence[int]
    ) -> List[List[DecodeResult]]:
        """Hypotheses per utterance. probs_list[i] : float32 [T_i, n_classes]."""
        if len(probs_list) != len(lengths):
            raise ValueError("probs_list and lengths differ in length")
        items = [(np.asarray(p)[: int(n)], int(n)) for p, n in zip(probs_list, lengths)]
        return self._pool.map("decode", items)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> "BatchDecoder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def ctc_beam_search_decoder_batch(
    probs_list: Sequence[np.ndarray],
    lengths: Sequence[int],
    alphabet: Alphabet,
    beam_size: int,
    num_processes: Optional[int] = 2,
    cutoff_prob: float = 1.0,
    cutoff_top_n: int = 40,
    scorer: Optional[Scorer] = None,
    hot_words: Optional[Mapping[str, float]] = None,
    num_results: int = 1,
    beam_threshold: float = DEFAULT_BEAM_THRESHOLD,
) -> List[List[DecodeResult]]:
    """:func:`ctc_beam_search_decoder` over a batch in ``num_processes`` processes.

    probs_list[i] : float32 [T_i (>= lengths[i]), n_classes]. Starts and stops a pool
    per call; use :class:`BatchDecoder` to keep one across batches.
    """
    options = BeamOptions(
        beam_size, cutoff_prob, cutoff_top_n, beam_threshold, num_results
    )
    with BatchDecoder(alphabet, options, scorer, hot_words, num_processes) as decoder:
        return decoder.decode(probs_list, lengths)
