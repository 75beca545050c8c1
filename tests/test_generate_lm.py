"""data/lm/generate_lm.py: normalisation, top-k vocabulary, a KenLM model that loads.

The normalisation tests run without KenLM; the build tests use the tiny LM that
tests/helpers.py builds once per session (skipped without ``make kenlm``,
failing under CI).
"""

import gzip
import importlib.util
import os
import subprocess
import sys
from collections import Counter

import pytest

from ctcdecode import Alphabet
from helpers import REPO_ROOT, TINY_TOP_K, build_tiny_lm

SCRIPT = REPO_ROOT / "data" / "lm" / "generate_lm.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("generate_lm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generate_lm = _load_script()


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.getbasetemp())


def _normalise(tmp_path, text, alphabet=None, name="corpus.txt"):
    src = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(src, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        src.write_text(text, encoding="utf-8")
    out = tmp_path / "lower.txt.gz"
    stats = generate_lm.normalise_corpus(str(src), str(out), alphabet, False)
    with gzip.open(out, "rt", encoding="utf-8") as f:
        return stats, f.read().splitlines()


@pytest.mark.parametrize("name", ["corpus.txt", "corpus.txt.gz"])
def test_normalise_lowercases_and_drops_unspellable_lines(tmp_path, alphabet, name):
    text = "She  HAD your\tdark suit\n\n  \nnaïve café\nall year's water\n"
    stats, lines = _normalise(tmp_path, text, alphabet, name)
    assert lines == ["she had your dark suit", "all year's water"]
    assert (stats.n_lines, stats.n_kept, stats.n_empty, stats.n_dropped) == (5, 2, 2, 1)
    assert stats.dropped_examples == ["naïve café"]
    assert stats.counter["she"] == 1 and stats.counter["water"] == 1


def test_normalise_without_alphabet_keeps_everything(tmp_path):
    stats, lines = _normalise(tmp_path, "Naïve Café\n")
    assert lines == ["naïve café"] and stats.n_dropped == 0


def test_top_k_ranks_by_count_then_word():
    counter = Counter({"b": 3, "a": 3, "c": 5, "d": 1})
    assert generate_lm.top_k_words(counter, 3) == ["c", "a", "b"]
    assert generate_lm.top_k_words(counter, 10) == ["c", "a", "b", "d"]


def test_missing_tools_say_make_kenlm(tmp_path):
    with pytest.raises(generate_lm.LMBuildError, match="make kenlm"):
        generate_lm.find_kenlm_tools(str(tmp_path))


def test_cli_reports_missing_tools(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n")
    cmd = [
        sys.executable, str(SCRIPT), "--input_txt", str(corpus),
        "--output_dir", str(tmp_path / "out"), "--top_k", "10",
        "--kenlm_bins", str(tmp_path), "--arpa_order", "3",
        "--max_arpa_memory", "10%",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1 and "make kenlm" in proc.stderr


def test_lmplz_command_always_bounds_memory_and_temp():
    args = generate_lm.parse_args(
        "--input_txt x --output_dir o --top_k 5 --arpa_order 4 "
        "--max_arpa_memory 85% --arpa_prune 0|0|1 --discount_fallback".split()
    )
    tools = {"lmplz": "lmplz", "build_binary": "build_binary"}
    cmd = generate_lm.lmplz_command(args, tools, "c.gz", "o/lm.arpa")
    assert cmd[cmd.index("-S") + 1] == "85%" and cmd[cmd.index("-T") + 1] == "o/"
    assert cmd[cmd.index("--prune") + 1 :][:3] == ["0", "0", "1"]
    assert "--discount_fallback" in cmd
    binary = generate_lm.build_binary_command(args, tools, "f.arpa")
    assert binary[1:5] == ["-a", "255", "-q", "8"]


def test_tiny_lm_prefers_the_real_sentence(tiny_lm):
    import kenlm

    model = kenlm.Model(str(tiny_lm / "lm.binary"))
    assert model.order == 3
    real = model.score("she had your dark suit", bos=True, eos=True)
    scrambled = model.score("suit dark your had she", bos=True, eos=True)
    assert real > scrambled + 1.0


def test_tiny_lm_vocab_is_top_k_of_the_corpus(tiny_lm):
    vocab = (tiny_lm / f"vocab-{TINY_TOP_K}.txt").read_text().split()
    corpus = (REPO_ROOT / "data" / "lm" / "vocab.txt").read_text().split()
    assert set(vocab) == set(corpus)  # top_k exceeds the distinct words
    assert vocab[0] == Counter(corpus).most_common(1)[0][0]
    assert os.path.getsize(tiny_lm / "lm.binary") > 0


def test_tiny_lm_words_are_spellable(tiny_lm, alphabet: Alphabet):
    vocab = (tiny_lm / f"vocab-{TINY_TOP_K}.txt").read_text().split()
    assert all(alphabet.can_encode(word) for word in vocab)
