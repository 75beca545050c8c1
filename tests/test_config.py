"""Tests for util/config.py: flag defaults, derived geometry, validation, JSON."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict

import pytest
from absl import flags

from util import flags as ds_flags
from util.config import (
    CONFIG_FORMAT_VERSION,
    DS09_IGNORED,
    CheckpointConfig,
    Config,
    DataConfig,
    FeatureConfig,
    ModelConfig,
    TrainConfig,
)


@pytest.fixture
def flag_defaults() -> Dict[str, Any]:
    """Every flag's default, from a fresh FlagValues (the global FLAGS untouched)."""
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["DeepSpeech.py"])
    return values.flag_values_dict()


# Fields from_flags resolves (to directories under ~/.local/share/deepspeech).
RESOLVED_FIELDS = {
    ("train", "summary_dir"),
    ("checkpoint", "load_checkpoint_dir"),
    ("checkpoint", "save_checkpoint_dir"),
}
# Edge-only flags, or flags that set other fields; notify: its URLs may hold tokens,
# so it stays out of config.json.
# Aliases (scorer, and the DeepSpeech2 reference's rnn_hidden_layers/is_bidirectional)
# are flags without fields of their own.
EDGE_FLAGS = {
    "log_level",
    "checkpoint_dir",
    "scorer",
    "notify",
    "rnn_hidden_layers",
    "is_bidirectional",
}
# DeepSpeech 0.9 flags read by Config.from_flags's checks (warned about).
DS09_FLAGS = set(DS09_IGNORED)
FIXED_FIELDS = {
    "n_mfcc",
    "n_filterbank",
    "lower_frequency_limit",
    "preemphasis",  # fbank: python_speech_features' 0.97
}  # DeepSpeech's, no flag


def _sections(cfg: Config):
    for field in dataclasses.fields(cfg):
        section = getattr(cfg, field.name)
        if dataclasses.is_dataclass(section):
            yield field.name, section


def test_from_flags_defaults_match_dataclass_defaults(flag_defaults):
    """Every section: the flag defaults and the dataclass defaults must not drift."""
    cfg = Config.from_flags(flag_defaults)
    names = {name for name, _ in _sections(cfg)}
    assert {"features", "model", "data", "train", "checkpoint", "decoder"} <= names
    for name, section in _sections(cfg):
        default = type(section)()
        drift = {
            f.name: (getattr(section, f.name), getattr(default, f.name))
            for f in dataclasses.fields(section)
            if (name, f.name) not in RESOLVED_FIELDS
            and getattr(section, f.name) != getattr(default, f.name)
        }
        assert not drift, f"{name}: flag default vs dataclass default {drift}"
    assert cfg.model.n_hidden == 2048
    assert cfg.data.train_files == ()
    assert cfg.eval.one_shot_infer is None
    assert cfg.export.export_dir is None


def test_every_flag_has_a_config_field_and_back(flag_defaults):
    """A flag without a field is read nowhere; a field without a flag is unsettable."""
    fields = {
        f.name
        for _, section in _sections(Config())
        for f in dataclasses.fields(section)
    }
    assert set(flag_defaults) - fields == EDGE_FLAGS | (DS09_FLAGS - fields)
    assert fields - set(flag_defaults) == FIXED_FIELDS


def test_from_flags_resolves_directories_and_lists(flag_defaults):
    default = Config.from_flags(flag_defaults)
    home_ckpt = os.path.expanduser(os.path.join("~", ".local", "share", "deepspeech"))
    assert default.checkpoint.load_checkpoint_dir.startswith(home_ckpt)
    assert (
        default.checkpoint.save_checkpoint_dir == default.checkpoint.load_checkpoint_dir
    )

    cfg = Config.from_flags(
        {
            **flag_defaults,
            "train_files": "a.csv, b.csv,,",
            "checkpoint_dir": "ck",
            "save_checkpoint_dir": "out",
            "export_dir": "exp",
        }
    )
    assert cfg.data.train_files == ("a.csv", "b.csv")
    assert cfg.checkpoint.load_checkpoint_dir == "ck"
    assert cfg.checkpoint.save_checkpoint_dir == "out"
    assert cfg.export.export_dir == "exp"


def test_derived_geometry():
    features = FeatureConfig()
    assert features.win_len_samples == 512  # 32 ms at 16 kHz
    assert features.win_step_samples == 320  # 20 ms at 16 kHz
    assert features.upper_frequency_limit == 8000
    assert ModelConfig().window_frames == 19  # 2 * 9 + 1
    assert ModelConfig(n_context=0).window_frames == 1
    assert features.n_frames(511) == 0
    assert features.n_frames(512) == 1
    assert features.n_frames(512 + 320) == 2


@pytest.mark.parametrize(
    "build, flag",
    [
        (lambda: ModelConfig(dropout_rate=1.0), "--dropout_rate"),
        (lambda: ModelConfig(dropout_rate=-0.1), "--dropout_rate"),
        (lambda: ModelConfig(n_hidden=0), "--n_hidden"),
        (lambda: ModelConfig(n_context=-1), "--n_context"),
        (
            lambda: FeatureConfig(feature_win_len=20, feature_win_step=40),
            "--feature_win_step",
        ),
        (lambda: FeatureConfig(audio_sample_rate=0), "--audio_sample_rate"),
        (lambda: DataConfig(train_batch_size=0), "--train_batch_size"),
        (lambda: DataConfig(test_batch_size=0), "--test_batch_size"),
        (lambda: TrainConfig(learning_rate=0.0), "--learning_rate"),
        (lambda: TrainConfig(lr_decay="exponential"), "--lr_decay_floor"),
        (lambda: TrainConfig(lr_decay="linear"), "--lr_decay"),
        (
            lambda: TrainConfig(lr_decay="cosine", reduce_lr_on_plateau=True),
            "--reduce_lr_on_plateau",
        ),
        (lambda: CheckpointConfig(load_train="newest"), "--load_train"),
        (lambda: CheckpointConfig(load_evaluate="init"), "--load_evaluate"),
    ],
)
def test_validation_error_names_the_flag(build, flag):
    with pytest.raises(ValueError, match=flag):
        build()


def test_from_flags_validation_names_the_flag(flag_defaults):
    with pytest.raises(ValueError, match="--dev_batch_size"):
        Config.from_flags({**flag_defaults, "dev_batch_size": 0})


def test_json_round_trip():
    cfg = Config(
        model=ModelConfig(n_hidden=32, bidirectional=False, dropout_rate=0.1),
        data=DataConfig(train_files=("a.csv", "b.csv"), feature_cache="/tmp/cache"),
        checkpoint=CheckpointConfig(load_checkpoint_dir="x", save_checkpoint_dir="y"),
    )
    text = cfg.to_json()
    assert json.loads(text)["format_version"] == CONFIG_FORMAT_VERSION
    assert Config.from_json(text) == cfg


def test_from_json_ignores_unknown_fields_and_fills_missing_sections():
    body = json.loads(Config(model=ModelConfig(n_hidden=8)).to_json())
    body["model"]["obsolete_field"] = 1
    del body["export"]
    cfg = Config.from_json(json.dumps(body))
    assert cfg.model.n_hidden == 8
    assert cfg.export == Config().export


@pytest.mark.parametrize("version", [None, CONFIG_FORMAT_VERSION + 1, "1"])
def test_from_json_rejects_other_format_versions(version):
    body = json.loads(Config().to_json())
    if version is None:
        del body["format_version"]
    else:
        body["format_version"] = version
    with pytest.raises(ValueError, match="format version"):
        Config.from_json(json.dumps(body))


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.n_hidden = 3  # type: ignore[misc]


def test_decoder_section_from_flags(flag_defaults):
    from util.config import DecoderConfig

    assert Config.from_flags(flag_defaults).decoder == DecoderConfig()
    assert DecoderConfig().lm_alpha is None  # None = the scorer's stored default
    cfg = Config.from_flags(
        {**flag_defaults, "scorer_path": "x.scorer", "lm_alpha": 0.5, "beam_width": 8}
    )
    assert (cfg.decoder.scorer_path, cfg.decoder.lm_alpha) == ("x.scorer", 0.5)
    assert cfg.decoder.lm_beta is None and cfg.decoder.beam_width == 8
    assert Config.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="--cutoff_prob"):
        DecoderConfig(cutoff_prob=0.0)
