"""Read DeepSpeech 0.9's TF1 checkpoints into this project's model (and optimizer).

A DeepSpeech 0.9.x checkpoint directory (the release's ``deepspeech-0.9.3-checkpoint/``
or a user's ``--checkpoint_dir``) is what 0.9's ``train()`` writes with two
``tf.compat.v1.train.Saver`` s (0.9.3 ``training/deepspeech_training/train.py``)::

    checkpoint             state file of the 'last' saver: prefixes train-<global_step>
    best_dev_checkpoint    state file of the best-dev saver (latest_filename=
                           'best_dev_checkpoint'): prefixes best_dev-<global_step>
    train-N.{index,data-*,meta}, best_dev-N.{index,data-*,meta}, flags.txt

0.9's ``util/checkpoints.py`` loads 'best' (state file ``best_dev_checkpoint``), then
'last' (state file ``checkpoint``) for ``--load_train auto``; so do we. The Saver wrote
absolute paths into the state files unless told otherwise; a directory moved since
(every downloaded release) is read by the prefix's base name inside the directory.

Variables (0.9.3 train.py ``create_model``; name -> shape, float32):

* ``layer_{1,2,3,5,6}/weights [in, out]`` and ``/bias [out]`` (``dense()``:
  ``variable_scope(name)``, ``get_variable('weights'|'bias')``); layer_1's input is the
  ``2 n_context + 1`` MFCC window flattened frame-major (``create_overlapping_windows``:
  an identity conv1d filter reshaped ``[window, n_input, window * n_input]``), i.e.
  row ``w * n_input + c`` - exactly our layer_1 kernel ``[window, n_input, n_hidden]``
  flattened; with ``--layer_norm`` also ``layer_N/LayerNorm/{gamma,beta}``
  (``tf.contrib.layers.layer_norm`` inside the same scope; it adds 1e-12 to the
  variance where util/model.py adds 1e-6, which only matters for rows of nearly
  constant activations).
* The LSTM, ``rnn_impl_lstmblockfusedcell``: scope ``cudnn_lstm/rnn/multi_rnn_cell/
  cell_0``, ``tf.contrib.rnn.LSTMBlockFusedCell(n_cell_dim, forget_bias=0,
  name='cudnn_compatible_lstm_cell')``, i.e. ``LSTM_SCOPE/kernel [n_input + n_cell,
  4 n_cell]`` and ``LSTM_SCOPE/bias [4 n_cell]`` (TF 1.15
  ``contrib/rnn/python/ops/lstm_ops.py``, ``LSTMBlockFusedCell.build``). The op it runs
  (``BlockLSTM``; same docstring in ``_lstm_block_cell``): ``xh = [x, h_prev];
  [i, ci, f, o] = xh * w + b; f = f + forget_bias``; no peephole, no cell clip
  (``cell_clip`` None -> -1); gate layout ``ICFO`` in TF's ``kernels/rnn/lstm_ops.h``.
  So: input rows first, then the recurrent rows; gate blocks i, c~, f, o - our
  ``util/lstm.py`` order i, j, f, o - and no forget bias added at run time (0.9 passed
  ``forget_bias=0``; ours adds none either). The mapping is therefore a row split:
  ``kernel[:n_input]`` -> our ``kernel``, ``kernel[n_input:]`` -> ``recurrent_kernel``,
  ``bias`` -> ``bias``, no reordering.
* ``--train_cudnn`` checkpoints (``rnn_impl_cudnn_rnn``:
  ``tf.contrib.cudnn_rnn.CudnnLSTM(num_layers=1, ..., direction='unidirectional')``)
  hold the flat parameter buffer ``cudnn_lstm/opaque_kernel`` *and*, written by the
  layer's ``CudnnLSTMSaveable`` in the "canonical" format the non-cuDNN cell reads,
  ``cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/{kernel,bias}``
  (TF 1.15 ``contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py``:
  ``_tf_canonical_name_prefix`` = ``rnn/multi_rnn_cell/cell_%d/<cell name>`` under the
  layer's scope ``cudnn_lstm``; ``CudnnParamsFormatConverterLSTM`` turns cuDNN's i, f,
  c~, o blocks into "icfo" and saves ``bW + bR`` as the one bias). Those are the very
  names and layout of the non-cuDNN path, which is why 0.9 picked that scope. 0.9's
  ``--load_cudnn`` loaded them into the CPU graph and re-initialised what was missing,
  insisting that only Adam moments were (the LSTM's moments exist only as
  ``cudnn_lstm/opaque_kernel/Adam*``). We do the same, whatever ``--load_cudnn`` says:
  the canonical weights are read, the opaque buffer and its moments are ignored, and
  the LSTM's Adam moments start at zero (logged).

Optimizer and counters (``tfv1.train.AdamOptimizer``, ``get_or_create_global_step``,
``get_variable('learning_rate')``): ``<var>/Adam`` (first moment m), ``<var>/Adam_1``
(second moment v), ``beta1_power``, ``beta2_power``, ``global_step`` (int64),
``learning_rate``. Our ``util/optimizer.Adam`` is TF1's AdamOptimizer update, so a
continuation (nothing dropped or frozen) loads m and v (split like their variables),
sets the step count from ``global_step`` (0.9's optimizer incremented it with every
applied update, as ``beta1_power = beta1^(global_step + 1)``, so the bias correction
continues where it was; the beta powers themselves are then redundant and ignored) and
the learning rate (``--force_initialize_learning_rate`` overrides it, as in 0.9). A
transfer run (``--drop_source_layers``/``--freeze_source_layers``) starts a fresh
optimizer, as this project's transfer learning always does (util/transfer.py). Every
variable is logged as loaded, re-initialised or ignored.
"""

import dataclasses
import glob
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from util.model import LAYERS, DeepSpeechModel, trainable_variables
from util.optimizer import Adam

LAST_STATE = "checkpoint"  # the 'last' Saver's state file (0.9: train-N)
BEST_STATE = "best_dev_checkpoint"  # 0.9's best-dev state file (best_dev-N)
LSTM_SCOPE = "cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell"
OPAQUE = "cudnn_lstm/opaque_kernel"  # the --train_cudnn flat buffer (ignored)
MARKER = "layer_1/weights"  # a TF1 name-based checkpoint of DeepSpeech's graph
SLOTS = ("Adam", "Adam_1")  # TF1 AdamOptimizer: m, v
COUNTERS = ("global_step", "learning_rate", "beta1_power", "beta2_power")


class DS09CheckpointError(ValueError):
    """A DeepSpeech 0.9 checkpoint does not fit this model (names variables, flags)."""


@dataclasses.dataclass
class LoadReport:
    """What happened to every variable (0.9 names for the checkpoint side)."""

    path: str
    loaded: List[str]
    reinitialised: List[str]
    ignored: List[str]
    layers: List[str] = dataclasses.field(default_factory=list)  # ours, loaded
    global_step: Optional[int] = None
    learning_rate: Optional[float] = None


def is_ds09_dir(directory: str) -> bool:
    """Whether ``directory`` holds a DeepSpeech 0.9 checkpoint (and none of ours).

    Our own directories always carry config.json (util/checkpoints.py); 0.9's never do.
    """
    if not directory or os.path.exists(os.path.join(directory, "config.json")):
        return False
    return bool(listed(directory, "best") or listed(directory, "last"))


def listed(directory: str, kind: str) -> List[str]:
    """0.9 checkpoint prefixes of ``kind`` ('best' or 'last') in ``directory``, newest
    last: those its state file lists (by base name inside ``directory``, else as
    listed), else (no state file) any ``best_dev-N``/``train-N`` present."""
    state_file = BEST_STATE if kind == "best" else LAST_STATE
    stem = "best_dev" if kind == "best" else "train"
    paths: List[str] = []
    try:
        state = tf.train.get_checkpoint_state(directory, state_file)
    except (tf.errors.OpError, ValueError):  # unparsable: fall back to the files
        state = None
    if state is not None:
        names = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        for name in names:
            # The directory's own copy first: the listed path may be an older
            # location of the same directory (0.9's Saver wrote absolute paths).
            for path in (os.path.join(directory, os.path.basename(name)), name):
                if os.path.exists(path + ".index") and path not in paths:
                    paths.append(path)
                    break
    if not paths:
        pattern = os.path.join(glob.escape(directory), f"{stem}-*.index")
        paths = sorted((p[: -len(".index")] for p in glob.glob(pattern)), key=_step)
    return [p for p in paths if _is_ds09(p)]


def choose(directory: str, load_train: str) -> Tuple[str, str]:
    """(kind, prefix) to load per ``--load_train`` (auto: best, then last, as 0.9)."""
    order = {"auto": ("best", "last"), "best": ("best",), "last": ("last",)}
    for kind in order.get(load_train, ()):
        paths = listed(directory, kind)
        if paths:
            return kind, paths[-1]
    raise FileNotFoundError(
        f"--load_checkpoint_dir {directory}: no DeepSpeech 0.9 checkpoint for "
        f"--load_train {load_train} (0.9 lists 'best' in {BEST_STATE}, 'last' in "
        f"{LAST_STATE}); use --load_train auto"
    )


def _is_ds09(prefix: str) -> bool:
    try:
        return MARKER in tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError):
        return False


def _step(prefix: str) -> int:
    try:
        return int(prefix.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


# One of our variables, where its value comes from in 0.9's checkpoint, and how.
_Source = Tuple[str, tf.Variable, str, Callable[[np.ndarray], np.ndarray]]


def sources(model: DeepSpeechModel) -> List[_Source]:
    """(layer, our variable, 0.9 variable name, 0.9 value -> ours) for every weight."""
    if model.n_directions != 1:
        raise DS09CheckpointError(
            "DeepSpeech 0.9's model has a forward-only LSTM: pass "
            "--bidirectional=false to load its checkpoint (this model is bidirectional)"
        )
    whole = _identity
    out: List[_Source] = []
    for n in (1, 2, 3, 5, 6):
        dense = getattr(model, f"layer_{n}")
        out += [
            (f"layer_{n}", dense.weights, f"layer_{n}/weights", whole),
            (f"layer_{n}", dense.bias, f"layer_{n}/bias", whole),
        ]
        if n in model.norms:
            norm = model.norms[n]
            out += [
                (f"layer_{n}", norm.gamma, f"layer_{n}/LayerNorm/gamma", whole),
                (f"layer_{n}", norm.beta, f"layer_{n}/LayerNorm/beta", whole),
            ]
    cell = model.lstm[0]
    n_in = cell.kernel.shape[0]
    out += [
        ("lstm", cell.kernel, f"{LSTM_SCOPE}/kernel", lambda k: k[:n_in]),
        ("lstm", cell.recurrent_kernel, f"{LSTM_SCOPE}/kernel", lambda k: k[n_in:]),
        ("lstm", cell.bias, f"{LSTM_SCOPE}/bias", whole),
    ]
    return out


def _identity(value: np.ndarray) -> np.ndarray:
    return value


def expected_shapes(model: DeepSpeechModel) -> Dict[str, List[int]]:
    """0.9 variable name -> the shape this model needs it to have."""
    shapes = {name: var.shape.as_list() for _, var, name, _ in sources(model)}
    cell = model.lstm[0]
    n_in, n_gates = cell.kernel.shape
    shapes[f"{LSTM_SCOPE}/kernel"] = [n_in + cell.recurrent_kernel.shape[0], n_gates]
    return shapes


def check_shapes(
    path: str, model: DeepSpeechModel, dropped: Sequence[str], n_drop: int
) -> None:
    """Raise DS09CheckpointError naming every variable that does not fit, both shapes,
    what the checkpoint's shapes say its flags were, and the flag to change."""
    shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    layer_by_name = {name: layer for layer, _, name, _ in sources(model)}
    problems, misfit_layers = [], set()
    for name, want in expected_shapes(model).items():
        layer = layer_by_name[name]
        if layer in dropped:
            continue
        if name not in shapes:
            problems.append(f"  {name}: missing in the checkpoint")
        elif list(shapes[name]) != want:
            problems.append(f"  {name}: checkpoint {list(shapes[name])}, model {want}")
        else:
            continue
        misfit_layers.add(layer)
    if problems:
        raise DS09CheckpointError(
            f"{path} (DeepSpeech 0.9) does not fit this model:\n"
            + "\n".join(problems)
            + "\n"
            + _fix_hint(shapes, model, misfit_layers, n_drop)
        )


def _fix_hint(shapes, model: DeepSpeechModel, misfits, n_drop: int) -> str:
    """The flags that make the model fit, read off the checkpoint's shapes."""
    hints = []
    if "layer_2/weights" in shapes:
        n_hidden = int(shapes["layer_2/weights"][0])
        if n_hidden != model.cfg.n_hidden:
            hints.append(f"--n_hidden {n_hidden} (this run: {model.cfg.n_hidden})")
    if "layer_1/weights" in shapes:
        rows = int(shapes["layer_1/weights"][0])
        if rows != model.layer_1.weights.shape[0]:
            hints.append(
                f"the feature window: layer_1 takes {rows} inputs = (2 * n_context "
                f"+ 1) * n_input; this run has {model.layer_1.weights.shape[0]} "
                f"(--n_context {model.cfg.n_context}, {model.n_input} MFCCs); 0.9.3's "
                "release used --n_context 9 with 26 MFCCs"
            )
    if misfits == {"layer_6"} and not hints:
        hints.append(
            "--drop_source_layers 1 with another --save_checkpoint_dir: the output "
            "layer is sized for another alphabet (--alphabet_config_path)"
        )
    elif not hints:
        first = min(LAYERS.index(layer) for layer in misfits)
        hints.append(
            f"--drop_source_layers {len(LAYERS) - first} (now {n_drop}) to "
            "re-initialise the layers that do not fit"
        )
    return "Pass " + "; ".join(hints)


def load(
    path: str,
    model: DeepSpeechModel,
    optimizer: Optional[Adam] = None,
    dropped: Sequence[str] = (),
    n_drop: int = 0,
) -> LoadReport:
    """Assign the 0.9 checkpoint ``path`` to ``model`` but the ``dropped`` layers'.

    optimizer : also load Adam's moments, step count and learning rate (a
        continuation); None leaves a fresh optimizer (a transfer run, or evaluation).
    Raises DS09CheckpointError (shapes, direction) before assigning anything.
    """
    check_shapes(path, model, dropped, n_drop)
    reader = tf.train.load_checkpoint(path)
    names = set(reader.get_variable_to_shape_map())
    used: set = set()
    report = LoadReport(path, [], [], [])
    slots = _slots_by_variable(model, optimizer)
    for layer, var, name, convert in sources(model):
        if layer in dropped:
            report.reinitialised.append(f"{name} ({var.name}, --drop_source_layers)")
            continue
        var.assign(convert(reader.get_tensor(name)))
        used.add(name)
        if layer not in report.layers:
            report.layers.append(layer)
        report.loaded.append(f"{name} -> {var.name}")
        for slot_name, slot_var in zip(SLOTS, slots.get(var.ref(), ())):
            key = f"{name}/{slot_name}"
            if key in names:
                slot_var.assign(convert(reader.get_tensor(key)))
                used.add(key)
                report.loaded.append(f"{key} -> {slot_var.name}")
            else:
                report.reinitialised.append(f"{slot_var.name} (no {key})")
    if optimizer is not None:
        _load_counters(reader, names, optimizer, report, used)
    report.ignored = sorted(names - used)
    return report


def _slots_by_variable(model, optimizer) -> Dict:
    if optimizer is None:
        return {}
    return {
        var.ref(): (m, v)
        for var, m, v in zip(trainable_variables(model), optimizer.m, optimizer.v)
    }


def _load_counters(reader, names, optimizer: Adam, report: LoadReport, used) -> None:
    if "global_step" in names:
        report.global_step = int(reader.get_tensor("global_step"))
        optimizer.iterations.assign(report.global_step)
        used.add("global_step")
        report.loaded.append(f"global_step -> {optimizer.iterations.name}")
    if "learning_rate" in names:
        report.learning_rate = float(reader.get_tensor("learning_rate"))
        optimizer.learning_rate.assign(report.learning_rate)
        used.add("learning_rate")
        report.loaded.append(f"learning_rate -> {optimizer.learning_rate.name}")


def log_report(report: LoadReport) -> None:
    """One summary line per category, then every variable (INFO)."""
    logging.info(
        "DeepSpeech 0.9 checkpoint %s: %d variables loaded, %d re-initialised, %d "
        "ignored",
        report.path,
        len(report.loaded),
        len(report.reinitialised),
        len(report.ignored),
    )
    for label, items in (
        ("loaded", report.loaded),
        ("re-initialised", report.reinitialised),
        ("ignored", report.ignored),
    ):
        for item in items:
            logging.info("  %s: %s", label, item)
