"""Bytes output mode (``--bytes_output_mode``, DeepSpeech 0.9; issue 14 item 4).

The model predicts UTF-8 bytes: 255 labels (byte ``b`` is label ``b - 1``) plus the
blank, 256 classes, with no alphabet file. These tests cover the alphabet (a Russian
and a CJK round trip), the training-side checks in byte terms, scorers in bytes mode
(this project's format, DeepSpeech 0.9's, 0.9.3's own ``pruned_lm.bytes.scorer``),
beam search that only returns whole characters, mismatch errors, checkpoints, and the
client's token metadata. The LDC93S1 training run is at the end (slow).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ctcdecode import (
    Alphabet,
    Scorer,
    UTF8Alphabet,
    ctc_beam_search_decoder,
    ctc_greedy_decoder,
    ds09_scorer,
    output_alphabet,
)
from ctcdecode.scorer_package import (
    ScorerError,
    read_scorer_package,
    write_ds09_package,
    write_scorer_package,
)
from helpers import require_kenlm_bins, write_bigram_arpa

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS093_BYTES = os.path.join(
    REPO_ROOT, "tests", "data", "ds093", "pruned_lm.bytes.scorer"
)
DS093_CHARS = os.path.join(REPO_ROOT, "tests", "data", "ds093", "pruned_lm.scorer")
RUSSIAN_CSV = os.path.join(REPO_ROOT, "data", "russian_sample", "ru.csv")
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"
CJK_TEXT = "你好 世界"  # 3-byte characters and a space
CJK_CHARS = ["你", "好", "世", "界", "中", "文"]
UTF8 = UTF8Alphabet()


def russian_transcript() -> str:
    with open(RUSSIAN_CSV, encoding="utf-8", newline="") as fin:
        return next(csv.DictReader(fin))["transcript"]


def byte_probs(text: str, frames_per_byte: int = 1, blank_between: bool = False):
    """float32 [T, 256] posteriors spelling ``text``'s bytes: each byte on
    ``frames_per_byte`` frames (a blank between equal bytes, and between all bytes
    with ``blank_between``), blank weakly preferred elsewhere, as CTC models do."""

    def row(label: int) -> np.ndarray:
        r = np.full(UTF8.n_classes, 1e-4)
        r[UTF8.blank_index] = 1e-2
        r[label] = 1.0
        return r / r.sum()

    rows, previous = [], None
    for label in UTF8.encode(text):
        if label == previous or blank_between:
            rows.append(row(UTF8.blank_index))
        rows += [row(label)] * frames_per_byte
        previous = label
    rows.append(row(UTF8.blank_index))
    return np.array(rows, np.float32)


def char_lm_arpa(path, text: str, extra=()) -> str:
    """A bigram ARPA character LM (tokens: the characters of ``text``, no spaces)."""
    write_bigram_arpa(str(path), [" ".join(text.replace(" ", ""))], list(extra))
    return str(path)


# -- the alphabet ---------------------------------------------------------------------


def test_geometry_is_deepspeech_09s():
    """0.9's UTF8Alphabet: size 255 (bytes 1..255 -> labels 0..254), blank 255,
    space = ord(' ') - 1; --bytes_output_mode never reads the alphabet file."""
    assert (UTF8.size(), UTF8.n_classes, UTF8.blank_index) == (255, 256, 255)
    assert UTF8.encode("a") == [ord("a") - 1] and UTF8.space_index == 31
    assert UTF8.encode("я") == [b - 1 for b in "я".encode("utf-8")]
    assert isinstance(output_alphabet("/no/such/alphabet.txt", True), UTF8Alphabet)
    assert (
        type(output_alphabet(os.path.join(REPO_ROOT, "data", "alphabet.txt"), False))
        is Alphabet
    )


@pytest.mark.parametrize("text", [russian_transcript(), CJK_TEXT, "naïve 🙂 ok"])
def test_non_latin_text_round_trips(text):
    labels = UTF8.encode(text)
    assert len(labels) == len(text.encode("utf-8"))
    assert all(0 <= label < 255 for label in labels)
    assert UTF8.decode(labels) == text
    assert "".join(c for c, _ in UTF8.characters(labels)) == text
    assert [i for _, i in UTF8.characters(labels)] == [
        len(text[:k].encode("utf-8")) for k in range(len(text))
    ]
    assert UTF8.is_complete(labels)
    assert not UTF8.is_complete(labels + UTF8.encode("é")[:1])


def test_cut_off_character_decodes_to_a_replacement_character():
    labels = UTF8.encode("世界")[:-1]
    assert UTF8.decode(labels) == "世\ufffd"
    assert UTF8.characters(labels) == [("世", 0), ("\ufffd", 3), ("\ufffd", 4)]


def test_training_checks_in_byte_terms():
    """Any valid UTF-8 transcript is in the alphabet; empty and NUL ones are not;
    CTC feasibility counts bytes (each 3-byte character needs 3 frames)."""
    from util.samples import (
        EMPTY_TRANSCRIPT,
        OUT_OF_ALPHABET,
        check_transcript,
        ctc_required_frames,
    )

    labels, problem = check_transcript(CJK_TEXT, UTF8)
    assert problem is None and UTF8.decode(labels) == CJK_TEXT
    assert check_transcript(russian_transcript(), UTF8)[1] is None
    assert check_transcript("  ", UTF8)[1][0] == EMPTY_TRANSCRIPT
    assert check_transcript("a\x00b", UTF8)[1][0] == OUT_OF_ALPHABET
    assert ctc_required_frames(UTF8.encode("世界")) == 6
    assert ctc_required_frames(UTF8.encode("aa")) == 3


def test_flag_reaches_the_config():
    from absl import flags

    from util import flags as ds_flags
    from util.config import Config

    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["DeepSpeech.py", "--bytes_output_mode"])
    cfg = Config.from_flags(values.flag_values_dict())
    assert cfg.data.bytes_output_mode is True
    assert Config.from_json(cfg.to_json()).data.bytes_output_mode is True


# -- decoding -------------------------------------------------------------------------


@pytest.mark.parametrize("frames_per_byte", [1, 2, 3])
def test_greedy_and_beam_decode_cjk_without_scorer(frames_per_byte):
    probs = byte_probs(CJK_TEXT, frames_per_byte)
    assert ctc_greedy_decoder(probs, UTF8).text == CJK_TEXT
    best = ctc_beam_search_decoder(probs, UTF8, 32)[0]
    assert best.text == CJK_TEXT and UTF8.decode(best.tokens) == CJK_TEXT


def test_beam_search_prefers_whole_characters():
    """Cut off inside the last character: without a scorer the best valid UTF-8
    hypothesis wins; with one, only whole vocabulary characters come out."""
    probs = byte_probs(CJK_TEXT)[:-2]  # the last byte and the final blank are gone
    assert ctc_greedy_decoder(probs, UTF8).text.endswith("\ufffd")
    results = ctc_beam_search_decoder(probs, UTF8, 32, num_results=5)
    complete = [UTF8.is_complete(r.tokens) for r in results]
    assert complete[0] and False in complete  # the likeliest one is cut off ...
    assert complete == sorted(complete, reverse=True)  # ... and ranks after them
    assert max(r.score for r in results) > results[0].score
    best = ctc_beam_search_decoder(probs, UTF8, 32)[0]
    assert best.text.startswith("你好 ") and UTF8.is_complete(best.tokens)
    assert len(best.text) == 4 and "\ufffd" not in best.text


@pytest.mark.parametrize("frames_per_byte", [1, 2, 3])
@pytest.mark.parametrize("blank_between", [False, True])
def test_character_lm_decodes_cjk_and_english(tmp_path, frames_per_byte, blank_between):
    """A character LM (0.9's bytes-mode scorers) scores whole characters: spaces
    come from the model and multi-frame bytes and double letters are kept right."""
    scorer = Scorer.from_lm(
        0.5, 1.0, char_lm_arpa(tmp_path / "cjk.arpa", CJK_TEXT, CJK_CHARS[4:]),
        CJK_CHARS, UTF8,
    )  # fmt: skip
    probs = byte_probs(CJK_TEXT, frames_per_byte, blank_between)
    assert ctc_beam_search_decoder(probs, UTF8, 64, scorer=scorer)[0].text == CJK_TEXT
    ds09 = Scorer(None, None, DS093_BYTES, UTF8)
    probs = byte_probs(LDC93S1_TEXT, frames_per_byte, blank_between)
    best = ctc_beam_search_decoder(probs, UTF8, 64, scorer=ds09)[0]
    assert best.text == LDC93S1_TEXT


def test_streaming_and_hot_words_with_a_bytes_scorer(tmp_path):
    """Fed in chunks, the incremental decoder gives the whole search's result; a hot
    word (a character) is boosted like 0.9's."""
    from ctcdecode import BeamOptions, StreamingDecoder

    scorer = Scorer(None, None, DS093_BYTES, UTF8)
    probs = byte_probs(LDC93S1_TEXT, 2)
    whole = ctc_beam_search_decoder(probs, UTF8, 32, scorer=scorer)[0]
    stream = StreamingDecoder(UTF8, BeamOptions(beam_size=32), scorer, None, 7)
    for start in range(0, len(probs), 5):
        stream.feed(probs[start : start + 5])
    (streamed,) = stream.finish()
    assert streamed.text == whole.text == LDC93S1_TEXT
    assert streamed.tokens == whole.tokens
    boosted = ctc_beam_search_decoder(
        probs, UTF8, 32, scorer=scorer, hot_words={"z": 5.0}
    )[0]
    assert boosted.score == pytest.approx(whole.score)  # no z in the sentence
    assert boosted.text == LDC93S1_TEXT
    ambiguous = byte_probs("x", 2)
    ambiguous[:, ord("z") - 1] = ambiguous[:, ord("x") - 1] * 0.5  # z: half as likely
    plain = ctc_beam_search_decoder(ambiguous, UTF8, 32, scorer=scorer)[0].text
    hot = ctc_beam_search_decoder(
        ambiguous, UTF8, 32, scorer=scorer, hot_words={"z": 20.0}
    )[0].text
    assert (plain, hot) == ("x", "z")


def test_scorer_restricts_output_to_its_characters(tmp_path):
    """界 is not in the vocabulary: the search cannot produce it."""
    scorer = Scorer.from_lm(
        0.5, 1.0, char_lm_arpa(tmp_path / "lm.arpa", "你好世"), ["你", "好", "世"], UTF8
    )
    best = ctc_beam_search_decoder(byte_probs(CJK_TEXT), UTF8, 64, scorer=scorer)[0]
    assert "界" not in best.text and UTF8.is_complete(best.tokens)
    assert best.text.startswith("你好")


# -- scorers --------------------------------------------------------------------------


def test_deepspeech_093_bytes_scorer_loads():
    package = read_scorer_package(DS093_BYTES, alphabet=UTF8)
    assert package.bytes_output_mode is True
    assert sorted(package.vocab) == sorted(["'", *"abcdefghijklmnopqrstuvwxyz"])
    scorer = Scorer(None, None, DS093_BYTES, UTF8)
    assert scorer.alpha == pytest.approx(0.931289, abs=1e-6)


def test_mode_mismatches_are_refused_clearly(tmp_path, alphabet):
    with pytest.raises(
        ScorerError, match="was built for an alphabet file but the model is in bytes"
    ):
        Scorer(None, None, DS093_CHARS, UTF8)
    with pytest.raises(ScorerError, match="is a bytes output mode scorer"):
        Scorer(None, None, DS093_BYTES, alphabet)
    # this project's format, both ways
    lm = ds093_lm(tmp_path)
    native_bytes = str(tmp_path / "bytes.scorer")
    write_scorer_package(native_bytes, lm, list("abc"), UTF8, 1.0, 1.0, True)
    with pytest.raises(ScorerError, match="is a bytes output mode scorer"):
        Scorer(None, None, native_bytes, alphabet)
    native_chars = str(tmp_path / "chars.scorer")
    write_scorer_package(native_chars, lm, ["abc"], alphabet, 1.0, 1.0, False)
    with pytest.raises(ScorerError, match="--force_bytes_output_mode"):
        Scorer(None, None, native_chars, UTF8)


def ds093_lm(tmp_path) -> str:
    """The KenLM binary part of 0.9.3's bytes scorer (built with build_binary -v)."""
    offset = ds09_scorer.trie_offset(DS093_BYTES)
    path = tmp_path / "ds093_bytes_lm.binary"
    with open(DS093_BYTES, "rb") as fin:
        path.write_bytes(fin.read(offset))
    return str(path)


def test_ds09_writer_rebuilds_the_093_bytes_trie(tmp_path):
    """0.9's format in bytes mode: the utf8 flag, and words spelled in bytes with no
    space; from 0.9.3's LM and vocabulary the package equals 0.9.3's byte for byte."""
    original = read_scorer_package(DS093_BYTES, alphabet=UTF8)
    out = str(tmp_path / "rebuilt.scorer")
    n = write_ds09_package(
        out, ds093_lm(tmp_path), list(original.vocab), UTF8,
        original.default_alpha, original.default_beta,
    )  # fmt: skip
    assert n == 27
    with open(DS093_BYTES, "rb") as a, open(out, "rb") as b:
        assert a.read() == b.read()


def test_generate_scorer_package_builds_bytes_scorers_in_both_formats(tmp_path):
    """From a tiny Russian character corpus: lmplz, build_binary -v, then
    generate_scorer_package.py (0.9's flag, and 0.9's inference without it)."""
    bins = require_kenlm_bins()
    text = russian_transcript()
    corpus = tmp_path / "chars.txt"
    corpus.write_text(" ".join(text.replace(" ", "")) + "\n", encoding="utf-8")
    arpa, binary = tmp_path / "lm.arpa", tmp_path / "lm.binary"
    with open(corpus, "rb") as fin, open(arpa, "wb") as fout:
        subprocess.run(
            [str(bins / "lmplz"), "-o", "2", "--discount_fallback", "-S", "10%"],
            stdin=fin, stdout=fout, stderr=subprocess.DEVNULL, check=True,
        )  # fmt: skip
    subprocess.run(
        [str(bins / "build_binary"), "-v", "trie", str(arpa), str(binary)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(" ".join(sorted(set(text.replace(" ", "")))), encoding="utf-8")
    script = os.path.join(REPO_ROOT, "native_client", "generate_scorer_package.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    probs = byte_probs(text, 2)
    for args in (
        ["--force_bytes_output_mode"],
        ["--force_bytes_output_mode", "true", "--package_format", "deepspeech-0.9"],
        [],  # no --alphabet: a one-character-per-entry vocabulary means bytes mode
    ):
        package = str(tmp_path / f"ru{len(args)}.scorer")
        run = subprocess.run(
            [sys.executable, script, "--lm", str(binary), "--vocab", str(vocab),
             "--package", package, *args],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "UTF-8 bytes output mode" in run.stdout
        scorer = Scorer(0.5, 1.0, package, UTF8)
        assert ctc_beam_search_decoder(probs, UTF8, 64, scorer=scorer)[0].text == text
    assert ds09_scorer.read_ds09_scorer(str(tmp_path / "ru4.scorer"), None).utf8_mode


# -- checkpoints, export metadata, client ---------------------------------------------


def test_checkpoint_records_bytes_mode_and_refuses_a_mismatch(tiny_config, alphabet):
    from util import checkpoints as ckpt
    from util.distributed import make_strategy
    from util.training import build_session

    cfg = tiny_config(data={"bytes_output_mode": True})
    session = build_session(cfg, UTF8, make_strategy([]))
    assert (
        session.model.output_shape[-1] == 256
        if hasattr(session.model, "output_shape")
        else True
    )
    session.checkpoints.save_last(1)
    stored = ckpt.load_saved_config(cfg.checkpoint.save_checkpoint_dir)
    assert stored.data.bytes_output_mode is True
    chars = build_session(tiny_config(), alphabet, make_strategy([]))
    with pytest.raises(
        ckpt.CheckpointMismatchError, match="bytes_output_mode: checkpoint True"
    ):
        chars.checkpoints.restore_for_training()
    restored_cfg, restored = ckpt.as_trained(tiny_config(), alphabet)
    assert isinstance(restored, UTF8Alphabet)  # testing/export follow the checkpoint


def test_export_metadata_says_bytes_mode(tiny_config):
    from util.export import metadata

    meta = metadata(tiny_config(data={"bytes_output_mode": True}), UTF8)
    assert meta["bytes_output_mode"] is True and meta["alphabet"] == []
    assert meta["n_classes"] == 256 and meta["blank_index"] == 255


def test_client_tokens_are_characters():
    """0.9's metadata: one token per character, at its first byte's frame."""
    from deepspeech import _decoding

    text = russian_transcript()
    result = ctc_greedy_decoder(byte_probs(text, 2), UTF8)
    (best,) = _decoding.candidates([result], UTF8, 0.02)
    assert best.text == text
    assert [t.text for t in best.tokens] == list(text)
    assert [w.word for w in best.words] == text.split()
    first = result.timesteps[len("б".encode("utf-8"))]  # the second character's frame
    assert best.tokens[1].timestep == first


@pytest.fixture(scope="module")
def bytes_tflite(tmp_path_factory):
    """A tiny random-weight bytes-mode model exported to TFLite (metadata included)."""
    import logging

    from util import export
    from util.config import Config
    from util.model import DeepSpeechModel

    tmp = tmp_path_factory.mktemp("bytes_export")
    base = Config()
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(base.model, n_hidden=16, bidirectional=False),
        data=dataclasses.replace(base.data, bytes_output_mode=True),
        export=dataclasses.replace(base.export, export_dir=str(tmp)),
    )
    model = DeepSpeechModel(cfg.model, cfg.features.n_mfcc, UTF8.n_classes, seed=5)
    level = logging.getLogger("absl").level  # the converter changes it
    try:
        return export.export_tflite(model, cfg, UTF8)
    finally:
        logging.getLogger("absl").setLevel(level)


def test_client_decodes_a_bytes_model_from_its_metadata(
    bytes_tflite, pcm, tmp_path, monkeypatch
):
    """The TensorFlow-free client reads bytes mode from the model file (no alphabet
    file), and its Model API decodes Russian greedy and by beam search, with and
    without a bytes scorer; metadata tokens are characters."""
    import deepspeech

    model = deepspeech.Model(bytes_tflite)
    assert isinstance(model.alphabet, UTF8Alphabet)
    assert model.metadata["bytes_output_mode"] is True
    assert model.probabilities(pcm[:16000]).shape[1] == 256
    text = russian_transcript()
    monkeypatch.setattr(model, "probabilities", lambda audio: byte_probs(text, 2))
    assert model.stt(pcm) == text
    tokens = model.sttWithMetadata(pcm).transcripts[0].tokens
    assert [t.text for t in tokens] == list(text)
    lm = char_lm_arpa(tmp_path / "ru.arpa", text)
    scorer = str(tmp_path / "ru.scorer")
    monkeypatch.setattr(
        "ctcdecode.scorer_package._check_lm_binary", lambda path: None
    )  # a tiny ARPA instead of a KenLM binary
    write_scorer_package(scorer, lm, sorted(set(text) - {" "}), UTF8, 0.5, 1.0, True)
    assert model.enableExternalScorer(scorer) == 0
    assert model.stt(pcm) == text
    chars = str(tmp_path / "chars.scorer")
    write_scorer_package(
        chars, lm, ["бед"], Alphabet.from_symbols(list("бед ")), 1, 1, False
    )
    with pytest.raises(Exception, match="bytes output mode"):
        model.enableExternalScorer(chars)


@pytest.mark.slow  # 300 epochs: 14 min 20 s on 2 cores at load average ~20 (shared)
def test_ldc93s1_in_bytes_mode_reaches_the_exact_transcript(repo_root, tmp_path, pcm):
    """bin/run-ldc93s1.sh --bytes_output_mode: a bytes-mode character scorer from the
    demo's text, 300 epochs, the test phase with that scorer gives the exact
    transcript; the exported TFLite model says bytes mode and the client
    transcribes it exactly, greedy, by beam search and with the scorer."""
    import deepspeech

    require_kenlm_bins()
    tree = tmp_path / "repo"
    (tree / "bin").mkdir(parents=True)
    shutil.copy(os.path.join(repo_root, "bin", "run-ldc93s1.sh"), tree / "bin")
    for script in ("import_ldc93s1.py", "_python.sh"):
        (tree / "bin" / script).symlink_to(os.path.join(repo_root, "bin", script))
    for name in ("DeepSpeech.py", "util", "native_client", "data", "tools"):
        (tree / name).symlink_to(os.path.join(repo_root, name))
    result = subprocess.run(
        ["bash", str(tree / "bin" / "run-ldc93s1.sh"), "--bytes_output_mode",
         "--export_tflite"],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UTF-8 bytes output mode" in result.stdout  # generate_scorer_package
    assert "WER: 0.000000, CER: 0.000000" in result.stdout, result.stdout
    assert f' - res: "{LDC93S1_TEXT}"' in result.stdout
    run = tree / "runs" / "ldc93s1"
    config = json.loads((run / "checkpoints" / "config.json").read_text())
    assert config["data"]["bytes_output_mode"] is True
    model = deepspeech.Model(str(run / "export" / "output_graph.tflite"))
    assert isinstance(model.alphabet, UTF8Alphabet)
    assert ctc_greedy_decoder(model.probabilities(pcm), UTF8).text == LDC93S1_TEXT
    assert model.stt(pcm) == LDC93S1_TEXT
    assert model.enableExternalScorer(str(run / "kenlm.scorer")) == 0
    metadata = model.sttWithMetadata(pcm).transcripts[0]
    assert "".join(t.text for t in metadata.tokens) == LDC93S1_TEXT
