"""Tests for ctcdecode.alphabet (DeepSpeech alphabet.txt semantics)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from ctcdecode import Alphabet, AlphabetError, UTF8Alphabet
from ctcdecode.alphabet import load_alphabet

ENGLISH = (" ", *"abcdefghijklmnopqrstuvwxyz", "'")


def _write(tmp_path, text: str, name: str = "alphabet.txt") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def test_english_alphabet_geometry(alphabet):
    assert alphabet.size() == 28
    assert alphabet.blank_index == alphabet.size() == 28
    assert alphabet.n_classes == 29
    assert alphabet.symbols == ENGLISH
    assert alphabet.space_index == 0


def test_round_trip(alphabet):
    text = "she had your dark suit in greasy wash water all year don't"
    labels = alphabet.encode(text)
    assert all(0 <= label < alphabet.size() for label in labels)
    assert alphabet.decode(labels) == text
    assert alphabet.decode(np.asarray(labels, dtype=np.int32)) == text


def test_decode_skips_blank_and_rejects_out_of_range(alphabet):
    labels = alphabet.encode("ab")
    assert (
        alphabet.decode([alphabet.blank_index, *labels, alphabet.blank_index]) == "ab"
    )
    with pytest.raises(AlphabetError, match="29"):
        alphabet.decode([29])
    with pytest.raises(AlphabetError):
        alphabet.decode([-1])


def test_unknown_chars_error_names_them(alphabet):
    text = "Hello, world!"
    assert alphabet.unknown_chars(text) == ["!", ",", "H"]
    assert not alphabet.can_encode(text)
    assert alphabet.can_encode("hello world")
    with pytest.raises(AlphabetError) as info:
        alphabet.encode(text)
    message = str(info.value)
    for char in ("'!'", "','", "'H'", repr(text)):
        assert char in message
    assert isinstance(info.value, ValueError)


def test_comments_escape_space_and_line_endings(tmp_path):
    path = _write(tmp_path, "# comment\r\n\\#\r\n \r\n\r\na\rb\n# tail comment")
    parsed = Alphabet(path)
    assert parsed.symbols == ("#", " ", "a", "b")
    assert parsed.encode("a #b") == [2, 1, 0, 3]
    assert parsed.space_index == 1


def test_trailing_newline_is_optional(tmp_path):
    with_nl = Alphabet(_write(tmp_path, " \na\nb\n", "a.txt"))
    without_nl = Alphabet(_write(tmp_path, " \na\nb", "b.txt"))
    assert with_nl == without_nl
    assert with_nl.size() == 3


def test_duplicate_symbol_names_the_lines(tmp_path):
    path = _write(tmp_path, "# header\na\nb\na\n")
    with pytest.raises(AlphabetError, match=r"line 4.*'a'.*line 2"):
        Alphabet(path)
    with pytest.raises(AlphabetError, match="repeated"):
        Alphabet.from_symbols(["a", "b", "a"])


def test_bad_files_and_symbols(tmp_path):
    with pytest.raises(AlphabetError, match="missing.txt"):
        Alphabet(str(tmp_path / "missing.txt"))
    with pytest.raises(AlphabetError, match="no symbols"):
        Alphabet(_write(tmp_path, "# only a comment\n"))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("é\n".encode("latin-1"))
    with pytest.raises(AlphabetError, match="UTF-8"):
        Alphabet(str(latin1))
    for bad in ("", "a\nb", "\\#", "#a"):
        with pytest.raises(AlphabetError):
            Alphabet.from_symbols(["x", bad])


def test_serialize_reproduces_data_file_and_escapes_hash(alphabet, repo_root, tmp_path):
    with open(os.path.join(repo_root, "data", "alphabet.txt"), encoding="utf-8") as fin:
        assert alphabet.serialize() == fin.read()
    odd = Alphabet.from_symbols(["#", " ", "a", "\\#x", "ab"])
    assert "\\#\n" in odd.serialize()
    path = str(tmp_path / "odd.txt")
    odd.to_file(path)
    assert Alphabet(path) == odd
    assert Alphabet(path).sha256() == odd.sha256()
    assert os.listdir(tmp_path) == ["odd.txt"]  # no temporary file left behind


def test_sha256_and_equality(alphabet):
    same = Alphabet.from_symbols(ENGLISH)
    other = Alphabet.from_symbols(ENGLISH[::-1])
    assert same == alphabet and hash(same) == hash(alphabet)
    assert same.sha256() == alphabet.sha256()
    assert len(alphabet.sha256()) == 64
    assert other != alphabet and other.sha256() != alphabet.sha256()
    assert UTF8Alphabet() != alphabet


def test_multi_character_symbols_use_longest_match():
    alpha = Alphabet.from_symbols(["a", "b", "ab", " "])
    assert alpha.encode("ab a") == [2, 3, 0]
    assert alpha.decode([2, 3, 0]) == "ab a"
    assert alpha.unknown_chars("abc") == ["c"]


def test_utf8_alphabet_round_trip():
    utf8 = UTF8Alphabet()
    assert utf8.size() == 255
    assert utf8.blank_index == 255 and utf8.n_classes == 256
    text = "привет, мир! héllo 😀"
    labels = utf8.encode(text)
    assert labels == [byte - 1 for byte in text.encode("utf-8")]
    assert max(labels) < 255
    assert utf8.decode(labels) == text
    assert utf8.space_index == utf8.encode(" ")[0] == 31
    assert utf8.unknown_chars("a\x00b") == ["\x00"]
    assert utf8.decode(utf8.encode("пр")[:-1]) == "п\ufffd"  # truncated byte sequence


def test_utf8_alphabet_file_round_trip(tmp_path):
    path = str(tmp_path / "alphabet.txt")
    UTF8Alphabet().to_file(path)
    assert UTF8Alphabet(path) == UTF8Alphabet()
    assert isinstance(load_alphabet(path), UTF8Alphabet)
    with pytest.raises(AlphabetError, match="UTF8Alphabet"):
        Alphabet(path)
    with pytest.raises(AlphabetError):
        UTF8Alphabet(_write(tmp_path, "a\n", "plain.txt"))


def test_load_alphabet_plain(repo_root, alphabet):
    loaded = load_alphabet(os.path.join(repo_root, "data", "alphabet.txt"))
    assert type(loaded) is Alphabet and loaded == alphabet


def test_russian_alphabet_encodes_sample_transcript(repo_root):
    sample_dir = os.path.join(repo_root, "data", "russian_sample")
    russian = Alphabet(os.path.join(sample_dir, "alphabet.ru"))
    assert russian.space_index == 0
    assert russian.size() == 34  # space + 33 Cyrillic letters
    with open(os.path.join(sample_dir, "ru.csv"), encoding="utf-8", newline="") as fin:
        rows = list(csv.DictReader(fin))
    assert len(rows) == 1
    transcript = rows[0]["transcript"]
    labels = russian.encode(transcript)
    assert len(labels) == len(transcript)
    assert russian.decode(labels) == transcript


def test_package_does_not_import_tensorflow(repo_root):
    code = (
        "import sys, ctcdecode as c; c.Alphabet; "
        "sys.exit(int('tensorflow' in sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=repo_root, check=True)
