"""DeepSpeech 0.9 training flags with their 0.9 meaning (issue 12): --epochs per run,
--max_epochs, per-layer dropout, --layer_norm, --metrics_files, --cache_for_epochs,
--force_initialize_learning_rate."""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from util.distributed import make_strategy
from util.model import DeepSpeechModel
from util.training import build_session, train


def session_for(cfg, alphabet):
    return build_session(cfg, alphabet, make_strategy([]))


def test_epochs_on_a_resumed_checkpoint_trains_that_many_more(
    tiny_config, alphabet, sample_csv
):
    """0.9's fine-tuning command: --epochs 3 on a checkpoint trains 3 more."""
    csv_path = sample_csv(transcripts=("a",))
    first = tiny_config(data={"train_files": (csv_path,)}, train={"epochs": 1})
    assert train(session_for(first, alphabet)).epochs_completed == 1
    more = tiny_config(data={"train_files": (csv_path,)}, train={"epochs": 3})
    session = session_for(more, alphabet)
    assert train(session).epochs_completed == 4
    assert int(session.state.global_step.numpy()) == 4  # one sample per epoch
    capped = tiny_config(
        data={"train_files": (csv_path,)}, train={"epochs": 3, "max_epochs": 5}
    )
    assert train(session_for(capped, alphabet)).epochs_completed == 5
    assert train(session_for(capped, alphabet)).epochs_completed == 5  # at the cap


def test_layer_norm_and_per_layer_dropout(tiny_config, alphabet, sample_csv):
    cfg = tiny_config(
        model={"layer_norm": True, "dropout_rate": 0.0, "dropout_rate2": 0.5}
    )
    model = DeepSpeechModel(cfg.model, 26, alphabet.n_classes, seed=1)
    names = {v.name for v in model.trainable_variables}
    assert {"layer_1_norm/gamma:0", "layer_5_norm/beta:0"} <= names
    x = tf.random.stateless_normal([2, 30, 26], seed=[1, 2])
    lengths = tf.constant([30, 20])
    seed = tf.constant([3, 4])
    # Dropout on layer 2 only: training differs from inference, and layer 1's output
    # (normalised: zero mean, unit variance per frame) is untouched by it.
    front_train = model.feed_forward_front(x, True, seed)
    assert not np.allclose(front_train, model.feed_forward_front(x))
    h1 = model._activate(model.layer_1(tf.zeros([1, 4, 494])), False, None, 1)
    assert np.allclose(h1, 0.0, atol=1e-5)  # constant input -> normalised to beta
    logits = model(x, lengths)
    assert logits.shape == (2, 30, alphabet.n_classes)
    assert np.all(np.isfinite(logits))


def test_metrics_files_reported_never_used_for_best(
    tiny_config, alphabet, sample_csv, caplog
):
    train_csv = sample_csv(transcripts=("a",), name="train.csv")
    metrics_csv = sample_csv(transcripts=("ab", "abc"), name="metrics.csv")
    cfg = tiny_config(
        data={"train_files": (train_csv,), "metrics_files": (metrics_csv,)},
        train={"epochs": 2},
    )
    with caplog.at_level(logging.INFO):
        result = train(session_for(cfg, alphabet))
    lines = [r.getMessage() for r in caplog.records if "metrics loss" in r.getMessage()]
    assert len(lines) == 2 and metrics_csv in lines[0]
    assert result.best_dev_loss == float("inf")  # no dev set: nothing was "best"


@pytest.mark.slow  # three training runs
def test_force_initialize_learning_rate(tiny_config, alphabet, sample_csv):
    csv_path = sample_csv(transcripts=("a",))
    cfg = tiny_config(data={"train_files": (csv_path,)})
    session = session_for(cfg, alphabet)
    train(session)
    session.optimizer.learning_rate.assign(1e-5)  # as a plateau reduction would
    session.checkpoints.save_last(int(session.state.global_step.numpy()))
    kept = session_for(cfg, alphabet)
    train(kept)
    assert float(kept.optimizer.learning_rate.numpy()) == pytest.approx(1e-5)
    forced = dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, force_initialize_learning_rate=True),
    )
    fresh = session_for(forced, alphabet)
    train(fresh)
    assert float(fresh.optimizer.learning_rate.numpy()) == pytest.approx(0.003)


def test_cache_for_epochs_rebuilds_the_feature_cache(
    tiny_config, alphabet, sample_csv, tmp_path, caplog
):
    csv_path = sample_csv(transcripts=("a",))
    cfg = tiny_config(
        data={
            "train_files": (csv_path,),
            "feature_cache": str(tmp_path / "cache"),
            "cache_for_epochs": 2,
        },
        train={"epochs": 4},
    )
    with caplog.at_level(logging.INFO):
        train(session_for(cfg, alphabet))
    rebuilt = [
        r for r in caplog.records if "rebuilding the feature cache" in r.getMessage()
    ]
    assert len(rebuilt) == 1  # before the 3rd epoch of the run (epochs 0 1 | 2 3)
    assert len(os.listdir(tmp_path / "cache")) == 2  # features + index, no leftovers
