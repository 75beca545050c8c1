"""Helpers shared by several test modules (test modules never import each other).

KenLM: tests that need ``lmplz`` call :func:`require_kenlm_bins`: without
``tools/kenlm/bin`` they skip with the fix (``make kenlm``), except under CI
(``CI=true``), where a missing build is a failure, so CI never passes by skipping.
:func:`build_tiny_lm` writes into a directory under pytest's session base temp dir and
returns early when it is complete, so every test module shares one build without module-
level state.

Also: :func:`write_bigram_arpa` (a tiny ARPA LM), :func:`run_deepspeech` (run
``DeepSpeech.py`` as a user would) and :func:`write_ldc93s1_csv`.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
KENLM_BINS = REPO_ROOT / "tools" / "kenlm" / "bin"
CORPUS = REPO_ROOT / "data" / "lm" / "vocab.txt"
TINY_TOP_K = 3000  # words kept: all 2559 distinct words of vocab.txt
TINY_ORDER = 3
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


def require_kenlm_bins() -> Path:
    """``tools/kenlm/bin`` with lmplz, filter and build_binary, or skip/fail."""
    missing = [
        name
        for name in ("lmplz", "filter", "build_binary")
        if not os.access(KENLM_BINS / name, os.X_OK)
    ]
    if missing:
        reason = f"KenLM tools {missing} missing in {KENLM_BINS}; run `make kenlm`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: not skipping)")
        pytest.skip(reason)
    return KENLM_BINS


def build_tiny_lm(base_temp: Path) -> Path:
    """Directory with ``lm.binary`` and ``vocab-3000.txt`` of a 3-gram on vocab.txt."""
    kenlm_bins = require_kenlm_bins()
    out = base_temp / "tiny_lm"
    done = out / "lm.binary"
    if done.exists():
        return out
    cmd = [
        sys.executable, str(REPO_ROOT / "data" / "lm" / "generate_lm.py"),
        "--input_txt", str(CORPUS), "--output_dir", str(out),
        "--top_k", str(TINY_TOP_K), "--kenlm_bins", str(kenlm_bins),
        "--arpa_order", str(TINY_ORDER), "--max_arpa_memory", "64M",
        "--binary_type", "trie", "--discount_fallback",
        "--alphabet", str(REPO_ROOT / "data" / "alphabet.txt"),
        "--show_progressbar", "false",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert done.exists(), proc.stdout
    return out


def write_bigram_arpa(
    path: str, sentences: Sequence[str], extra: Sequence[str]
) -> None:
    """A small (unnormalised, which KenLM accepts) bigram LM favouring ``sentences``."""
    words = sorted({w for s in sentences for w in s.split()} | set(extra))
    bigrams = sorted(
        {
            pair
            for s in sentences
            for pair in zip(["<s>", *s.split()], [*s.split(), "</s>"])
        }
    )
    lines = ["\\data\\", f"ngram 1={len(words) + 3}", f"ngram 2={len(bigrams)}", ""]
    lines += ["\\1-grams:", "-3.0\t<unk>\t0", "-99\t<s>\t-0.5", "-2.0\t</s>\t0"]
    lines += [f"-2.0\t{w}\t-0.5" for w in words]
    lines += ["", "\\2-grams:"] + [f"-0.1\t{a} {b}" for a, b in bigrams]
    lines += ["", "\\end\\", ""]
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))


def run_deepspeech(
    repo_root: str, args: Sequence[str], cwd: str = "", timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``DeepSpeech.py args``; stdout and stderr (absl logs) are captured apart."""
    return subprocess.run(
        [sys.executable, os.path.join(repo_root, "DeepSpeech.py"), *args],
        cwd=cwd or repo_root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_ldc93s1_csv(directory: Path, wav: str) -> str:
    path = directory / "ldc93s1.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerow([wav, os.path.getsize(wav), LDC93S1_TEXT])
    return str(path)
