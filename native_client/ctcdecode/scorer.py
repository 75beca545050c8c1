"""The scorer: a KenLM model and its vocabulary, weighted by alpha and beta.

DeepSpeech's ``Scorer``. It loads a ``.scorer`` package (scorer_package.py), checks
that it was built for the model's alphabet, and builds the flashlight-text objects the
lexicon beam search needs: the KenLM model, a word dictionary and a trie spelling each
vocabulary word (followed by a space) in the alphabet's labels. See decoder.py and
doc/DECODER.rst for how alpha, beta and hot words enter the score; KenLM's log10
scores become natural logs through :data:`LOG10_TO_LN`.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from absl import logging
from flashlight.lib.text import decoder as fl
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from .alphabet import Alphabet, UTF8Alphabet
from .scorer_package import (
    KIND_DS09,
    ScorerError,
    check_alphabet,
    read_scorer_package,
)

LOG10_TO_LN = math.log(10.0)  # ln P = log10 P * ln(10); KenLM scores are log10
_SPECIAL_WORDS = frozenset(("<s>", "</s>", "<unk>"))
_UNK = "<unk>"
_VOCAB_CHECK_WORDS = 500  # words of a 0.9 package looked up in its LM at load time


class Scorer:
    """A KenLM model plus its vocabulary, weighted by alpha and beta (DeepSpeech's API).

    Args:
        alpha: LM weight (of ``ln P_lm``); None takes the package's default_alpha.
        beta: bonus per word (nats); None takes the package's default_beta.
        scorer_path: a ``.scorer`` file (native_client/generate_scorer_package.py).
        alphabet: the model's output alphabet; it must be the one the scorer was
            built for.

    Raises:
        ScorerError: unreadable/corrupt package, another alphabet (a bytes output
            mode package with a character model or the reverse is one), or an
            alphabet without a space symbol.

    The flashlight objects (KenLM, word trie) are built on first use and are not
    pickled, so a Scorer can be sent to worker processes, which build their own.
    """

    def __init__(
        self,
        alpha: Optional[float],
        beta: Optional[float],
        scorer_path: str,
        alphabet: Alphabet,
    ) -> None:
        package = read_scorer_package(scorer_path, alphabet=alphabet)
        check_alphabet(package, alphabet)
        if package.kind == KIND_DS09:
            _check_words_in_lm(package.lm_path, package.vocab)
        self._setup(
            package.default_alpha if alpha is None else alpha,
            package.default_beta if beta is None else beta,
            package.lm_path,
            package.vocab,
            alphabet,
        )
        self.scorer_path = scorer_path

    @classmethod
    def from_lm(
        cls,
        alpha: float,
        beta: float,
        lm_path: str,
        vocab: Sequence[str],
        alphabet: Alphabet,
    ) -> "Scorer":
        """A scorer from a KenLM file (binary or ARPA) and its words, without a package.

        For experiments and tests; users load ``.scorer`` packages, which carry the
        alphabet check.
        """
        scorer = cls.__new__(cls)
        scorer._setup(alpha, beta, lm_path, tuple(vocab), alphabet)
        scorer.scorer_path = None
        return scorer

    def _setup(
        self,
        alpha: float,
        beta: float,
        lm_path: str,
        vocab: Sequence[str],
        alphabet: Alphabet,
    ) -> None:
        if alphabet.space_index is None:
            raise ScorerError(
                f"a word scorer needs an alphabet with a space symbol, got {alphabet!r}"
            )
        if not os.path.isfile(lm_path):
            raise ScorerError(f"language model {lm_path!r} does not exist")
        self.lm_path = lm_path
        self.vocab = tuple(vocab)
        self.alphabet = alphabet
        self._alpha = float(alpha)
        self._beta = float(beta)
        self._parts: Optional[LMParts] = None

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def beta(self) -> float:
        return self._beta

    def reset_params(self, alpha: float, beta: float) -> None:
        """Change alpha and beta (lm_optimizer.py trials); the LM stays loaded."""
        self._alpha = float(alpha)
        self._beta = float(beta)

    def parts(self) -> "LMParts":
        """The loaded KenLM, word dictionary and spelling trie (built once)."""
        if self._parts is None:
            self._parts = LMParts.build(self.lm_path, self.vocab, self.alphabet)
        return self._parts

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_parts"] = None  # flashlight objects cannot be pickled
        return state


def _check_words_in_lm(lm_path: str, vocab: Sequence[str]) -> None:
    """Raise unless most words of a DeepSpeech 0.9 package are known to its LM.

    A 0.9 package stores words as alphabet labels. Read with another alphabet of the
    same size and space position, the labels spell other words, which the LM does not
    know: they all score exactly like ``<unk>`` (DeepSpeech 0.9 decoded garbage then).
    """
    if not vocab:
        raise ScorerError(f"scorer {lm_path!r} has an empty vocabulary")
    step = max(1, len(vocab) // _VOCAB_CHECK_WORDS)
    sample = [w for w in vocab[::step] if w not in _SPECIAL_WORDS]
    words = Dictionary()
    words.add_entry(_UNK)
    for word in sample:
        words.add_entry(word)
    lm = KenLM(lm_path, words)
    start = lm.start(False)
    unknown_score = lm.score(start, words.get_index(_UNK))[1]
    unknown = [
        w for w in sample if lm.score(start, words.get_index(w))[1] == unknown_score
    ]
    if len(unknown) * 2 > len(sample):
        raise ScorerError(
            f"scorer {lm_path!r}: {len(unknown)} of {len(sample)} vocabulary words "
            f"spelled with the model's alphabet are unknown to its language model "
            f"(e.g. {unknown[:3]}); it was built for another alphabet"
        )


class LMParts:
    """flashlight objects of one scorer: KenLM, word dictionary, spelling trie."""

    def __init__(self, lm: Any, words: Any, trie: Any, unk: int) -> None:
        self.lm = lm
        self.words = words
        self.trie = trie
        self.unk = unk

    @classmethod
    def build(cls, lm_path: str, vocab: Sequence[str], alphabet: Alphabet) -> "LMParts":
        words = Dictionary()
        words.add_entry(_UNK)
        usable = [
            w for w in vocab if w not in _SPECIAL_WORDS and alphabet.can_encode(w)
        ]
        for word in usable:
            words.add_entry(word)
        lm = KenLM(lm_path, words)
        space = alphabet.space_index
        trie = None
        if not isinstance(alphabet, UTF8Alphabet):  # bytes: ByteCharacterLM spells
            trie = fl.Trie(alphabet.n_classes, space)
            start = lm.start(False)
            for word in usable:
                index = words.get_index(word)
                unigram = lm.score(start, index)[1]  # log10; steers pruning only
                trie.insert(alphabet.encode(word) + [space], index, unigram)
            trie.smear(fl.SmearingMode.MAX)
        if len(usable) < len(vocab):
            logging.info(
                "scorer: %d of %d vocabulary words are decodable with %r",
                len(usable),
                len(vocab),
                alphabet,
            )
        return cls(lm, words, trie, words.get_index(_UNK))


class HotWordLM(fl.LM):
    """KenLM plus a per-word boost: DeepSpeech 0.9's hot words (module docstring)."""

    def __init__(self, inner: Any, boosts_log10: Mapping[int, float]) -> None:
        fl.LM.__init__(self)
        self._inner = inner
        self._boosts = dict(boosts_log10)

    def start(self, start_with_nothing: bool) -> Any:
        return self._inner.start(start_with_nothing)

    def score(self, state: Any, token_index: int) -> Tuple[Any, float]:
        next_state, score = self._inner.score(state, token_index)
        return next_state, score + self._boosts.get(token_index, 0.0)

    def finish(self, state: Any) -> Tuple[Any, float]:
        return self._inner.finish(state)


NOT_SPELLABLE = -1e30  # nats: what ByteCharacterLM gives a byte no entry continues


class ByteCharacterLM(fl.LM):
    """A character LM over byte tokens: bytes output mode's scorer (doc/DECODER.rst).

    flashlight's lexicon-free search asks for a score after every byte label. Bytes
    that continue the UTF-8 spelling of a vocabulary entry score 0 until the entry's
    last byte, which adds ``alpha * ln P_lm(entry | history) + beta`` (DeepSpeech 0.9
    scored at each code point boundary); any other byte scores
    :data:`NOT_SPELLABLE`, so only vocabulary characters are produced. The space
    label between entries is free and leaves the LM state alone (the LM is a
    character LM without spaces); a hypothesis ending inside a character cannot
    finish. Scores are in nats, with alpha and beta applied here: the decoder's
    ``lm_weight`` is 1.

    State: flashlight's KenLM state at a character boundary, else a child of it per
    pending byte; ``_info`` maps each to (KenLM state, spelling node). It is reset by
    :meth:`start`, once per utterance or stream, and grows with the hypotheses, as
    flashlight's own LM state tree does.
    """

    def __init__(
        self,
        parts: LMParts,
        alphabet: UTF8Alphabet,
        alpha: float,
        beta: float,
        boosts: Mapping[int, float],
    ) -> None:
        fl.LM.__init__(self)
        self._lm = parts.lm
        self._weight = float(alpha) * LOG10_TO_LN
        self._beta = float(beta)
        self._boosts = {i: float(b) * alpha for i, b in boosts.items()}  # nats
        self._space = alphabet.space_index
        # spelling tree: node = {byte label: child node | entry index (int)}
        self._root: Dict[int, Any] = {}
        for index in range(parts.words.index_size()):
            entry = parts.words.get_entry(index)
            if index == parts.unk or entry in _SPECIAL_WORDS:
                continue
            labels = alphabet.encode(entry)
            node = self._root
            for label in labels[:-1]:
                node = node.setdefault(label, {})
                if not isinstance(node, dict):  # UTF-8 is prefix-free: never
                    raise ScorerError(f"vocabulary entry {entry!r} clashes")
            node[labels[-1]] = index
        self._info: Dict[Any, Tuple[Any, Dict[int, Any]]] = {}
        self._cache: Dict[Tuple[Any, int], Tuple[Any, float]] = {}

    def start(self, start_with_nothing: bool) -> Any:
        state = self._lm.start(start_with_nothing)
        self._info = {state: (state, self._root)}
        self._cache = {}
        return state

    def score(self, state: Any, token_index: int) -> Tuple[Any, float]:
        base, node = self._info[state]
        step = node.get(token_index)
        if step is None:
            if token_index == self._space and node is self._root:
                return state, 0.0
            return state, NOT_SPELLABLE
        if isinstance(step, dict):  # inside a character
            child = state.child(token_index)
            if child not in self._info:
                self._info[child] = (base, step)
            return child, 0.0
        hit = self._cache.get((base, step))
        if hit is None:  # the character is complete: score it
            after, log10 = self._lm.score(base, step)
            self._info.setdefault(after, (after, self._root))
            score = self._weight * log10 + self._beta + self._boosts.get(step, 0.0)
            hit = self._cache[(base, step)] = (after, score)
        return hit

    def finish(self, state: Any) -> Tuple[Any, float]:
        base, node = self._info[state]
        if node is not self._root:
            return state, NOT_SPELLABLE
        after, log10 = self._lm.finish(base)
        return after, self._weight * log10
