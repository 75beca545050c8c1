"""Tests for DeepSpeech.py, the command line: help, flag errors, a tiny run, demo.

The only test module that parses flags: every test runs ``DeepSpeech.py`` (or the
demo script) in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from helpers import LDC93S1_TEXT, run_deepspeech, write_ldc93s1_csv


def test_helpfull_lists_flags_with_help(repo_root):
    result = run_deepspeech(repo_root, ["--helpfull"])  # absl exits 1 after any help
    text = " ".join(result.stdout.split())  # absl wraps the help at 80 columns
    assert "--train_files: comma-separated list of CSV files to train on" in text
    assert "--n_hidden: width of the hidden layers" in text
    assert "--[no]bidirectional: bidirectional LSTM" in text
    assert "(default: '2048')" in text


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--dropout_rate", "2"], "dropout_rate"),
        (["--feature_win_step", "40"], "feature_win_step"),
        (["--n_hidden", "0"], "n_hidden"),
        (["--load_train", "newest"], "load_train"),
        (["--train_files", "x.csv", "--epochs", "0"], "epochs"),
    ],
)
def test_invalid_value_exits_non_zero_naming_the_flag(repo_root, args, flag):
    result = run_deepspeech(repo_root, [*args, "--test_files", "x.csv"])
    assert result.returncode != 0
    assert f"--{flag}" in result.stderr


def test_no_action_is_a_usage_error(repo_root):
    result = run_deepspeech(repo_root, ["--n_hidden", "8"])
    assert result.returncode != 0
    assert "nothing to do" in result.stderr
    assert "--train_files" in result.stderr


def test_export_tflite_without_export_dir_is_a_usage_error(repo_root):
    result = run_deepspeech(repo_root, ["--export_tflite", "--test_files", "x.csv"])
    assert result.returncode != 0
    assert "--export_tflite needs --export_dir" in result.stderr


@pytest.fixture(scope="module")
def tiny_run(repo_root, tmp_path_factory):
    """One tiny train + test + export run; later tests reuse its checkpoint."""
    work = tmp_path_factory.mktemp("cli")
    wav = os.path.join(repo_root, "data", "ldc93s1", "LDC93S1.wav")
    csv_path = write_ldc93s1_csv(work, wav)
    args = [
        "--train_files", csv_path, "--test_files", csv_path,
        "--epochs", "1", "--n_hidden", "8",
        "--checkpoint_dir", str(work / "ckpt"),
        "--summary_dir", str(work / "summaries"),
        "--export_dir", str(work / "export"),
        "--test_output_file", str(work / "results.json"),
        "--alphabet_config_path", os.path.join(repo_root, "data", "alphabet.txt"),
        "--show_progressbar=false",
    ]  # fmt: skip
    return work, run_deepspeech(repo_root, args, cwd=str(work))


def test_tiny_end_to_end_run(tiny_run):
    work, result = tiny_run
    assert result.returncode == 0, result.stderr
    assert "Test on " in result.stdout
    assert "ldc93s1.csv - WER: " in result.stdout
    assert f' - src: "{LDC93S1_TEXT}"' in result.stdout
    assert (work / "ckpt" / "config.json").is_file()
    assert (work / "ckpt" / "train-1.index").is_file()
    assert (work / "export" / "metadata.json").is_file()
    assert (work / "export" / "output_graph" / "saved_model.pb").is_file()
    assert (work / "results.json").is_file()


def test_one_shot_infer_prints_a_transcript(tiny_run, repo_root):
    """No --n_hidden given: the geometry comes from the checkpoint's config.json."""
    work, trained = tiny_run
    assert trained.returncode == 0, trained.stderr
    wav = os.path.join(repo_root, "data", "ldc93s1", "LDC93S1.wav")
    result = run_deepspeech(
        repo_root,
        ["--checkpoint_dir", str(work / "ckpt"), "--one_shot_infer", wav,
         "--alphabet_config_path", os.path.join(repo_root, "data", "alphabet.txt")],
        cwd=str(work),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # the transcript (a 1-epoch model may well print "")
    assert set(lines[0]) <= set("abcdefghijklmnopqrstuvwxyz' ")


def test_missing_csv_exits_1_naming_it(repo_root, tmp_path):
    missing = str(tmp_path / "nope.csv")
    result = run_deepspeech(
        repo_root,
        ["--train_files", missing, "--n_hidden", "8", "--checkpoint_dir",
         str(tmp_path / "ckpt"), "--summary_dir", str(tmp_path / "summaries")],
    )  # fmt: skip
    assert result.returncode == 1
    assert missing in result.stderr


@pytest.mark.slow
def test_demo_overfits_ldc93s1(repo_root, tmp_path):
    """bin/run-ldc93s1.sh as shipped, run in a scratch tree so runs/ lands in tmp_path.

    DeepSpeech's best test: one utterance, a small model, a few hundred steps; the
    test transcript must be exact.
    """
    tree = tmp_path / "repo"
    (tree / "bin").mkdir(parents=True)
    shutil.copy(os.path.join(repo_root, "bin", "run-ldc93s1.sh"), tree / "bin")
    (tree / "bin" / "import_ldc93s1.py").symlink_to(
        os.path.join(repo_root, "bin", "import_ldc93s1.py")
    )
    for name in ("DeepSpeech.py", "util", "native_client", "data"):
        (tree / name).symlink_to(os.path.join(repo_root, name))
    result = subprocess.run(
        ["bash", str(tree / "bin" / "run-ldc93s1.sh")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test on runs/ldc93s1/ldc93s1.csv - WER: 0.000000, CER: 0.000000" in (
        result.stdout
    ), result.stdout
    assert f' - res: "{LDC93S1_TEXT}"' in result.stdout
    assert (tree / "runs" / "ldc93s1" / "export" / "metadata.json").is_file()
