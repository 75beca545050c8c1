"""lm_optimizer.py: the search finds a good (alpha, beta), decodes the cached acoustic
outputs per trial without re-running the model, and can store the pair in the scorer.

Uses the tiny KenLM model of tests/helpers.py (``make kenlm``) and the real beam
search of native_client/ctcdecode.
"""

import dataclasses
import json

import numpy as np
import pytest

import lm_optimizer
from ctcdecode import Scorer, ctc_greedy_decoder
from ctcdecode.scorer_package import (
    read_scorer_package,
    write_scorer_package,
)
from helpers import build_tiny_lm
from util import training

SENTENCES = ("she had your dark suit", "all year")


@pytest.fixture(scope="session")
def tiny_scorer(tmp_path_factory, alphabet):
    """A .scorer of the tiny LM for data/alphabet.txt (defaults alpha 0, beta 0)."""
    lm_dir = build_tiny_lm(tmp_path_factory.getbasetemp())
    (vocab_file,) = lm_dir.glob("vocab-*.txt")
    path = str(tmp_path_factory.mktemp("lm_optimizer") / "tiny.scorer")
    vocab = vocab_file.read_text(encoding="utf-8").split()
    write_scorer_package(path, str(lm_dir / "lm.binary"), vocab, alphabet, 0, 0, False)
    return path


def emissions(text, alphabet, swaps=None, seed=0):
    """Softmax-like probs [T, n_classes] spelling ``text``, one char then one blank.

    ``swaps`` maps a character position to a wrong character that gets 0.55 against
    the right one's 0.4, so greedy decoding misspells there.
    """
    rng = np.random.default_rng(seed)
    swaps = swaps or {}
    rows = []
    for pos, char in enumerate(text):
        row = np.full(alphabet.n_classes, 0.05 / alphabet.n_classes)
        if pos in swaps:
            row[alphabet.encode(swaps[pos])[0]] += 0.55
            row[alphabet.encode(char)[0]] += 0.40
        else:
            row[alphabet.encode(char)[0]] += 0.95
        blank = np.full(alphabet.n_classes, 0.02 / alphabet.n_classes)
        blank[alphabet.blank_index] += 0.98
        rows += [row, blank]
    probs = np.array(rows) * rng.uniform(0.99, 1.01, (len(rows), alphabet.n_classes))
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def utterances(alphabet):
    # greedy decoding reads "bark suin" and "alk"
    return [
        lm_optimizer.Utterance(
            emissions(SENTENCES[0], alphabet, {13: "b", 21: "n"}), SENTENCES[0]
        ),
        lm_optimizer.Utterance(
            emissions(SENTENCES[1], alphabet, {2: "k"}), SENTENCES[1]
        ),
    ]


def decoder_cfg(tiny_config):
    return tiny_config(decoder={"beam_width": 32, "cutoff_top_n": 10}).decoder


def test_corpus_wer_is_a_micro_average_without_cap():
    assert lm_optimizer.corpus_wer(["a b", "c d e f"], ["a x", "c d e f"]) == 1 / 6
    assert lm_optimizer.corpus_wer(["a"], ["x y z"]) == 3.0


def test_search_beats_the_greedy_transcript(tiny_scorer, alphabet, tiny_config):
    utts = utterances(alphabet)
    greedy = [ctc_greedy_decoder(u.probs, alphabet).text for u in utts]
    assert greedy == ["she had your bark suin", "alk year"]
    scorer = Scorer(None, None, tiny_scorer, alphabet)
    decoder = lm_optimizer.TrialDecoder(
        utts, alphabet, decoder_cfg(tiny_config), scorer, 1
    )
    settings = lm_optimizer.TuneSettings(n_trials=6, lm_alpha_max=3.0, lm_beta_max=3.0)
    result = lm_optimizer.optimize(decoder, SENTENCES, settings, start=(1.0, 1.0))
    assert result.wer == 0.0
    assert result.n_trials == 6
    assert 0 <= result.lm_alpha <= 3.0 and 0 <= result.lm_beta <= 3.0
    assert decoder.decode(result.lm_alpha, result.lm_beta) == list(SENTENCES)


def test_worker_pool_matches_serial_decoding(tiny_scorer, alphabet, tiny_config):
    utts = utterances(alphabet) * 2
    scorer = Scorer(None, None, tiny_scorer, alphabet)
    cfg = decoder_cfg(tiny_config)
    serial = lm_optimizer.TrialDecoder(utts, alphabet, cfg, scorer, 1)
    pooled = lm_optimizer.TrialDecoder(utts, alphabet, cfg, scorer, 2)
    try:
        for alpha, beta in [(0.5, 1.0), (2.0, 0.0)]:
            assert pooled.decode(alpha, beta) == serial.decode(alpha, beta)
    finally:
        pooled.close()


def test_end_to_end_caches_outputs_and_writes_defaults(
    tiny_scorer, alphabet, tiny_config, sample_csv, tmp_path, monkeypatch
):
    csv_path = sample_csv(("she had", "all year"))
    cfg = tiny_config(data={"train_files": (csv_path,)})
    training.train(training.build_session(cfg, alphabet, _strategy()))

    model_runs = []
    build_session = training.build_session

    def counting_session(*args, **kwargs):
        session = build_session(*args, **kwargs)
        eval_step = session.steps.eval_step
        session.steps.eval_step = lambda batch: model_runs.append(1) or eval_step(batch)
        return session

    monkeypatch.setattr(training, "build_session", counting_session)
    scorer_path = str(tmp_path / "copy.scorer")
    with open(tiny_scorer, "rb") as src, open(scorer_path, "wb") as dst:
        dst.write(src.read())
    cfg = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, test_files=(csv_path,), train_files=()),
        decoder=dataclasses.replace(
            decoder_cfg(tiny_config), scorer_path=scorer_path, decoder_processes=1
        ),
    )
    settings = lm_optimizer.TuneSettings(
        n_trials=4, lm_alpha_max=2.0, lm_beta_max=2.0, write_scorer_defaults=True
    )
    result = lm_optimizer.run(cfg, settings)
    assert len(model_runs) == 2  # one batch per utterance, once, not once per trial
    saved = json.loads((tmp_path / "ckpt" / "lm_optimizer.json").read_text())
    assert (saved["lm_alpha"], saved["lm_beta"]) == (result.lm_alpha, result.lm_beta)
    assert saved["n_trials"] == 4 and saved["scorer_path"] == scorer_path
    package = read_scorer_package(scorer_path)
    assert (package.default_alpha, package.default_beta) == (
        result.lm_alpha,
        result.lm_beta,
    )


def test_needs_a_scorer(tiny_config):
    cfg = tiny_config(data={"test_files": ("x.csv",)})
    with pytest.raises(ValueError, match="--scorer_path"):
        lm_optimizer.run(cfg, lm_optimizer.TuneSettings(n_trials=1))


def _strategy():
    from util.distributed import make_strategy

    return make_strategy([])


def test_trials_log_at_debug_with_progress_at_info(
    tiny_scorer, alphabet, tiny_config, caplog, capfd
):
    """Per-trial lines are DEBUG (optuna's own INFO lines silenced); INFO gets the
    progress line only, and optuna's verbosity is restored afterwards."""
    import logging

    import optuna

    scorer = Scorer(None, None, tiny_scorer, alphabet)
    decoder = lm_optimizer.TrialDecoder(
        utterances(alphabet), alphabet, decoder_cfg(tiny_config), scorer, 1
    )
    settings = lm_optimizer.TuneSettings(n_trials=5, show_progressbar=False)
    before = optuna.logging.get_verbosity()
    with caplog.at_level(logging.DEBUG, logger="absl"):
        lm_optimizer.optimize(decoder, SENTENCES, settings)
    trial_lines = [r for r in caplog.records if "lm_alpha" in r.getMessage()]
    assert len(trial_lines) == 5
    assert all(r.levelno == logging.DEBUG for r in trial_lines)
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(info) == 1 and info[0].startswith("lm_optimizer trials: 1/5"), info
    assert "finished with value" not in capfd.readouterr().err  # optuna's INFO
    assert optuna.logging.get_verbosity() == before
