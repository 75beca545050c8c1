"""Incremental CTC beam search: decode a stream's probabilities as they arrive.

:class:`StreamingDecoder` runs the same flashlight beam search as decoder.py
(``decode_begin`` / ``decode_step`` per fed chunk / ``decode_end``), so the cost of a
fed chunk is the search over its own frames, not over the whole stream. Its final
result equals :func:`ctc_beam_search_decoder` over all the fed probabilities: same
emissions (``log_emissions``), same options, scorer, alpha/beta and hot words, and
the scorer's synthetic final space frame fed at :meth:`StreamingDecoder.finish`.

Bounded history. flashlight keeps every frame's hypotheses with parent pointers until
``prune(look_back)`` drops the frames older than ``look_back``; after that a
hypothesis's path only reaches back to the prune point. Every ``commit_interval``
frames this class reads all hypotheses and, where **all** their paths agree on the
first frames, records those frames' labels itself ("commits" them) and prunes there.
No hypothesis can change a shared prefix, so this loses nothing: results stay those
of the whole-utterance search. If the hypotheses still disagree ``max_lag`` frames
back, the best hypothesis's prefix is committed anyway (``n_forced_commits``): that
bounds memory and per-chunk work on long streams, at the price of possibly differing
from a whole-utterance search, which would keep the older alternatives alive.
Commits with a scorer happen only where the best path has just finished a word:
flashlight's ``prune`` walks back to such a frame (``findBestAncestor``).

Scores. ``prune`` subtracts the best current score from all hypotheses (against
underflow); the sum of those shifts is added back, so ``score`` matches the whole
search up to float rounding, and ``confidence`` (the acoustic score, never shifted)
exactly.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from .alphabet import Alphabet, UTF8Alphabet
from .decoder import (
    BeamOptions,
    BeamSearch,
    DecodeResult,
    Scorer,
    check_probs,
    collapse,
    drop_silence,
    log_emissions,
    register_bounded_search,
    strip_space,
)

DEFAULT_COMMIT_INTERVAL = 50  # frames (1 s at a 20 ms step) between commit attempts
DEFAULT_MAX_LAG = 500  # frames (10 s): history kept while hypotheses still disagree


class StreamingDecoder:
    """Beam search over probabilities fed chunk by chunk (one stream, one thread).

    Args:
        alphabet: the model's output alphabet.
        options: beam settings; ``options.num_results`` is the default of
            :meth:`finish`.
        scorer, hot_words: as in :func:`ctc_beam_search_decoder`; read once, here.
        commit_interval: frames between attempts to commit settled frames.
        max_lag: frames of disagreement after which the best prefix is committed.

    Counters (for tests and benchmarks): :attr:`n_frames` fed, :attr:`n_held_frames`
    still in the decoder (what :meth:`intermediate` walks), ``n_commits``,
    ``n_forced_commits``.
    """

    def __init__(
        self,
        alphabet: Alphabet,
        options: BeamOptions = BeamOptions(),
        scorer: Optional[Scorer] = None,
        hot_words: Optional[Mapping[str, float]] = None,
        commit_interval: int = DEFAULT_COMMIT_INTERVAL,
        max_lag: int = DEFAULT_MAX_LAG,
    ) -> None:
        if commit_interval < 1 or max_lag < 1:
            raise ValueError("commit_interval and max_lag must be >= 1 frame")
        self.alphabet = alphabet
        self.options = options
        self.commit_interval = int(commit_interval)
        self.max_lag = int(max_lag)
        self._search = BeamSearch(alphabet, options, scorer, hot_words)
        self._lexicon = self._search.lexicon
        self._decoder: Any = self._search.build()
        self._decoder.decode_begin()
        self._n_frames = 0  # frames fed
        self._origin = 0  # frames committed; decoder paths start at this frame
        self._since_commit = 0
        self._tokens: List[int] = []  # committed tokens and their first frames
        self._timesteps: List[int] = []
        self._text = ""  # text of the committed tokens (not for UTF-8 bytes)
        self._last_label = -1  # label of the last committed frame (-1: none)
        self._after_space = True  # committed tokens are empty or end with a space
        self._score_shift = 0.0  # sum of the scores prune() subtracted
        self._finished = False
        self.n_commits = 0
        self.n_forced_commits = 0

    @property
    def n_frames(self) -> int:
        """Frames fed so far."""
        return self._n_frames

    @property
    def n_held_frames(self) -> int:
        """Frames whose hypotheses the decoder still holds (not committed)."""
        return self._n_frames - self._origin

    def feed(self, probs: np.ndarray) -> None:
        """Search the next frames. probs : float32 [t, n_classes] softmax output."""
        if self._finished:
            raise RuntimeError("the stream is finished; create a new StreamingDecoder")
        n_new = check_probs(probs, self.alphabet, None)
        if n_new == 0:
            return
        emissions = log_emissions(probs, self.options.cutoff_prob, False, self.alphabet)
        self._decoder.decode_step(emissions.ctypes.data, n_new, emissions.shape[1])
        self._n_frames += n_new
        self._since_commit += n_new
        if self._since_commit >= self.commit_interval:
            self._since_commit = 0
            self._commit()

    def intermediate(self, num_results: int = 1) -> List[DecodeResult]:
        """Best hypotheses so far, best first (partial last words included).

        The stream goes on. Without a scorer the best one is a single path walk; with
        one (or for ``num_results > 1``) every hypothesis is read, because
        flashlight's ``get_best_hypothesis`` would stop at the last complete word.
        """
        if self._finished:
            raise RuntimeError("the stream is finished")
        if self.n_held_frames == 0:
            return [self._result((), 0.0, 0.0)]
        if num_results == 1 and not self._lexicon:
            best = self._decoder.get_best_hypothesis(0)
            return [self._result(best.tokens[1:], best.emittingModelScore, best.score)]
        hyps = self._decoder.get_all_final_hypothesis()
        order = np.argsort([-h.score for h in hyps], kind="stable")
        return self._distinct((hyps[i] for i in order), None, num_results)

    def finish(self, num_results: Optional[int] = None) -> List[DecodeResult]:
        """Final hypotheses, best first (:func:`ctc_beam_search_decoder`'s)."""
        if self._finished:
            raise RuntimeError("the stream is already finished")
        self._finished = True
        if self._lexicon:  # the frame that ends the last word (decoder.py)
            space = log_emissions(
                np.zeros((0, self.alphabet.n_classes), np.float32), 1.0, True,
                self.alphabet,
            )  # fmt: skip
            self._decoder.decode_step(space.ctypes.data, 1, space.shape[1])
        self._decoder.decode_end()
        hyps = self._decoder.get_all_final_hypothesis()  # sorted by decode_end
        return self._distinct(
            hyps, self.n_held_frames, num_results or self.options.num_results
        )

    # --- internals -------------------------------------------------------------
    def _result(
        self, labels: Sequence[int], confidence: float, score: float
    ) -> DecodeResult:
        """A DecodeResult of the committed tokens plus ``labels`` (held frames)."""
        tokens, frames = self._collapse(labels)
        return self._make(tokens, frames, confidence, score)

    def _collapse(self, labels: Sequence[int]) -> Tuple[List[int], List[int]]:
        """(tokens, frames) of held-frame labels, continuing the committed path.

        With a scorer, silence spaces are dropped (decoder.drop_silence); a final
        space stays until :meth:`_make`.
        """
        tokens, frames = collapse(
            labels, self.alphabet.blank_index, self._last_label, self._origin
        )
        if self._lexicon:
            tokens, frames, _ = drop_silence(
                tokens, frames, self.alphabet.space_index, self._after_space
            )
        return tokens, frames

    def _make(
        self, tokens: List[int], frames: List[int], confidence: float, score: float
    ) -> DecodeResult:
        """The result of the committed tokens plus held ``tokens``.

        With a scorer, without a final space.
        """
        all_tokens, all_frames = self._tokens + tokens, self._timesteps + frames
        if self._lexicon:
            all_tokens, all_frames = strip_space(
                all_tokens, all_frames, self.alphabet.space_index
            )
        if isinstance(self.alphabet, UTF8Alphabet):
            text = self.alphabet.decode(all_tokens)
        else:
            text = self._text + self.alphabet.decode(tokens)
            if len(all_tokens) < len(self._tokens) + len(tokens):
                text = text[:-1]  # the final space (" ", one character)
        return DecodeResult(
            confidence=float(confidence),
            text=text,
            tokens=tuple(all_tokens),
            timesteps=tuple(all_frames),
            score=float(score) + self._score_shift,
        )

    def _distinct(
        self, hyps: Iterable[Any], n_labels: Optional[int], num_results: int
    ) -> List[DecodeResult]:
        """Results of the first ``num_results`` hypotheses with distinct tokens.

        As decoder._results; ``n_labels`` held frames are read from each path
        (None: all). The committed prefix is shared, so it is left out of the
        comparison and added to the chosen results only.
        """
        out: List[DecodeResult] = []
        seen: Set[Tuple[int, ...]] = set()
        for hyp in hyps:
            path = hyp.tokens
            end = len(path) if n_labels is None else n_labels + 1
            tokens, frames = self._collapse(path[1:end])
            if self._lexicon:
                tokens, frames = strip_space(
                    tokens, frames, self.alphabet.space_index
                )  # a final space is no distinct hypothesis
            key = tuple(tokens)
            if key in seen:
                continue
            seen.add(key)
            out.append(self._make(tokens, frames, hyp.emittingModelScore, hyp.score))
            if len(out) == num_results:
                break
        return out

    def _commit(self) -> None:
        """Commit the frames all hypotheses agree on (or, past max_lag, the best's)."""
        hyps = self._decoder.get_all_final_hypothesis()
        if not hyps:
            return
        paths = np.array([h.tokens for h in hyps])  # [n_hyp, held + 1]
        scores = np.array([h.score for h in hyps])
        best = int(np.argmax(scores))  # flashlight's choice too: the first maximum
        last = paths.shape[1] - 1
        differs = (paths != paths[best]).any(axis=0)
        target = int(np.argmax(differs)) - 1 if differs.any() else last
        forced = last - target > self.max_lag
        if forced:
            target = last - self.max_lag
        if self._lexicon:
            words = hyps[best].words
            while target > 0 and words[target - 1] < 0:
                target -= 1  # prune() would walk back to a word's end anyway
        if target < 1:
            return
        self._decoder.prune(last - target)
        self._append(paths[best, 1 : target + 1].tolist())
        self._origin += target
        self._score_shift += float(scores.max())
        self.n_commits += 1
        self.n_forced_commits += int(forced)

    def _append(self, labels: List[int]) -> None:
        tokens, frames = collapse(
            labels, self.alphabet.blank_index, self._last_label, self._origin
        )
        if self._lexicon:
            tokens, frames, self._after_space = drop_silence(
                tokens, frames, self.alphabet.space_index, self._after_space
            )
        self._tokens += tokens
        self._timesteps += frames
        if not isinstance(self.alphabet, UTF8Alphabet):
            self._text += self.alphabet.decode(tokens)
        self._last_label = labels[-1]


def bounded_search(search: BeamSearch, probs: np.ndarray) -> List[DecodeResult]:
    """``search.decode(probs)`` of a long utterance, with bounded history.

    flashlight keeps every frame's hypotheses until a search ends: 5 GB for 10
    minutes at beam 50. Fed ``commit_interval`` frames at a time, a
    :class:`StreamingDecoder` commits the frames all hypotheses agree on and frees
    them, so memory stays bounded whatever the length (decoder.py, Memory).
    """
    decoder = StreamingDecoder(
        search.alphabet, search.options, search.scorer, search.hot_words
    )
    step = decoder.commit_interval
    for start in range(0, len(probs), step):
        decoder.feed(probs[start : start + step])
    return decoder.finish()


register_bounded_search(bounded_search)
