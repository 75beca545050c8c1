"""Tests for DeepSpeech.py, the command line: help, flag errors, a tiny run, demo.

The only test module that parses flags: every test runs ``DeepSpeech.py`` (or the
demo script) in a subprocess, as a user would.
"""

from __future__ import annotations

import csv
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import LDC93S1_TEXT, run_deepspeech, write_ldc93s1_csv

DEVELOPER_DOC = "The edge: parses flags"  # from DeepSpeech.py's module docstring
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_BATCHES = 300  # an epoch long enough (seconds, even on a quiet machine) to stop in


def test_helpfull_lists_flags_with_help(repo_root):
    result = run_deepspeech(repo_root, ["--helpfull"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # absl wraps the help at 80 columns
    assert "--train_files: comma-separated list of CSV files to train on" in text
    assert "--n_hidden: width of the hidden layers" in text
    assert "--[no]bidirectional: bidirectional LSTM" in text
    assert "(default: '2048')" in text


@pytest.mark.parametrize("arg", ["--help", "--helpshort", "-h", "-?", "--helpfull"])
def test_help_exits_0_listing_flags_without_the_developer_docstring(repo_root, arg):
    result = run_deepspeech(repo_root, [arg])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python DeepSpeech.py [flags]")
    assert DEVELOPER_DOC not in result.stdout + result.stderr
    for flag in ("--train_files", "--checkpoint_dir", "--export_dir", "--epochs"):
        assert flag in result.stdout
    assert ("logtostderr" in result.stdout) == (arg == "--helpfull")


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--dropout_rate", "2"], "dropout_rate"),
        (["--feature_win_step", "40"], "feature_win_step"),
        (["--n_hidden", "0"], "n_hidden"),
        (["--load_train", "newest"], "load_train"),
        (["--train_files", "x.csv", "--epochs", "0"], "epochs"),
        (["--n_hidden", "abc"], "n_hidden"),
        (["--train_files", "x.csv", "--early_stop"], "dev_files"),
        (["--train_files", "x.csv", "--reduce_lr_on_plateau"], "dev_files"),
    ],
)
def test_invalid_value_exits_non_zero_naming_the_flag(repo_root, args, flag):
    result = run_deepspeech(repo_root, [*args, "--test_files", "x.csv"])
    assert result.returncode == 2
    assert f"--{flag}" in result.stderr
    assert DEVELOPER_DOC not in result.stderr + result.stdout
    assert "Run `python DeepSpeech.py --help` to list the flags." in result.stderr


def test_no_action_is_a_usage_error(repo_root):
    result = run_deepspeech(repo_root, ["--n_hidden", "8"])
    assert result.returncode == 2
    assert DEVELOPER_DOC not in result.stderr
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
    summary = result.stderr[result.stderr.index("Training summary") :]
    assert "1 done in all, 1 in this run" in summary
    assert f"test {work / 'ldc93s1.csv'}: WER " in summary
    assert f"checkpoints:     {work / 'ckpt'}" in summary
    assert f"exported to:     {work / 'export'}" in summary


def test_rerun_of_finished_training_says_so(tiny_run, repo_root):
    work, trained = tiny_run
    assert trained.returncode == 0, trained.stderr
    result = run_deepspeech(
        repo_root,
        ["--train_files", str(work / "ldc93s1.csv"), "--epochs", "1",
         "--max_epochs", "1",
         "--n_hidden", "8", "--checkpoint_dir", str(work / "ckpt"),
         "--summary_dir", str(work / "summaries"),
         "--alphabet_config_path", os.path.join(repo_root, "data", "alphabet.txt")],
        cwd=str(work),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "nothing to train" in result.stderr
    assert "already done 1 epochs, --max_epochs 1" in result.stderr


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
    for script in ("import_ldc93s1.py", "_python.sh"):
        (tree / "bin" / script).symlink_to(os.path.join(repo_root, "bin", script))
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


# --- issue 10/11: output locations, locks, signals, console --------------------------


def fake_checkpoint_dir(path: Path) -> list:
    path.mkdir(parents=True)
    for name in ("checkpoint", "train-1.index", "train-1.data-00000-of-00001"):
        (path / name).write_text("x")
    return sorted(os.listdir(path))


@pytest.mark.parametrize("where", ["same", "parent", "dot", "home"])
def test_remove_export_over_the_checkpoints_is_refused(repo_root, tmp_path, where):
    ckpt = tmp_path / "home" / "run" / "ckpt"
    if where == "home":  # the default checkpoint dir lives under $HOME
        ckpt = tmp_path / "home" / ".local" / "share" / "deepspeech" / "checkpoints"
    before = fake_checkpoint_dir(ckpt)
    export = {"same": str(ckpt), "parent": str(ckpt.parent), "dot": "."}.get(
        where, str(tmp_path / "home")
    )
    args = ["--export_dir", export, "--remove_export"]
    if where != "home":
        args += ["--checkpoint_dir", str(ckpt)]
    result = subprocess.run(
        [sys.executable, os.path.join(repo_root, "DeepSpeech.py"), *args],
        cwd=str(ckpt.parent), capture_output=True, text=True, timeout=120,
        env={**os.environ, "HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "--remove_export" in result.stderr and "--checkpoint_dir" in result.stderr
    assert sorted(os.listdir(ckpt)) == before


def test_checkpoint_dir_that_is_a_file_fails_before_any_work(repo_root, tmp_path):
    not_a_dir = tmp_path / "ckpt"
    not_a_dir.write_text("x")
    wav = os.path.join(repo_root, "data", "ldc93s1", "LDC93S1.wav")
    result = run_deepspeech(
        repo_root,
        ["--train_files", write_ldc93s1_csv(tmp_path, wav), "--n_hidden", "8",
         "--checkpoint_dir", str(not_a_dir), "--summary_dir", str(tmp_path / "s")],
    )  # fmt: skip
    assert result.returncode == 1
    assert f"--checkpoint_dir {not_a_dir} is a file" in result.stderr
    assert "samples (" not in result.stderr  # failed before reading the CSV


def many_batches_csv(directory: Path, n: int = N_BATCHES) -> str:
    wav = os.path.join(REPO_ROOT, "data", "ldc93s1", "LDC93S1.wav")
    path = directory / "many.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        for _ in range(n):
            writer.writerow([wav, os.path.getsize(wav), LDC93S1_TEXT])
    return str(path)


def training_command(tmp_path: Path, *extra: str, n_rows: int = N_BATCHES) -> list:
    return [
        sys.executable, os.path.join(REPO_ROOT, "DeepSpeech.py"),
        "--train_files", many_batches_csv(tmp_path, n_rows), "--n_hidden", "8",
        "--epochs", "3", "--checkpoint_dir", str(tmp_path / "ckpt"),
        "--summary_dir", str(tmp_path / "summaries"), *extra,
    ]  # fmt: skip


def wait_for(path: Path, text: str, proc, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = path.read_text() if path.exists() else ""
        if text in log:
            return log
        assert proc.poll() is None, log
        assert time.monotonic() < deadline, f"no {text!r} in time:\n{log}"
        time.sleep(0.1)


def latest_checkpoint_step(ckpt_dir: Path) -> int:
    steps = [int(p.name[6:-6]) for p in ckpt_dir.glob("train-*.index")]
    return max(steps, default=0)


def test_sigterm_saves_at_once_and_a_pipe_gets_few_progress_lines(tmp_path):
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            training_command(tmp_path), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(log_path, f"Epoch 0 train: 1/{N_BATCHES}", proc)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            proc.kill()
    text = log_path.read_text()
    assert proc.returncode == 143, text
    step = latest_checkpoint_step(tmp_path / "ckpt")
    assert 1 <= step < N_BATCHES, text  # saved mid-epoch, not at the epoch's end
    assert f"SIGTERM: training stopped in epoch 0 after batch {step}" in text
    assert f"saved {tmp_path / 'ckpt' / f'train-{step}'}" in text
    # Not a line per batch: the first, then one per 30 s at most.
    progress = [line for line in text.splitlines() if "Epoch 0 train: " in line]
    assert 1 <= len(progress) <= 2, progress
    assert re.search(r"loss \d+\.\d{3} \|", progress[0]), progress[0]


def _default_sigint() -> None:
    """A terminal's Ctrl-C: SIGINT not ignored, even when this test runs in the
    background of a non-interactive shell (which starts its jobs ignoring SIGINT, a
    disposition that survives exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_under_tee_saves_and_exits_130(tmp_path):
    """Ctrl-C reaches python and tee alike; tee dies, the run still saves."""
    tee_log = tmp_path / "tee.log"
    proc = subprocess.Popen(
        training_command(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    tee = subprocess.Popen(
        ["tee", str(tee_log)], stdin=proc.stdout, stdout=subprocess.DEVNULL,
        process_group=proc.pid, preexec_fn=_default_sigint,
    )  # fmt: skip
    proc.stdout.close()
    try:
        wait_for(tee_log, f"Epoch 0 train: 1/{N_BATCHES}", proc)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        proc.wait(timeout=120)
        tee.wait(timeout=10)
    finally:
        proc.kill()
        tee.kill()
    assert tee.returncode != 0  # tee died of the Ctrl-C
    assert proc.returncode == 130, tee_log.read_text()
    assert 1 <= latest_checkpoint_step(tmp_path / "ckpt") < N_BATCHES


def test_terminal_shows_a_bar_with_full_numbers(tmp_path):
    controller, terminal = pty.openpty()
    command = training_command(tmp_path, n_rows=60)
    command[command.index("--epochs") + 1] = "1"
    proc = subprocess.Popen(command, stdout=terminal, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(controller)
    text = b"".join(chunks).decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the bar's colours
    assert proc.returncode == 0, text
    assert re.search(r"Epoch 0 train +\d+% \|.*\| loss \d+\.\d{3} ", text), text
    assert "\r" in text  # redrawn in place, not a line per batch
    assert "Epoch 0 train: 1/60" not in text  # no log lines when a bar is drawn


def test_second_training_on_a_locked_dir_is_refused(tmp_path):
    from util.checkpoints import DirLock

    with DirLock(str(tmp_path / "ckpt")):
        result = subprocess.run(
            training_command(tmp_path), capture_output=True, text=True, timeout=180
        )
    assert result.returncode == 1
    assert f"is in use by another training (pid {os.getpid()} on " in result.stderr
    assert "samples (" not in result.stderr  # refused before reading the CSV
