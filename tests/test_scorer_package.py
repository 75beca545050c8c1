"""The .scorer package: round trip, and clear errors for bad files and wrong alphabets.

The LM here is a stand-in with KenLM's binary magic: the package stores the LM's
bytes without interpreting them, so these tests need no KenLM build.
"""

import os
import subprocess
import sys

import pytest

from ctcdecode import Alphabet, UTF8Alphabet
from ctcdecode.scorer_package import (
    FORMAT_VERSION,
    KENLM_BINARY_MAGIC,
    ScorerError,
    check_alphabet,
    read_scorer_package,
    rewrite_defaults,
    write_scorer_package,
)

VOCAB = ("she", "had", "your", "dark", "suit")
LM_BYTES = KENLM_BINARY_MAGIC + b" format version 5\n\0" + bytes(range(256)) * 40


@pytest.fixture
def lm_file(tmp_path):
    path = tmp_path / "lm.binary"
    path.write_bytes(LM_BYTES)
    return str(path)


@pytest.fixture
def scorer(tmp_path, lm_file, alphabet):
    path = str(tmp_path / "pkg" / "kenlm.scorer")
    os.makedirs(os.path.dirname(path))
    write_scorer_package(path, lm_file, VOCAB + ("she",), alphabet, 0.75, 1.85, False)
    return path


def test_round_trip(scorer, alphabet):
    package = read_scorer_package(scorer)
    assert package.vocab == VOCAB  # duplicate dropped, order kept
    assert package.alphabet == alphabet
    assert package.alphabet_sha256 == alphabet.sha256()
    assert (package.default_alpha, package.default_beta) == (0.75, 1.85)
    assert package.bytes_output_mode is False
    assert package.format_version == FORMAT_VERSION
    with open(package.lm_path, "rb") as fin:
        assert fin.read() == LM_BYTES
    assert os.path.dirname(package.lm_path) == os.path.dirname(scorer)
    check_alphabet(package, Alphabet.from_symbols(alphabet.symbols))


def test_bytes_output_mode_round_trip(tmp_path, lm_file):
    path = str(tmp_path / "bytes.scorer")
    write_scorer_package(path, lm_file, ["año"], UTF8Alphabet(), 1.0, 2.0, True)
    package = read_scorer_package(path)
    assert isinstance(package.alphabet, UTF8Alphabet)
    assert package.bytes_output_mode is True
    with pytest.raises(ScorerError, match="bytes_output_mode=False"):
        write_scorer_package(path, lm_file, ["a"], UTF8Alphabet(), 1.0, 2.0, False)


def test_extraction_is_reused_and_atomic(scorer):
    first = read_scorer_package(scorer)
    mtime = os.stat(first.lm_path).st_mtime_ns
    second = read_scorer_package(scorer)
    assert second.lm_path == first.lm_path
    assert os.stat(second.lm_path).st_mtime_ns == mtime  # not rewritten
    leftovers = [n for n in os.listdir(os.path.dirname(scorer)) if ".tmp-" in n]
    assert not leftovers


def test_rewrite_defaults_keeps_lm_and_cache(scorer):
    lm_path = read_scorer_package(scorer).lm_path
    rewrite_defaults(scorer, 0.5, 3.0)
    package = read_scorer_package(scorer)
    assert (package.default_alpha, package.default_beta) == (0.5, 3.0)
    assert package.lm_path == lm_path and package.vocab == VOCAB


def test_new_lm_replaces_the_old_extraction(scorer, tmp_path, alphabet):
    old = read_scorer_package(scorer).lm_path
    new_lm = tmp_path / "lm2.binary"
    new_lm.write_bytes(LM_BYTES + b"more")
    write_scorer_package(scorer, str(new_lm), VOCAB, alphabet, 0.75, 1.85, False)
    new = read_scorer_package(scorer).lm_path
    assert new != old and os.path.exists(new) and not os.path.exists(old)


def test_cache_dir_argument(scorer, tmp_path):
    package = read_scorer_package(scorer, cache_dir=str(tmp_path / "cache"))
    assert os.path.dirname(package.lm_path) == str(tmp_path / "cache")


@pytest.mark.parametrize("keep", [0, 5, 30, 500, len(LM_BYTES) // 2])
def test_truncated_file(scorer, keep):
    size = os.path.getsize(scorer)
    with open(scorer, "r+b") as f:
        f.truncate(keep if keep < 500 else size - keep)
    message = "not a scorer package" if keep < 8 else "truncated"
    with pytest.raises(ScorerError, match=message):
        read_scorer_package(scorer)


def test_missing_last_byte_is_truncated(scorer):
    with open(scorer, "r+b") as f:
        f.truncate(os.path.getsize(scorer) - 1)
    with pytest.raises(ScorerError, match="truncated"):
        read_scorer_package(scorer)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.scorer"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(1000))
    with pytest.raises(ScorerError, match="not a scorer package"):
        read_scorer_package(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(ScorerError, match="cannot open scorer"):
        read_scorer_package(str(tmp_path / "nope.scorer"))


def test_corrupted_byte_fails_checksum(scorer, tmp_path):
    data = bytearray(open(scorer, "rb").read())
    data[-100] ^= 0xFF  # inside the LM
    path = tmp_path / "corrupt.scorer"
    path.write_bytes(bytes(data))
    with pytest.raises(ScorerError, match="checksum"):
        read_scorer_package(str(path), cache_dir=str(tmp_path / "c"))
    assert not os.listdir(tmp_path / "c")  # nothing half-extracted left behind


def test_newer_format_version(scorer):
    with open(scorer, "r+b") as f:
        f.seek(8)
        f.write((FORMAT_VERSION + 1).to_bytes(4, "little"))
    with pytest.raises(ScorerError, match="format version"):
        read_scorer_package(scorer)


def test_wrong_alphabet_names_both(scorer):
    package = read_scorer_package(scorer)
    other = Alphabet.from_symbols(list("abc "))
    with pytest.raises(ScorerError) as err:
        check_alphabet(package, other)
    message = str(err.value)
    assert package.alphabet_sha256[:12] in message
    assert other.sha256()[:12] in message
    assert "generate_scorer_package.py --alphabet" in message


def test_reordered_alphabet_is_rejected(scorer, alphabet):
    package = read_scorer_package(scorer)
    reordered = Alphabet.from_symbols(tuple(reversed(alphabet.symbols)))
    with pytest.raises(ScorerError, match="different order"):
        check_alphabet(package, reordered)


def test_rejects_arpa_and_bad_vocab(tmp_path, lm_file, alphabet):
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=3\n")
    out = str(tmp_path / "x.scorer")
    with pytest.raises(ScorerError, match="looks like ARPA"):
        write_scorer_package(out, str(arpa), VOCAB, alphabet, 1, 1, False)
    with pytest.raises(ScorerError, match="whitespace"):
        write_scorer_package(out, lm_file, ["two words"], alphabet, 1, 1, False)
    with pytest.raises(ScorerError, match="empty"):
        write_scorer_package(out, lm_file, [], alphabet, 1, 1, False)
    assert not os.path.exists(out)


def test_generate_scorer_package_cli(tmp_path, lm_file, repo_root):
    vocab = tmp_path / "vocab-5.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    package = tmp_path / "cli.scorer"
    cmd = [
        sys.executable,
        os.path.join(repo_root, "native_client", "generate_scorer_package.py"),
        "--alphabet", os.path.join(repo_root, "data", "alphabet.txt"),
        "--lm", lm_file, "--vocab", str(vocab), "--package", str(package),
        "--default_alpha", "0.5", "--default_beta", "1.5",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "5 words" in proc.stdout
    loaded = read_scorer_package(str(package))
    assert loaded.vocab == VOCAB and loaded.default_beta == 1.5
    bad = subprocess.run(
        cmd[:-6] + ["--package", str(tmp_path / "y.scorer")] + ["--lm", str(vocab)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1 and "not a KenLM binary" in bad.stderr


@pytest.mark.parametrize("damage", ["flip", "zeros"])
def test_corrupted_cache_of_the_same_size_is_extracted_again(scorer, damage):
    """Issue 11 case 7: a same-size cache file with other bytes crashed KenLM."""
    lm_path = read_scorer_package(scorer).lm_path
    with open(lm_path, "r+b") as cache:
        if damage == "flip":
            cache.seek(len(LM_BYTES) // 2)
            byte = cache.read(1)
            cache.seek(-1, os.SEEK_CUR)
            cache.write(bytes([byte[0] ^ 0xFF]))
        else:
            cache.write(bytes(len(LM_BYTES)))
    assert os.path.getsize(lm_path) == len(LM_BYTES)
    package = read_scorer_package(scorer)
    assert package.lm_path == lm_path
    with open(lm_path, "rb") as fin:
        assert fin.read() == LM_BYTES
    leftovers = [n for n in os.listdir(os.path.dirname(scorer)) if ".tmp-" in n]
    assert not leftovers
