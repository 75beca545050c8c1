"""Tests for util/transfer.py: --drop_source_layers / --freeze_source_layers."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil

import numpy as np
import pytest

from ctcdecode import Alphabet
from util import checkpoints as ckpt
from util import transfer
from util.distributed import make_strategy
from util.model import layer_of, trainable_variables
from util.training import build_session, train

RU_TRANSCRIPTS = ("да", "нет", "мир")


def digest(directory: str) -> dict:
    """sha256 of every file under ``directory`` (the source must stay as it was);
    the lock file, which names the last training that held the directory, aside."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            if name == ckpt.LOCK_FILE:
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(
                    f.read()
                ).hexdigest()
    return out


def weights_by_layer(session) -> dict:
    out = {}
    for v in trainable_variables(session.model):
        out.setdefault(layer_of(v), []).append(v.numpy().copy())
    return out


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


@pytest.fixture
def source(tiny_config, alphabet, sample_csv, tmp_path):
    """A 1-epoch English model in tmp_path/src; returns (dir, its weights by layer)."""
    src = str(tmp_path / "src")
    cfg = tiny_config(
        data={"train_files": (sample_csv(),)},
        checkpoint={"load_checkpoint_dir": src, "save_checkpoint_dir": src},
    )
    session = build_session(cfg, alphabet, make_strategy([]))
    train(session)
    return src, weights_by_layer(session)


@pytest.fixture
def russian(repo_root, sample_csv, tiny_config, tmp_path):
    """Factory of a Russian-alphabet config continuing from tmp_path/src."""
    alphabet_path = os.path.join(repo_root, "data", "russian_sample", "alphabet.ru")
    csv_path = sample_csv(RU_TRANSCRIPTS, name="ru.csv")

    def make(drop=1, freeze=0, epochs=1, save="dst", **model):
        return tiny_config(
            model={"n_hidden": 16, "dropout_rate": 0.0, **model},
            data={"alphabet_config_path": alphabet_path, "train_files": (csv_path,)},
            train={"epochs": epochs},
            checkpoint={
                "load_checkpoint_dir": str(tmp_path / "src"),
                "save_checkpoint_dir": str(tmp_path / save),
                "drop_source_layers": drop,
                "freeze_source_layers": freeze,
            },
        )

    return make, Alphabet(alphabet_path)


def test_drop_output_layer_for_a_new_alphabet(source, russian, caplog, tmp_path):
    src, src_weights = source
    before = digest(src)
    make, ru_alphabet = russian
    cfg = make(drop=1)
    session = build_session(cfg, ru_alphabet, make_strategy([]))
    fresh = weights_by_layer(session)
    caplog.set_level(logging.INFO)
    path = transfer.start(session.checkpoints, session.model, cfg)
    assert path and path.startswith(src)
    loaded = weights_by_layer(session)
    for layer in ("layer_1", "layer_2", "layer_3", "lstm", "layer_5"):
        for a, b in zip(loaded[layer], src_weights[layer]):
            np.testing.assert_array_equal(a, b)
    # The output layer has the Russian alphabet's width and its fresh weights.
    assert loaded["layer_6"][0].shape[-1] == ru_alphabet.n_classes
    for a, b in zip(loaded["layer_6"], fresh["layer_6"]):
        np.testing.assert_array_equal(a, b)
    logs = messages(caplog)
    assert any(
        m.startswith("transfer: loaded layer_1, layer_2, layer_3, lstm, layer_5 from")
        for m in logs
    ), logs
    assert "transfer: re-initialised layer_6 (--drop_source_layers 1)" in logs

    result = train(build_session(cfg, ru_alphabet, make_strategy([])))
    assert result.epochs_completed == 1
    assert digest(src) == before  # the source is never written
    assert os.path.exists(tmp_path / "dst" / "train-3.index")
    with open(tmp_path / "dst" / ckpt.ALPHABET_FILE, encoding="utf-8") as f:
        assert "я" in f.read()


def test_rerun_resumes_the_new_model_not_the_source(source, russian, caplog):
    make, ru_alphabet = russian
    train(build_session(make(epochs=1), ru_alphabet, make_strategy([])))
    caplog.set_level(logging.INFO)
    result = train(build_session(make(epochs=1), ru_alphabet, make_strategy([])))
    assert result.epochs_completed == 2  # --epochs counts this run (0.9)
    logs = messages(caplog)
    assert any(m.startswith("transfer: continuing the new model in") for m in logs)
    assert not any(m.startswith("transfer: loaded") for m in logs)


def test_freeze_trains_only_the_last_layers(source, russian):
    src, src_weights = source
    make, ru_alphabet = russian
    session = build_session(make(drop=1, freeze=1), ru_alphabet, make_strategy([]))
    train(session)
    after = weights_by_layer(session)
    for layer in ("layer_1", "layer_2", "layer_3", "lstm", "layer_5"):
        for a, b in zip(after[layer], src_weights[layer]):
            np.testing.assert_array_equal(a, b)
    fresh = weights_by_layer(
        build_session(make(drop=1, freeze=1), ru_alphabet, make_strategy([]))
    )
    assert not np.array_equal(after["layer_6"][0], fresh["layer_6"][0])


def test_new_alphabet_without_drop_names_layer_6_and_the_flag(source, russian):
    make, ru_alphabet = russian
    cfg = make(drop=0, freeze=5)  # a transfer run that drops nothing
    session = build_session(cfg, ru_alphabet, make_strategy([]))
    with pytest.raises(transfer.TransferError) as err:
        transfer.start(session.checkpoints, session.model, cfg)
    text = str(err.value)
    width = ru_alphabet.n_classes
    assert f"layer_6/weights: source [16, 29], this model [16, {width}]" in text
    assert "pass --drop_source_layers 1 to re-initialise layer_6" in text


def test_resume_with_another_alphabet_points_at_the_flag(source, russian, tmp_path):
    make, ru_alphabet = russian
    cfg = make(drop=0, save="src")  # plain resume of the English dir
    session = build_session(cfg, ru_alphabet, make_strategy([]))
    with pytest.raises(ckpt.CheckpointMismatchError, match="--drop_source_layers 1"):
        session.checkpoints.restore_for_training()


def test_other_geometry_is_refused_clearly(source, russian):
    make, ru_alphabet = russian
    cfg = make(drop=2, n_hidden=8)
    session = build_session(cfg, ru_alphabet, make_strategy([]))
    with pytest.raises(transfer.TransferError) as err:
        transfer.start(session.checkpoints, session.model, cfg)
    text = str(err.value)
    assert "layer_1/weights: source [494, 16], this model [494, 8]" in text
    assert "layer_1 is always loaded" in text


def test_saving_into_the_source_is_refused(source, russian):
    src, _ = source
    before = digest(src)
    make, ru_alphabet = russian
    cfg = make(drop=1, save="src")
    with pytest.raises(transfer.TransferError, match="--save_checkpoint_dir"):
        train(build_session(cfg, ru_alphabet, make_strategy([])))
    assert digest(src) == before


def test_missing_source_is_a_clear_error(russian, tmp_path):
    make, ru_alphabet = russian
    cfg = make(drop=1)
    session = build_session(cfg, ru_alphabet, make_strategy([]))
    with pytest.raises(FileNotFoundError, match="--load_checkpoint_dir"):
        transfer.start(session.checkpoints, session.model, cfg)
    assert not os.path.exists(tmp_path / "dst" / "checkpoint")
    shutil.rmtree(tmp_path / "dst", ignore_errors=True)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"drop_source_layers": 6}, "--drop_source_layers must be between 0 and 5"),
        ({"freeze_source_layers": -1}, "--freeze_source_layers must be between"),
        (
            {"drop_source_layers": 2, "freeze_source_layers": 1},
            "--freeze_source_layers must be at least --drop_source_layers",
        ),
    ],
)
def test_flag_values_are_checked(fields, match):
    from util.config import CheckpointConfig

    with pytest.raises(ValueError, match=match):
        CheckpointConfig(**fields)


RU_TEXT = "бедняга ребят на его месте должен был быть я"


@pytest.mark.slow
def test_english_model_continues_in_russian(repo_root, tmp_path):
    """LDC93S1 (English alphabet), then the Russian sample with --drop_source_layers 1
    reaches the Russian transcript; the English checkpoint dir is left unchanged.
    About 3 minutes on 2 shared cores."""
    from helpers import run_deepspeech, write_ldc93s1_csv

    en_wav = os.path.join(repo_root, "data", "ldc93s1", "LDC93S1.wav")
    ldc = write_ldc93s1_csv(tmp_path, en_wav)
    ru_wav = os.path.join(repo_root, "data", "russian_sample", "ru.wav")
    ru_csv = tmp_path / "ru.csv"
    ru_csv.write_text(
        "wav_filename,wav_filesize,transcript\n"
        f"{ru_wav},{os.path.getsize(ru_wav)},{RU_TEXT}\n",
        encoding="utf-8",
    )
    common = ["--n_hidden", "64", "--learning_rate", "0.003", "--dropout_rate", "0",
              "--show_progressbar=false",
              "--summary_dir", str(tmp_path / "sum")]  # fmt: skip
    en = run_deepspeech(repo_root, ["--train_files", ldc, "--epochs", "60",
                        "--checkpoint_dir", str(tmp_path / "en"), *common])  # fmt: skip
    assert en.returncode == 0, en.stderr[-3000:]
    before = digest(str(tmp_path / "en"))
    ru = run_deepspeech(
        repo_root,
        ["--train_files", str(ru_csv), "--epochs", "150",
         "--alphabet_config_path", "data/russian_sample/alphabet.ru",
         "--load_checkpoint_dir", str(tmp_path / "en"),
         "--save_checkpoint_dir", str(tmp_path / "ru"),
         "--drop_source_layers", "1", "--one_shot_infer", ru_wav, *common],
    )  # fmt: skip
    assert ru.returncode == 0, ru.stderr[-3000:]
    assert "transfer: loaded layer_1, layer_2, layer_3, lstm, layer_5 from" in ru.stderr
    assert "transfer: re-initialised layer_6 (--drop_source_layers 1)" in ru.stderr
    assert ru.stdout.strip().splitlines()[-1] == RU_TEXT
    assert digest(str(tmp_path / "en")) == before
    assert os.path.exists(tmp_path / "ru" / "config.json")
