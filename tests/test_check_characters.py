"""util.importing.check_characters: counts, alphabet, unknown characters with rows."""

from __future__ import annotations

import csv
import subprocess
import sys

from ctcdecode import Alphabet, load_alphabet
from util.importing import check_characters


def write_csv(path, transcripts):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerows([f"{k}.wav", 1, t] for k, t in enumerate(transcripts))
    return str(path)


def test_counts_and_unknown_rows(tmp_path, alphabet):
    a = write_csv(tmp_path / "a.csv", ["abc a", "café"])
    b = write_csv(tmp_path / "b.csv", ["naïve café", "ok"])
    report = check_characters.count_characters([a, b], alphabet)
    assert report.n_rows == 4 and report.counts["a"] == 5 and report.counts["é"] == 2
    assert sorted(report.unknown) == ["é", "ï"]
    assert report.unknown["é"] == [(a, 3, "café"), (b, 2, "naïve café")]
    assert report.n_rows_unknown == 2
    text = check_characters.format_report(report)
    assert "LATIN SMALL LETTER E WITH ACUTE: 2 times" in text and f"{b}:2" in text


def test_alpha_builds_a_loadable_alphabet(tmp_path, repo_root):
    a = write_csv(tmp_path / "a.csv", ["b a#", "ça"])
    result = subprocess.run(
        [sys.executable, "bin/check_characters.py", "-csv", a, "-alpha"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "alphabet.txt").write_text(result.stdout, encoding="utf-8")
    built = load_alphabet(str(tmp_path / "alphabet.txt"))
    assert built == Alphabet.from_symbols([" ", "#", "a", "b", "ç"])


def test_cli_exit_code_names_unknown(tmp_path, repo_root):
    a = write_csv(tmp_path / "a.csv", ["ok", "Nope"])
    result = subprocess.run(
        [sys.executable, "bin/check_characters.py", "-csv", a, "--alphabet",
         f"{repo_root}/data/alphabet.txt"],
        cwd=repo_root, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "'N' LATIN CAPITAL LETTER N: 1 times" in result.stdout
