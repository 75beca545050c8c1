"""Transfer learning: start a new model from another one's checkpoint.

DeepSpeech 0.9's ``--drop_source_layers N`` loads every layer of the checkpoint in
``--load_checkpoint_dir`` but the last N of ``layer_1 .. layer_6`` (``lstm`` counts as
one), which start from fresh weights: N=1 re-initialises the output layer, what a new
alphabet needs. Coqui STT's ``--freeze_source_layers N`` trains only the last N layers.

A transfer run is a new run: fresh optimizer moments, counters and learning rate; it
reads the source directory once and saves to ``--save_checkpoint_dir``, which must be
another directory, so the source is never written. Once the new directory holds a
checkpoint, a rerun resumes it as any other run (no second transfer).

Where we differ from 0.9: a layer whose shape does not fit is refused with its name,
both shapes and the ``--drop_source_layers`` value that would re-initialise it (0.9
failed inside TensorFlow's restore), and N > 5 is refused rather than clamped.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf
from absl import logging

from util import ds09_checkpoint
from util.checkpoints import (
    BEST_DIR,
    CONFIG_FILE,
    Checkpoints,
    geometry_differences,
    load_saved_config,
)
from util.model import LAYERS, DeepSpeechModel
from util.optimizer import Adam


class TransferError(ValueError):
    """The source checkpoint cannot start this model (names layers and flags)."""


def dropped_layers(n: int) -> Tuple[str, ...]:
    """The last ``n`` layers (``--drop_source_layers``)."""
    return LAYERS[len(LAYERS) - n :] if n else ()


def frozen_layers(n: int) -> Tuple[str, ...]:
    """Layers kept fixed by ``--freeze_source_layers n``: all but the last ``n``."""
    return LAYERS[: len(LAYERS) - n] if n else ()


def is_transfer(cfg) -> bool:
    """Whether ``cfg.checkpoint`` asks for a transfer run."""
    ckpt = cfg.checkpoint
    return bool(ckpt.drop_source_layers or ckpt.freeze_source_layers)


def starts_from_source(cfg) -> bool:
    """Whether training starts from another directory's model: a transfer run, or a
    DeepSpeech 0.9 checkpoint in ``--load_checkpoint_dir`` (util/ds09_checkpoint.py)."""
    return is_transfer(cfg) or ds09_checkpoint.is_ds09_dir(
        cfg.checkpoint.load_checkpoint_dir
    )


def check_target(cfg) -> None:
    """Refuse to save into the source directory (before anything is written there)."""
    ckpt = cfg.checkpoint
    load_dir, save_dir = ckpt.load_checkpoint_dir, ckpt.save_checkpoint_dir
    if not starts_from_source(cfg):
        return
    if os.path.realpath(load_dir) != os.path.realpath(save_dir):
        return
    if is_transfer(cfg):
        raise TransferError(
            "--drop_source_layers/--freeze_source_layers start a new model from "
            f"{load_dir}: pass another --save_checkpoint_dir (the source is never "
            "written)"
        )
    raise TransferError(
        f"{load_dir} holds a DeepSpeech 0.9 checkpoint: pass --load_checkpoint_dir "
        f"{load_dir} with another --save_checkpoint_dir to continue training from it "
        "(the source is never written)"
    )


def model_variables(model: DeepSpeechModel) -> Dict[str, Tuple[str, tf.Variable]]:
    """Checkpoint key -> (layer, variable) for every model weight."""
    out: Dict[str, Tuple[str, tf.Variable]] = {}
    for layer in LAYERS:
        if layer == "lstm":
            for i, cell in enumerate(model.lstm):
                for attr in ("kernel", "recurrent_kernel", "bias"):
                    out[f"model/lstm/{i}/{attr}/.ATTRIBUTES/VARIABLE_VALUE"] = (
                        layer,
                        getattr(cell, attr),
                    )
        else:
            dense = getattr(model, layer)
            for attr in ("weights", "bias"):
                out[f"model/{layer}/{attr}/.ATTRIBUTES/VARIABLE_VALUE"] = (
                    layer,
                    getattr(dense, attr),
                )
    return out


def source_checkpoint(load_dir: str, load_train: str = "auto") -> str:
    """The checkpoint to transfer from: best dev, else last (per ``--load_train``)."""
    best = tf.train.latest_checkpoint(os.path.join(load_dir, BEST_DIR))
    last = tf.train.latest_checkpoint(load_dir)
    order = {"best": (best,), "last": (last,)}.get(load_train, (best, last))
    for path in order:
        if path:
            return path
    raise FileNotFoundError(
        f"--load_checkpoint_dir {load_dir}: no checkpoint to transfer from "
        f"(--load_train {load_train}); point it at a trained model's checkpoint dir"
    )


def load_source(model: DeepSpeechModel, cfg, path: str) -> Tuple[List[str], List[str]]:
    """Assign the source weights to ``model`` but the dropped layers'.

    Returns (loaded layers, re-initialised layers). Raises TransferError when the
    source's feature geometry differs or a loaded layer's shape does not fit.
    """
    load_dir = cfg.checkpoint.load_checkpoint_dir
    if os.path.exists(os.path.join(load_dir, CONFIG_FILE)):
        diffs = [
            d
            for d in geometry_differences(load_saved_config(load_dir), cfg)
            if d.startswith("features.")
        ]
        if diffs:
            raise TransferError(
                f"the source checkpoint in {load_dir} was trained on other features:"
                "\n  " + "\n  ".join(diffs) + "\nPass the feature flags it was "
                "trained with (its config.json)"
            )
    n_drop = cfg.checkpoint.drop_source_layers
    dropped = dropped_layers(n_drop)
    shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    misfits: Dict[str, List[str]] = {}
    for key, (layer, var) in model_variables(model).items():
        if layer in dropped:
            continue
        name = key.split("/.ATTRIBUTES")[0][len("model/") :]
        if key not in shapes:
            misfits.setdefault(layer, []).append(f"{name} missing in the source")
        elif list(shapes[key]) != var.shape.as_list():
            misfits.setdefault(layer, []).append(
                f"{name}: source {list(shapes[key])}, this model {var.shape.as_list()}"
            )
    if misfits:
        raise TransferError(_misfit_message(path, misfits, n_drop))
    reader = tf.train.load_checkpoint(path)
    for key, (layer, var) in model_variables(model).items():
        if layer not in dropped:
            var.assign(reader.get_tensor(key))
    loaded = [layer for layer in LAYERS if layer not in dropped]
    return loaded, list(dropped)


def _misfit_message(path: str, misfits: Dict[str, List[str]], n_drop: int) -> str:
    lines = [f"{path}: these layers do not fit this model and are not dropped:"]
    for layer, problems in misfits.items():
        lines += [f"  {layer}: {p}" for p in problems]
    first = min(LAYERS.index(layer) for layer in misfits)
    needed = len(LAYERS) - first
    if needed <= 5:
        lines.append(
            f"--drop_source_layers {n_drop} re-initialises "
            f"{', '.join(dropped_layers(n_drop)) or 'no layer'}; pass "
            f"--drop_source_layers {needed} to re-initialise "
            f"{', '.join(dropped_layers(needed))} (a new alphabet needs 1: layer_6)"
        )
    else:
        lines.append(
            "layer_1 is always loaded: use the source's --n_hidden/--bidirectional "
            "(its config.json), or train from scratch"
        )
    return "\n".join(lines)


def start(
    checkpoints: Checkpoints,
    model: DeepSpeechModel,
    cfg,
    optimizer: Optional[Adam] = None,
    state=None,
) -> Optional[str]:
    """Begin (or resume) a run that starts from another directory's model; returns
    the source checkpoint, None on resume.

    The new run saves to ``--save_checkpoint_dir``; once it holds a checkpoint a rerun
    resumes from there. ``optimizer`` and ``state`` (TrainingState) receive a DeepSpeech
    0.9 checkpoint's Adam moments and counters when it is continued as is.
    """
    check_target(cfg)
    ckpt = cfg.checkpoint
    load_dir, save_dir = ckpt.load_checkpoint_dir, ckpt.save_checkpoint_dir
    if tf.train.latest_checkpoint(save_dir) or tf.train.latest_checkpoint(
        os.path.join(save_dir, BEST_DIR)
    ):
        own = dataclasses.replace(ckpt, load_checkpoint_dir=save_dir)
        Checkpoints(
            own, checkpoints.checkpoint, checkpoints.config, checkpoints.alphabet
        ).restore_for_training()
        logging.info("transfer: continuing the new model in %s", save_dir)
        return None
    if ds09_checkpoint.is_ds09_dir(load_dir):
        path = _start_from_ds09(model, cfg, optimizer, state)
    else:
        path = source_checkpoint(load_dir, ckpt.load_train)
        loaded, dropped = load_source(model, cfg, path)
        logging.info("transfer: loaded %s from %s", ", ".join(loaded), path)
        _log_dropped(dropped, ckpt.drop_source_layers)
    frozen = frozen_layers(ckpt.freeze_source_layers)
    if frozen:
        logging.info(
            "transfer: frozen %s (--freeze_source_layers %d)",
            ", ".join(frozen),
            ckpt.freeze_source_layers,
        )
    return path


def _log_dropped(dropped, n_drop: int) -> None:
    logging.info(
        "transfer: re-initialised %s (--drop_source_layers %d)",
        ", ".join(dropped) or "no layer",
        n_drop,
    )


def _start_from_ds09(model, cfg, optimizer, state) -> Optional[str]:
    """Load a DeepSpeech 0.9 checkpoint: all of it when continued as is (weights, Adam
    moments, step count, learning rate), the weights but the dropped layers' for a
    transfer run (fresh optimizer, as for our own sources)."""
    ckpt = cfg.checkpoint
    if ckpt.load_train == "init":
        logging.info(
            "--load_train init: not loading the DeepSpeech 0.9 checkpoint in %s",
            ckpt.load_checkpoint_dir,
        )
        return None
    kind, path = ds09_checkpoint.choose(ckpt.load_checkpoint_dir, ckpt.load_train)
    dropped = dropped_layers(ckpt.drop_source_layers)
    continuing = not is_transfer(cfg)
    report = ds09_checkpoint.load(
        path,
        model,
        optimizer if continuing else None,
        dropped,
        ckpt.drop_source_layers,
    )
    if continuing and state is not None and report.global_step is not None:
        state.global_step.assign(report.global_step)
    ds09_checkpoint.log_report(report)
    loaded = [layer for layer in LAYERS if layer in report.layers]
    logging.info(
        "DeepSpeech 0.9 %s checkpoint %s: loaded %s%s",
        kind,
        path,
        ", ".join(loaded),
        (
            f"; Adam moments, global_step {report.global_step} and learning rate "
            f"{report.learning_rate} continue"
            if continuing
            else "; fresh optimizer (transfer run)"
        ),
    )
    if dropped or is_transfer(cfg):
        _log_dropped(dropped, ckpt.drop_source_layers)
    return path
