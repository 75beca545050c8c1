"""DeepSpeech.py with ``--scorer_path``: the test pass and one-shot inference use beam
search with the scorer; a scorer built for another alphabet stops the run up front.

The scorer is built the way users build one (data/lm/generate_lm.py on
data/lm/vocab.txt, then the package writer) when the KenLM tools are built
(``make kenlm``); otherwise from a small ARPA written here, which KenLM also loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctcdecode import Alphabet, scorer_package
from helpers import LDC93S1_TEXT, run_deepspeech, write_bigram_arpa, write_ldc93s1_csv

KENLM_BINS = Path(__file__).resolve().parent.parent / "tools" / "kenlm" / "bin"


def _have_kenlm() -> bool:
    return all(
        os.access(KENLM_BINS / name, os.X_OK)
        for name in ("lmplz", "filter", "build_binary")
    )


def build_scorer(work: Path, alphabet: Alphabet, base_temp: Path) -> str:
    """A .scorer whose vocabulary holds the LDC93S1 words, for ``alphabet``."""
    path = str(work / f"{alphabet.sha256()[:8]}.scorer")
    if _have_kenlm():
        from helpers import build_tiny_lm

        lm_dir = build_tiny_lm(base_temp)
        (vocab_file,) = lm_dir.glob("vocab-*.txt")
        vocab = vocab_file.read_text(encoding="utf-8").split()
        scorer_package.write_scorer_package(
            path, str(lm_dir / "lm.binary"), vocab, alphabet, 0.93, 1.18, False
        )
        return path
    arpa = str(work / "lm.arpa")
    write_bigram_arpa(arpa, [LDC93S1_TEXT], ("hat", "soot", "wish"))
    vocab = sorted(set(LDC93S1_TEXT.split()) | {"hat", "soot", "wish"})
    with pytest.MonkeyPatch.context() as patch:  # no build_binary: package the ARPA
        patch.setattr(scorer_package, "_check_lm_binary", lambda lm_path: None)
        scorer_package.write_scorer_package(
            path, arpa, vocab, alphabet, 0.93, 1.18, False
        )
    return path


@pytest.fixture(scope="module")
def scorers(repo_root, tmp_path_factory):
    """(scorer for data/alphabet.txt, scorer for an alphabet without "'", work dir)."""
    work = tmp_path_factory.mktemp("scorers")
    alphabet = Alphabet(os.path.join(repo_root, "data", "alphabet.txt"))
    other = Alphabet.from_symbols([" ", *"abcdefghijklmnopqrstuvwxyz"])
    base = tmp_path_factory.getbasetemp()
    return build_scorer(work, alphabet, base), build_scorer(work, other, base), work


def common_args(repo_root: str, work: Path, csv_path: str) -> list:
    return [
        "--train_files", csv_path, "--test_files", csv_path,
        "--checkpoint_dir", str(work / "ckpt"),
        "--summary_dir", str(work / "summaries"),
        "--alphabet_config_path", os.path.join(repo_root, "data", "alphabet.txt"),
        "--show_progressbar=false", "--report_count", "1",
    ]  # fmt: skip


def test_scorer_for_another_alphabet_fails_before_training(
    repo_root, ldc93s1_wav, scorers, tmp_path
):
    _, other_scorer, _ = scorers
    csv_path = write_ldc93s1_csv(tmp_path, ldc93s1_wav)
    args = common_args(repo_root, tmp_path, csv_path)
    result = run_deepspeech(
        repo_root, [*args, "--epochs", "1", "--n_hidden", "8", "--scorer", other_scorer]
    )
    assert result.returncode == 1
    assert "ScorerError" in result.stderr
    assert "was built for alphabet" in result.stderr
    assert "generate_scorer_package.py --alphabet" in result.stderr
    assert not (tmp_path / "ckpt").exists()  # no training step ran


def test_test_pass_and_one_shot_use_the_scorer(
    repo_root, ldc93s1_wav, scorers, tmp_path
):
    """A 1-epoch model decodes to vocabulary words only once the scorer is in use."""
    scorer, _, _ = scorers
    csv_path = write_ldc93s1_csv(tmp_path, ldc93s1_wav)
    args = common_args(repo_root, tmp_path, csv_path)
    result = run_deepspeech(
        repo_root,
        [*args, "--epochs", "1", "--n_hidden", "8", "--scorer_path", scorer,
         "--beam_width", "16", "--one_shot_infer", ldc93s1_wav],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "beam search (width 16) with scorer" in result.stderr
    assert "lm_alpha 0.93, lm_beta 1.18" in result.stderr  # the package's defaults
    vocab = set(scorer_package.read_scorer_package(scorer).vocab)
    transcript = result.stdout.splitlines()[-1]  # the one-shot line
    assert set(transcript.split()) <= vocab, transcript


@pytest.mark.slow
def test_ldc93s1_overfit_with_scorer_gives_the_exact_transcript(
    repo_root, ldc93s1_wav, scorers, tmp_path
):
    """generate_lm.py -> scorer package -> test pass with --scorer_path: exact text."""
    scorer, _, _ = scorers
    csv_path = write_ldc93s1_csv(tmp_path, ldc93s1_wav)
    args = common_args(repo_root, tmp_path, csv_path)
    result = run_deepspeech(
        repo_root,
        [*args, "--epochs", "200", "--n_hidden", "100", "--learning_rate", "0.003",
         "--dropout_rate", "0", "--scorer_path", scorer],
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WER: 0.000000, CER: 0.000000" in result.stdout, result.stdout
    assert f' - res: "{LDC93S1_TEXT}"' in result.stdout


@pytest.mark.parametrize("garbled_from", [0.02, 0.5])
def test_corrupted_lm_cache_does_not_crash_kenlm(scorers, tmp_path, garbled_from):
    """Issue 11 case 7: a same-size, corrupted LM cache file was handed to KenLM,
    which killed the client and the trainer with SIGSEGV (rc 139, no message), failed
    to load, or (body garbled) silently decoded with a garbage LM."""
    import shutil
    import subprocess
    import sys

    scorer = str(tmp_path / "copy.scorer")
    shutil.copy(scorers[0], scorer)
    lm_path = scorer_package.read_scorer_package(scorer).lm_path
    size = os.path.getsize(lm_path)
    with open(lm_path, "r+b") as cache:  # same size, other bytes
        cache.seek(int(size * garbled_from))
        cache.write(os.urandom(size - cache.tell()))
    code = (
        "import sys, numpy as np\n"
        "from ctcdecode import Alphabet, Scorer, ctc_beam_search_decoder\n"
        "alphabet = Alphabet(sys.argv[2])\n"
        "scorer = Scorer(None, None, sys.argv[1], alphabet)\n"
        "probs = np.random.default_rng(0).dirichlet(\n"
        "    np.ones(alphabet.n_classes), 200).astype(np.float32)\n"
        "print(repr(ctc_beam_search_decoder(probs, alphabet, 16, scorer=scorer)[0]"
        ".text))\n"
    )
    alphabet = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data",
                            "alphabet.txt")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, scorer, alphabet], capture_output=True, text=True
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "extracting it again" in proc.stderr
