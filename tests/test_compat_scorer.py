"""DeepSpeech 0.9 ``.scorer`` packages (issue 12), on DeepSpeech 0.9.3's own smoke-test
scorer (tests/data/ds093/, MPL-2.0): header, vocabulary recovered from the trie,
decoding identical to this project's package with the same LM and words, clear errors
for bytes-mode packages with a character model and other-alphabet packages, and the
0.9 writer."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from ctcdecode import Alphabet, Scorer, ctc_beam_search_decoder, ds09_scorer
from ctcdecode.scorer_package import (
    KIND_DS09,
    ScorerError,
    read_scorer_package,
    rewrite_defaults,
    write_ds09_package,
    write_scorer_package,
)

DS093 = os.path.join(os.path.dirname(__file__), "data", "ds093")
UPSTREAM = os.path.join(DS093, "pruned_lm.scorer")
UPSTREAM_BYTES = os.path.join(DS093, "pruned_lm.bytes.scorer")
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"
TRIE_OFFSET = 266112  # = the KenLM model's size (0.9's GetEndOfSearchOffset)


def upstream_vocab():
    with open(os.path.join(DS093, "vocab.pruned.txt"), encoding="utf-8") as fin:
        return fin.read().split()


def test_header_and_trie_of_the_upstream_scorer(alphabet):
    trie = ds09_scorer.read_ds09_scorer(UPSTREAM, alphabet.space_index)
    assert trie.trie_offset == TRIE_OFFSET
    assert trie.utf8_mode is False
    assert trie.default_alpha == 0.75
    assert trie.default_beta == pytest.approx(1.85, abs=1e-7)  # stored via float32
    assert (trie.n_states, trie.n_arcs) == (3451, 6488)
    with open(UPSTREAM, "rb") as fin:
        assert fin.read(33) == ds09_scorer.KENLM_MAGIC


def test_recovered_vocabulary_is_vocab_pruned(alphabet):
    """Every word of vocab.pruned.txt, and nothing else, comes back from the FST."""
    package = read_scorer_package(UPSTREAM, alphabet=alphabet)
    assert package.kind == KIND_DS09 and package.lm_path == UPSTREAM
    vocab = upstream_vocab()
    assert len(package.vocab) == len(set(package.vocab)) == 3540
    assert sorted(package.vocab) == sorted(vocab)


def noisy_probs(text: str, alphabet: Alphabet, seed: int = 0) -> np.ndarray:
    """Softmax-like frames spelling ``text`` with a strong wrong runner-up per char
    (which wins the frame for every 5th character)."""
    rng = np.random.default_rng(seed)
    frames = []
    blank = alphabet.blank_index
    for i, label in enumerate(alphabet.encode(text)):
        for _ in range(2):
            row = np.full(alphabet.n_classes, 0.01, np.float32)
            wrong = (label + rng.integers(1, alphabet.size() - 1)) % alphabet.size()
            # every 5th character: the wrong one wins the frame (greedy misspells)
            row[wrong], row[label] = (0.5, 0.35) if i % 5 == 2 else (0.35, 0.5)
            frames.append(row / row.sum())
        row = np.full(alphabet.n_classes, 0.01, np.float32)
        row[blank] = 0.9
        frames.append(row / row.sum())
    return np.stack(frames)


def test_decodes_exactly_as_the_native_package(alphabet, tmp_path):
    """The 0.9 package and a native package of its LM and words decode alike."""
    lm = tmp_path / "lm.binary"
    with open(UPSTREAM, "rb") as fin:
        lm.write_bytes(fin.read(TRIE_OFFSET))
    native = str(tmp_path / "native.scorer")
    write_scorer_package(
        native, str(lm), upstream_vocab(), alphabet, 0.75, 1.850000023841858, False
    )
    probs = noisy_probs(LDC93S1_TEXT, alphabet)
    greedy = ctc_beam_search_decoder(probs, alphabet, 1)[0]
    results = {}
    for path in (UPSTREAM, native):
        scorer = Scorer(None, None, path, alphabet)
        assert (scorer.alpha, scorer.beta) == (0.75, 1.850000023841858)
        results[path] = ctc_beam_search_decoder(
            probs, alphabet, 64, scorer=scorer, num_results=3
        )
    ours, theirs = results[UPSTREAM], results[native]
    assert [r.text for r in ours] == [r.text for r in theirs]
    assert [r.score for r in ours] == pytest.approx([r.score for r in theirs])
    assert [r.confidence for r in ours] == pytest.approx([r.confidence for r in theirs])
    assert ours[0].text == LDC93S1_TEXT
    assert greedy.text != LDC93S1_TEXT  # the LM did the work


def test_training_side_loads_it(alphabet):
    from util.config import DecoderConfig
    from util.evaluate import load_scorer

    scorer = load_scorer(DecoderConfig(scorer_path=UPSTREAM), alphabet)
    assert scorer.alpha == 0.75 and len(scorer.vocab) == 3540


def test_bytes_mode_scorer_with_a_character_model_is_refused_clearly(alphabet):
    """(tests/test_bytes_mode.py decodes with it, for a bytes model.)"""
    with pytest.raises(ScorerError, match="is a bytes output mode scorer.*alphabet"):
        read_scorer_package(UPSTREAM_BYTES, alphabet=alphabet)


def test_another_alphabet_is_refused(alphabet):
    letters = [s for s in alphabet.symbols if s not in (" ", "'")]
    swapped = Alphabet.from_symbols([" ", *letters[::-1], "'"])  # same size and space
    with pytest.raises(ScorerError, match="unknown to its language model"):
        Scorer(None, None, UPSTREAM, swapped)
    no_apostrophe = Alphabet.from_symbols([" ", *letters])
    with pytest.raises(ScorerError, match="built for another alphabet"):
        read_scorer_package(UPSTREAM, alphabet=no_apostrophe)
    space_last = Alphabet.from_symbols([*letters, "'", " "])
    with pytest.raises(ScorerError, match="do not end with its space label"):
        read_scorer_package(UPSTREAM, alphabet=space_last)
    with pytest.raises(ScorerError, match="records no alphabet"):
        read_scorer_package(UPSTREAM)


def test_truncated_package_is_refused(alphabet, tmp_path):
    cut = tmp_path / "cut.scorer"
    with open(UPSTREAM, "rb") as fin:
        cut.write_bytes(fin.read()[:-100])
    with pytest.raises(ScorerError, match="another version or is truncated"):
        read_scorer_package(str(cut), alphabet=alphabet)
    lm_only = tmp_path / "lm_only.scorer"
    with open(UPSTREAM, "rb") as fin:
        lm_only.write_bytes(fin.read(TRIE_OFFSET))
    with pytest.raises(ScorerError, match="without a vocabulary trie"):
        read_scorer_package(str(lm_only), alphabet=alphabet)


def test_writer_rebuilds_the_upstream_package(alphabet, tmp_path):
    """Same LM + vocab.pruned.txt + alphabet + alpha/beta -> the upstream layout."""
    lm = tmp_path / "lm.binary"
    with open(UPSTREAM, "rb") as fin:
        upstream = fin.read()
    lm.write_bytes(upstream[:TRIE_OFFSET])
    path = str(tmp_path / "rebuilt.scorer")
    n = write_ds09_package(path, str(lm), upstream_vocab(), alphabet, 0.75, 1.85)
    assert n == 3540
    with open(path, "rb") as fin:
        rebuilt = fin.read()
    assert len(rebuilt) == len(upstream)  # same states, arcs and alignment padding
    # KenLM model, trie header (magic, version, utf8 flag, alpha, beta) and the FST
    # header up to its properties are byte-identical.
    props_at = TRIE_OFFSET + 25 + 4 + 9 + 12 + 8
    assert rebuilt[:props_at] == upstream[:props_at]
    ours, theirs = (
        struct.unpack_from("<Q", b, props_at)[0] for b in (rebuilt, upstream)
    )
    top_sorted, not_top_sorted = 1 << 38, 1 << 39  # only the state numbering differs
    assert ours ^ theirs == top_sorted | not_top_sorted
    assert (
        rebuilt[props_at + 8 : props_at + 32] == upstream[props_at + 8 : props_at + 32]
    )
    back = read_scorer_package(path, alphabet=alphabet)
    assert sorted(back.vocab) == sorted(upstream_vocab())
    assert (back.default_alpha, back.default_beta) == (0.75, 1.850000023841858)


def test_writer_refuses_an_lm_with_vocabulary_strings(alphabet, tmp_path):
    lm = tmp_path / "lm.binary"
    with open(UPSTREAM, "rb") as fin:
        head = bytearray(fin.read(TRIE_OFFSET))
    head[ds09_scorer.KENLM_HAS_VOCABULARY_OFFSET] = 1
    lm.write_bytes(bytes(head))
    with pytest.raises(ScorerError, match="build_binary -v"):
        write_ds09_package(str(tmp_path / "x.scorer"), str(lm), ["a"], alphabet, 1, 1)


def test_rewrite_defaults_keeps_the_09_format(alphabet, tmp_path):
    path = str(tmp_path / "copy.scorer")
    shutil.copy(UPSTREAM, path)
    rewrite_defaults(path, 1.5, 2.5)
    package = read_scorer_package(path, alphabet=alphabet)
    assert package.kind == KIND_DS09
    assert (package.default_alpha, package.default_beta) == (1.5, 2.5)
    assert os.path.getsize(path) == os.path.getsize(UPSTREAM)


def test_generate_scorer_package_writes_09_format(repo_root, alphabet, tmp_path):
    from helpers import build_tiny_lm

    lm_dir = build_tiny_lm(tmp_path.parent)
    (vocab,) = lm_dir.glob("vocab-*.txt")
    package = str(tmp_path / "ds09.scorer")
    result = subprocess.run(
        [sys.executable, os.path.join(repo_root, "native_client",
                                      "generate_scorer_package.py"),
         "--alphabet", os.path.join(repo_root, "data", "alphabet.txt"),
         "--lm", str(lm_dir / "lm.binary"), "--vocab", str(vocab),
         "--package", package, "--package_format", "deepspeech-0.9"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert ds09_scorer.is_ds09_scorer(package)
    scorer = Scorer(None, None, package, alphabet)
    probs = noisy_probs(LDC93S1_TEXT, alphabet, seed=1)
    best = ctc_beam_search_decoder(probs, alphabet, 64, scorer=scorer)[0]
    assert best.text == LDC93S1_TEXT
