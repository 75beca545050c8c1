"""Tests for native_client/ctcdecode/decoder.py: greedy, beam search, KenLM scorer.

The LM is a tiny bigram ARPA written here (KenLM and flashlight load ARPA as well as
binaries), so the vocabulary is under the test's control and no KenLM tools are
needed. Emissions are synthetic: 3 frames per character (2 peaked on the character,
1 blank), with chosen characters made ambiguous.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from typing import Dict, Mapping, Optional

import numpy as np
import pytest

from ctcdecode import (
    Alphabet,
    BatchDecoder,
    BeamOptions,
    Scorer,
    StreamingDecoder,
    ctc_beam_search_decoder,
    ctc_beam_search_decoder_batch,
    ctc_greedy_decoder,
    scorer_package,
)
from ctcdecode.decoder import LOG10_TO_LN, log_emissions
from ctcdecode.scorer_package import ScorerError
from helpers import write_bigram_arpa

SENTENCE = "she had your dark suit in greasy wash water all year"
# In the vocabulary but not in the LM's bigrams: acoustically close alternatives.
DISTRACTORS = ("soot", "wish", "greedy", "hat")
ALPHA, BETA = 0.931289039105002, 1.1834137581510284  # DeepSpeech 0.9's defaults


@pytest.fixture(scope="module")
def lm_files(tmp_path_factory):
    """(ARPA path, vocabulary) of the test LM."""
    work = tmp_path_factory.mktemp("lm")
    arpa = str(work / "lm.arpa")
    write_bigram_arpa(arpa, [SENTENCE], DISTRACTORS)
    vocab = sorted(set(SENTENCE.split()) | set(DISTRACTORS))
    return arpa, vocab


@pytest.fixture
def scorer(lm_files, alphabet) -> Scorer:
    arpa, vocab = lm_files
    return Scorer.from_lm(ALPHA, BETA, arpa, vocab, alphabet)


def emissions(
    text: str,
    alphabet: Alphabet,
    confusions: Optional[Mapping[int, Dict[str, float]]] = None,
    peak: float = 0.9,
) -> np.ndarray:
    """Softmax-like probs float32 [3 * len(text) + 1, n_classes].

    confusions: character position -> {char: prob} for its two frames (the rest of
    the mass spread evenly).
    """
    n = alphabet.n_classes
    blank = alphabet.blank_index
    frames = [{blank: peak}]
    for i, label in enumerate(alphabet.encode(text)):
        dist = dict((confusions or {}).get(i, {}))
        dist = {alphabet.encode(c)[0]: p for c, p in dist.items()} or {label: peak}
        frames += [dist, dist, {blank: peak}]
    probs = np.zeros((len(frames), n), np.float32)
    for t, dist in enumerate(frames):
        rest = (1.0 - sum(dist.values())) / (n - len(dist))
        probs[t] = rest
        for label, p in dist.items():
            probs[t, label] = p
    return probs


def misspelled(alphabet: Alphabet) -> np.ndarray:
    """Emissions of SENTENCE; greedy reads "she hat your dark soit in greisy ..."."""
    pos = {w: SENTENCE.index(w) for w in ("had", "suit", "greasy")}
    confusions = {
        pos["had"] + 2: {"t": 0.5, "d": 0.4},
        pos["suit"] + 1: {"o": 0.5, "u": 0.4},
        pos["greasy"] + 3: {"i": 0.5, "a": 0.4},
    }
    return emissions(SENTENCE, alphabet, confusions)


def soot_favoured(alphabet: Alphabet) -> np.ndarray:
    """SENTENCE, but 'suit' sounds like 'soot' (both in the vocabulary)."""
    start = SENTENCE.index("suit")
    confusions = {
        start + 1: {"o": 0.6, "u": 0.3},
        start + 2: {"o": 0.6, "i": 0.3},
    }
    return emissions(SENTENCE, alphabet, confusions)


def test_greedy_misspells_and_lm_beam_search_restores_the_sentence(alphabet, scorer):
    probs = misspelled(alphabet)
    greedy = ctc_greedy_decoder(probs, alphabet)
    assert greedy.text == "she hat your dark soit in greisy wash water all year"
    free = ctc_beam_search_decoder(probs, alphabet, 64)
    assert free[0].text == greedy.text
    with_lm = ctc_beam_search_decoder(probs, alphabet, 64, scorer=scorer)
    assert with_lm[0].text == SENTENCE
    assert with_lm[0].confidence < free[0].confidence  # the LM paid acoustically


def test_alpha_beta_zero_reproduces_lm_free_ranking(alphabet, scorer):
    probs = soot_favoured(alphabet)
    soot = SENTENCE.replace("suit", "soot")
    free = ctc_beam_search_decoder(probs, alphabet, 256, num_results=100)
    assert free[0].text == soot
    scorer.reset_params(0.0, 0.0)
    lexicon = ctc_beam_search_decoder(
        probs, alphabet, 256, scorer=scorer, num_results=5
    )
    assert lexicon[0].text == soot
    # Same hypotheses, same scores, same order as without an LM (in-vocabulary ones).
    free_rank = {r.text: (i, r.score) for i, r in enumerate(free)}
    ranks = []
    for hyp in lexicon:
        assert hyp.score == pytest.approx(hyp.confidence, abs=1e-3)
        if hyp.score < free[-1].score:
            continue  # ranked below the LM-free list we asked for
        rank, score = free_rank[hyp.text]
        assert hyp.score == pytest.approx(score, abs=1e-3)
        ranks.append(rank)
    assert len(ranks) >= 2
    assert ranks == sorted(ranks)
    scorer.reset_params(ALPHA, BETA)
    assert (
        ctc_beam_search_decoder(probs, alphabet, 256, scorer=scorer)[0].text == SENTENCE
    )


def test_lm_score_is_alpha_times_natural_log_plus_beta_per_word(alphabet, scorer):
    """score - confidence == alpha * ln(10) * log10 P_lm + beta * n_words."""
    probs = emissions(SENTENCE, alphabet)
    best = ctc_beam_search_decoder(probs, alphabet, 64, scorer=scorer)[0]
    n_words = len(SENTENCE.split())
    # Every bigram of SENTENCE (with <s> and </s>) is in the ARPA at log10 -0.1.
    log10_lm = -0.1 * (n_words + 1)
    expected = ALPHA * LOG10_TO_LN * log10_lm + BETA * n_words
    assert best.score - best.confidence == pytest.approx(expected, abs=1e-4)


def test_beam_search_without_scorer_equals_greedy_on_peaked_emissions(alphabet):
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.integers(0, alphabet.size(), size=12)
        text = alphabet.decode(labels)
        probs = emissions(text, alphabet, peak=0.97)
        greedy = ctc_greedy_decoder(probs, alphabet)
        beam = ctc_beam_search_decoder(probs, alphabet, 16)[0]
        assert greedy.text == text
        assert (beam.text, beam.tokens, beam.timesteps) == (
            greedy.text,
            greedy.tokens,
            greedy.timesteps,
        )
        assert beam.confidence == pytest.approx(greedy.confidence, rel=1e-5)


def test_timesteps_are_monotone_and_within_length(alphabet, scorer):
    probs = misspelled(alphabet)
    length = len(probs) - 30  # decode a prefix only: "... wash wat"
    for result in [
        ctc_greedy_decoder(probs, alphabet, length),
        *ctc_beam_search_decoder(probs[:length], alphabet, 32, num_results=3),
        *ctc_beam_search_decoder(probs[:length], alphabet, 32, scorer=scorer),
    ]:
        assert len(result.tokens) == len(result.timesteps) > 0
        assert list(result.timesteps) == sorted(set(result.timesteps))
        assert 0 <= result.timesteps[0] and result.timesteps[-1] < length
        assert alphabet.decode(result.tokens) == result.text
    full = ctc_beam_search_decoder(probs, alphabet, 32, scorer=scorer)[0]
    words = full.words(alphabet)
    assert [w for w, _, _ in words] == SENTENCE.split()
    assert words[0][1] == 1  # 's' is peaked from frame 1 (frame 0 is blank)
    assert all(a[2] < b[1] for a, b in zip(words, words[1:]))


def test_hot_word_boost_changes_the_result(alphabet, scorer):
    probs = soot_favoured(alphabet)
    plain = ctc_beam_search_decoder(probs, alphabet, 64, scorer=scorer)[0]
    assert plain.text == SENTENCE
    boosted = ctc_beam_search_decoder(
        probs, alphabet, 64, scorer=scorer, hot_words={"soot": 10.0}
    )[0]
    assert boosted.text == SENTENCE.replace("suit", "soot")
    demoted = ctc_beam_search_decoder(
        misspelled(alphabet), alphabet, 64, scorer=scorer, hot_words={"suit": -100.0}
    )[0]
    assert "suit" not in demoted.text.split()
    with pytest.raises(ValueError, match="hot words need a scorer"):
        ctc_beam_search_decoder(probs, alphabet, 8, hot_words={"soot": 1.0})


def test_batch_decoder_equals_serial(alphabet, scorer):
    batch = [
        misspelled(alphabet),
        soot_favoured(alphabet),
        emissions("she had", alphabet),
    ]
    padded = np.zeros((len(batch), max(len(p) for p in batch), alphabet.n_classes))
    for row, probs in enumerate(batch):
        padded[row, : len(probs)] = probs
    lengths = [len(p) for p in batch]
    serial = [ctc_beam_search_decoder(p, alphabet, 32, scorer=scorer) for p in batch]
    parallel = ctc_beam_search_decoder_batch(
        list(padded), lengths, alphabet, 32, num_processes=2, scorer=scorer
    )
    assert parallel == serial
    with BatchDecoder(alphabet, BeamOptions(beam_size=32), None, None, 1) as decoder:
        assert decoder.decode(list(padded), lengths)[2][0].text == "she had"


def test_cutoff_prob_keeps_the_most_likely_labels_up_to_the_mass(alphabet):
    probs = np.zeros((1, alphabet.n_classes), np.float32)
    probs[0, :2] = [0.5, 0.3]
    probs[0, 3:] = 0.1 / (alphabet.n_classes - 3)
    probs[0, 2] = 0.1
    logp = log_emissions(probs, 0.75, False, alphabet)
    assert np.isfinite(logp[0, :2]).all() and (logp[0, :2] > -1e9).all()
    assert (logp[0, 2:] < -1e9).all()
    assert (log_emissions(probs, 1.0, False, alphabet) > -1e9).all()


def test_wrong_shapes_are_rejected(alphabet):
    with pytest.raises(ValueError, match="probs must be"):
        ctc_beam_search_decoder(np.zeros((4, 5), np.float32), alphabet, 8)
    with pytest.raises(ValueError, match="cutoff_prob"):
        BeamOptions(cutoff_prob=0.0)


@pytest.fixture(scope="module")
def scorer_file(lm_files, alphabet, repo_root, tmp_path_factory):
    """A .scorer package of the test LM (KenLM binary when the tools are built)."""
    arpa, vocab = lm_files
    work = tmp_path_factory.mktemp("scorer")
    path = str(work / "test.scorer")
    build_binary = os.path.join(repo_root, "tools", "kenlm", "bin", "build_binary")
    if os.access(build_binary, os.X_OK):
        lm = str(work / "lm.binary")
        subprocess.run([build_binary, arpa, lm], check=True, capture_output=True)
        scorer_package.write_scorer_package(path, lm, vocab, alphabet, 0.5, 2.0, False)
        return path
    with pytest.MonkeyPatch.context() as patch:  # accept ARPA: no build_binary here
        patch.setattr(scorer_package, "_check_lm_binary", lambda lm_path: None)
        scorer_package.write_scorer_package(
            path, arpa, vocab, alphabet, 0.5, 2.0, False
        )
    return path


def test_scorer_package_loads_with_its_default_alpha_beta(scorer_file, alphabet):
    scorer = Scorer(None, None, scorer_file, alphabet)
    assert (scorer.alpha, scorer.beta) == (0.5, 2.0)
    assert Scorer(1.5, None, scorer_file, alphabet).alpha == 1.5
    result = ctc_beam_search_decoder(misspelled(alphabet), alphabet, 64, scorer=scorer)
    assert result[0].text == SENTENCE


def test_scorer_for_another_alphabet_is_refused(scorer_file, alphabet, tmp_path):
    other = Alphabet.from_symbols([" ", *"abcdefghijklmnopqrstuvwxyz"])  # no "'"
    with pytest.raises(ScorerError, match="alphabet"):
        Scorer(None, None, scorer_file, other)
    copy = tmp_path / "copy.scorer"
    shutil.copy(scorer_file, copy)
    with open(copy, "r+b") as fout:
        fout.truncate(os.path.getsize(copy) - 10)
    with pytest.raises(ScorerError, match="truncated|corrupted"):
        Scorer(None, None, str(copy), alphabet)


def test_log10_to_ln_constant():
    assert LOG10_TO_LN == pytest.approx(1.0 / math.log10(math.e))


# --- streaming (native_client/ctcdecode/streaming.py) ----------------------------


def random_probs(alphabet: Alphabet, n_frames: int, seed: int = 0) -> np.ndarray:
    """Peaky random softmax rows float32 [n_frames, n_classes]: no exact score ties.

    flashlight breaks exact ties by memory address, so only tie-free emissions give
    reproducible n-best lists (the synthetic ones above tie by construction).
    """
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(alphabet.n_classes, 0.3), n_frames).astype(np.float32)


def _stream(probs, chunk, decoder, every_chunk=None):
    for start in range(0, len(probs), chunk):
        decoder.feed(probs[start : start + chunk])
        if every_chunk:
            every_chunk(decoder)
    return decoder.finish()


def _key(results):
    return [(r.text, r.tokens, r.timesteps, r.confidence) for r in results]


@pytest.mark.parametrize("with_scorer", [False, True])
def test_streaming_decoder_equals_whole_utterance_search(alphabet, scorer, with_scorer):
    probs = random_probs(alphabet, 300)
    lm = scorer if with_scorer else None
    hot = {"soot": 3.0} if with_scorer else None
    whole = ctc_beam_search_decoder(
        probs, alphabet, 32, scorer=lm, hot_words=hot, num_results=4
    )
    for chunk, interval in [(1, 1), (7, 5), (16, 50)]:
        decoder = StreamingDecoder(
            alphabet, BeamOptions(beam_size=32, num_results=4), lm, hot, interval
        )
        streamed = _stream(
            probs, chunk, decoder, lambda d: (d.intermediate(), d.intermediate(3))
        )
        assert _key(streamed) == _key(whole), (chunk, interval)
        for a, b in zip(streamed, whole):
            assert a.score == pytest.approx(b.score, abs=1e-6)
        assert decoder.n_commits > 0 and decoder.n_forced_commits == 0
        assert decoder.n_frames == len(probs)


def test_streaming_decoder_intermediate_results(alphabet, scorer):
    probs = misspelled(alphabet)
    for lm in (None, scorer):
        decoder = StreamingDecoder(alphabet, BeamOptions(beam_size=64), lm, None, 10)
        texts = []
        for start in range(0, len(probs), 16):
            decoder.feed(probs[start : start + 16])
            best = decoder.intermediate()[0]
            assert decoder.intermediate(3)[0] == best  # one path or all: same best
            assert list(best.timesteps) == sorted(set(best.timesteps))
            assert best.timesteps[-1] < decoder.n_frames
            texts.append(best.text)
        assert [len(t.split()) for t in texts] == sorted(len(t.split()) for t in texts)
        final = decoder.finish()[0]
        whole = ctc_beam_search_decoder(probs, alphabet, 64, scorer=lm)[0]
        assert _key([final]) == _key([whole])
        assert final.text.startswith(texts[-1].rsplit(" ", 1)[0])
    assert final.text == SENTENCE
    with pytest.raises(RuntimeError, match="finished"):
        decoder.feed(probs[:1])


def test_streaming_decoder_work_per_chunk_stays_bounded(alphabet):
    """A long stream: each feed searches only its frames and the history is bounded."""
    probs = random_probs(alphabet, 3000, seed=1)
    decoder = StreamingDecoder(
        alphabet, BeamOptions(beam_size=8), commit_interval=25, max_lag=100
    )
    held = []
    for start in range(0, len(probs), 16):
        before = decoder.n_frames
        decoder.feed(probs[start : start + 16])
        assert decoder.n_frames - before == len(probs[start : start + 16])
        decoder.intermediate()
        held.append(decoder.n_held_frames)
    assert max(held) <= 100 + 25 + 16
    assert decoder.n_commits >= len(probs) // 125
    final = decoder.finish()[0]
    assert final.timesteps[-1] < len(probs)
    assert len(final.tokens) == len(final.timesteps) == len(final.text)


def test_streaming_decoder_empty_stream(alphabet, scorer):
    empty = np.zeros((0, alphabet.n_classes), np.float32)
    for lm in (None, scorer):
        decoder = StreamingDecoder(alphabet, BeamOptions(beam_size=8), lm)
        assert decoder.intermediate()[0].text == ""
        decoder.feed(empty)
        assert _key(decoder.finish()) == _key(
            ctc_beam_search_decoder(empty, alphabet, 8, scorer=lm)
        )
    with pytest.raises(ValueError, match="commit_interval"):
        StreamingDecoder(alphabet, commit_interval=0)


@pytest.mark.parametrize(
    "spoken", ["xqz she had", "she xqz had", "she had xqz", "she  had", " she had "]
)
def test_lexicon_search_leaves_no_stray_spaces(alphabet, scorer, spoken):
    """Issue 10 case 3: words the vocabulary cannot spell left their spaces behind
    (' is five degrees outside'); silence is not a token."""
    probs = emissions(spoken, alphabet)
    whole = ctc_beam_search_decoder(probs, alphabet, 64, scorer=scorer, num_results=3)
    assert whole[0].text.startswith("she had")
    for result in whole:
        assert result.text == " ".join(result.text.split()), result.text
        assert len(result.tokens) == len(result.timesteps) == len(result.text)
    for chunk in (1, 4, 1000):
        decoder = StreamingDecoder(
            alphabet, BeamOptions(64, num_results=3), scorer, commit_interval=2
        )
        partial = []
        streamed = _stream(
            probs, chunk, decoder, lambda d: partial.append(d.intermediate()[0].text)
        )
        # (what follows "had" in "she had xqz" is a tie the search breaks either way)
        assert streamed[0].text.startswith("she had"), chunk
        for result in streamed:
            assert result.text == " ".join(result.text.split()), result.text
        assert all(text == " ".join(text.split()) for text in partial), partial


@pytest.mark.parametrize("with_scorer", [False, True])
def test_long_utterance_search_holds_bounded_history(
    alphabet, scorer, with_scorer, monkeypatch
):
    """Issue 11 case 6: flashlight kept every frame's hypotheses (2.2 GB at beam 50
    on 10 minutes); a long utterance must be searched with bounded history."""
    from ctcdecode import decoder as decoder_module
    from ctcdecode import streaming

    held = []
    feed = streaming.StreamingDecoder.feed

    def recording_feed(self, probs):
        feed(self, probs)
        held.append(self.n_held_frames)

    monkeypatch.setattr(streaming.StreamingDecoder, "feed", recording_feed)
    one = emissions(SENTENCE, alphabet)
    probs = emissions(" ".join([SENTENCE] * 12), alphabet)  # 1900 frames
    assert len(probs) > decoder_module.BOUNDED_FROM_FRAMES
    found = ctc_beam_search_decoder(
        probs, alphabet, 32, scorer=scorer if with_scorer else None, num_results=2
    )
    assert len(held) >= len(probs) // streaming.DEFAULT_COMMIT_INTERVAL
    bound = streaming.DEFAULT_MAX_LAG + 2 * streaming.DEFAULT_COMMIT_INTERVAL
    assert max(held) <= bound
    assert found[0].text.split() == SENTENCE.split() * 12
    assert all(b > a for a, b in zip(found[0].timesteps, found[0].timesteps[1:]))
    held.clear()  # a short utterance keeps the one-shot search
    ctc_beam_search_decoder(one, alphabet, 32)
    assert held == []
