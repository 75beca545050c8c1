"""bin/train-tiny-dataset.sh: train/dev/test sets, early stop, test with an LM."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys

import pytest

from helpers import require_kenlm_bins


def test_tiny_dataset_is_small_split_and_licensed(repo_root):
    data = os.path.join(repo_root, "data", "tiny-dataset")
    total = 0
    wavs = {}
    for split in ("train", "dev", "test"):
        with open(os.path.join(data, f"{split}.csv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows, split
        for row in rows:
            path = os.path.join(data, row["wav_filename"])
            assert os.path.getsize(path) == int(row["wav_filesize"])
            total += os.path.getsize(path)
        wavs[split] = {r["wav_filename"] for r in rows}
    assert not (wavs["train"] & wavs["dev"]) and not (wavs["train"] & wavs["test"])
    assert total < 1.5e6
    with open(os.path.join(data, "README.txt"), encoding="utf-8") as f:
        assert "CC0" in f.read()


@pytest.mark.slow
def test_train_tiny_dataset_stops_early_and_tests_with_the_scorer(repo_root, tmp_path):
    """The demo end to end (about 2 minutes on 2 shared cores)."""
    require_kenlm_bins()
    env = {**os.environ, "PYTHON": sys.executable, "OUT_DIR": str(tmp_path / "run")}
    result = subprocess.run(
        ["bash", "bin/train-tiny-dataset.sh", "--show_progressbar=false"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert re.search(r"Epoch 0 \| train loss", log)
    assert re.search(r"Epoch 0 \| dev loss [0-9.]+ on data/tiny-dataset/dev.csv", log)
    assert "early stop: no dev-loss improvement" in log
    assert "with scorer " + str(tmp_path / "run" / "kenlm.scorer") in log
    assert "Test on data/tiny-dataset/test.csv - WER:" in log
