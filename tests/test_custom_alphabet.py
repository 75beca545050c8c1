"""A custom (Russian) alphabet end to end: check_characters -> train -> scorer -> export
-> client, each step as a user runs it from the command line (doc/TRAINING.rst)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from helpers import require_kenlm_bins

RU_TEXT = "бедняга ребят на его месте должен был быть я"


def run(repo_root, *args, timeout=900):
    result = subprocess.run(
        [sys.executable, *args], cwd=repo_root, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result


@pytest.mark.slow
def test_russian_sample_train_scorer_export_client(repo_root, tmp_path):
    """About 2-3 minutes on 2 shared cores."""
    require_kenlm_bins()
    wav = os.path.join(repo_root, "data", "russian_sample", "ru.wav")
    csv_path = tmp_path / "ru.csv"
    csv_path.write_text(
        f"wav_filename,wav_filesize,transcript\n{wav},{os.path.getsize(wav)},"
        f"{RU_TEXT}\n",
        encoding="utf-8",
    )
    # 1. The alphabet, written from the transcripts.
    alpha = run(repo_root, "bin/check_characters.py", "-csv", str(csv_path), "-alpha")
    alphabet = tmp_path / "alphabet.txt"
    alphabet.write_text(alpha.stdout, encoding="utf-8")
    assert sorted(set(RU_TEXT)) == sorted(
        line.rstrip("\n") for line in alpha.stdout.splitlines(True)
        if not line.startswith("#")
    )  # fmt: skip
    # 2. Train and export a .tflite with that alphabet in its metadata.
    run(repo_root, "DeepSpeech.py", "--train_files", str(csv_path),
        "--alphabet_config_path", str(alphabet), "--n_hidden", "64",
        "--epochs", "150", "--learning_rate", "0.003", "--dropout_rate", "0",
        "--show_progressbar=false", "--checkpoint_dir", str(tmp_path / "ckpt"),
        "--summary_dir", str(tmp_path / "sum"),
        "--export_dir", str(tmp_path / "export"), "--export_tflite")  # fmt: skip
    (tflite,) = glob.glob(str(tmp_path / "export" / "*.tflite"))
    # 3. A scorer over Russian text, in the same alphabet.
    text = tmp_path / "text.txt"
    text.write_text(RU_TEXT + "\nмы идём домой\nкот спит на окне\n", encoding="utf-8")
    run(repo_root, "data/lm/generate_lm.py", "--input_txt", str(text),
        "--output_dir", str(tmp_path / "lm"), "--top_k", "100", "--arpa_order", "3",
        "--max_arpa_memory", "64M", "--binary_type", "trie", "--discount_fallback",
        "--alphabet", str(alphabet), "--show_progressbar", "false")  # fmt: skip
    scorer = tmp_path / "ru.scorer"
    run(repo_root, "native_client/generate_scorer_package.py", "--alphabet",
        str(alphabet), "--lm", str(tmp_path / "lm" / "lm.binary"), "--vocab",
        str(tmp_path / "lm" / "vocab-100.txt"), "--package", str(scorer))  # fmt: skip
    # 4. The TensorFlow-free client, with and without the scorer.
    for extra in ([], ["--scorer", str(scorer)]):
        out = run(repo_root, "-m", "deepspeech.client", "--model", tflite,
                  "--audio", wav, *extra)  # fmt: skip
        assert out.stdout.strip().splitlines()[-1] == RU_TEXT, extra
