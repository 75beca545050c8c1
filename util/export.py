"""Export: a SavedModel and a self-describing TFLite model, from raw samples to probs.

Every serving function computes features with util/features.py's ``compute_features``
- the same function the training pipeline maps over its dataset - so the client never
re-implements the front end. Exports are self-describing (DeepSpeech#1328 was a client
given the wrong alphabet by hand): ``metadata.json`` beside the SavedModel, and inside
the ``.tflite`` file a ``metadata`` signature returning the same JSON (see
doc/EXPORT.rst).

TFLite signatures of ``<export_dir>/<export_file_name>.tflite``:

* ``probabilities``: ``samples`` int16 ``[n]`` -> ``probs`` float32 ``[T', C]``,
  ``probs_len`` int32 ``[]`` (whole utterance; both directions). ``T' = T`` for
  DeepSpeech, ``ceil(T / 4)`` for DeepSpeech2 (metadata ``time_stride``);
* ``features``: ``samples`` int16 ``[n]`` -> ``features`` float32 ``[T, n_input]``
  (the streaming client's front end; frames depend only on their own window, so
  features of consecutive audio chunks concatenate to those of the whole). The first
  ``feature_history_samples`` samples (metadata; 1 for fbank's pre-emphasis, else 0)
  are the audio before the chunk, read for context only;
* ``stream`` (unidirectional DeepSpeech models on features without per-utterance
  normalisation; metadata ``streaming``): ``features`` float32
  ``[m, n_mfcc]`` with ``m >= 2 * n_context + 1``, ``state_h``/``state_c`` float32
  ``[n_hidden]`` -> ``probs`` ``[m - 2 * n_context, C]`` and the new state. Row ``i``
  of ``probs`` is frame ``i + n_context`` of the chunk: the stream lags ``n_context``
  frames (180 ms) behind the audio, the look-ahead of layer 1;
* ``chunk_backward`` and ``chunk_forward`` (bidirectional models only): the whole
  utterance in fixed-size chunks, which is how the client runs a long file (the
  ``probabilities`` loop costs O(T^2) in TFLite: it lowers the TensorArray of the
  LSTM outputs to a slice + concatenation of all of it per step).
  ``chunk_backward``: ``features`` ``[m, n_mfcc]`` (``m >= 2 * n_context + 1``) and
  the backward LSTM's ``state_h``/``state_c`` -> ``hs`` ``[m - 2 * n_context,
  n_hidden]`` (the backward direction's outputs, in time order) and the state before
  the chunk; run over the chunks from the last to the first, starting from zeros.
  ``chunk_forward``: the same ``features``, that chunk's ``hs_bw`` and the forward
  state -> ``probs`` ``[m - 2 * n_context, C]`` and the new state; run first to
  last. Row ``i`` is frame ``i + n_context`` of the chunk, as for ``stream``;
* ``ds2_stream`` (unidirectional DeepSpeech2 models on features without
  per-utterance normalisation; metadata ``streaming``): ``features`` float32
  ``[4 n, n_input]`` (the next frames), the carried state ``context_1``,
  ``context_2`` and ``state`` (shapes in metadata ``stream_state``, zeros at the
  start), ``first_output`` int32 ``[]`` (frames fed before / 4 - 10) and
  ``utterance_frames`` int32 ``[]`` (the utterance's frames at its end, else 2^30) ->
  ``probs`` ``[n - max(0, -first_output), C]`` and the new state (util/model_ds2.py
  ``stream``). An output frame waits for 40 feature frames of look-ahead (400 ms at
  a 10 ms step: metadata ``stream_lag_frames``); at the end the client feeds zero
  frames up to the last output's look-ahead, as the convolutions' padding;
* ``metadata``: no input -> ``metadata`` tf.string ``[]``, the JSON of
  :func:`metadata`.

All ops are TFLite builtins plus, for mfcc features, the ``AudioSpectrogram``/``Mfcc``
custom ops that ``ai-edge-litert`` ships: no Flex ops, no TensorFlow needed to run the
model. DeepSpeech2's batch normalisation is folded: the one before each recurrent
layer and before the output layer into the following matrix, the convolutions' into
one per-channel multiply-add (a ReLU6 sits between them and the kernel).

A bidirectional DeepSpeech2, or one on per-utterance normalised features, does not
stream (metadata ``streaming`` false): a client runs ``probabilities`` over the whole
utterance (doc/USING.rst).
"""

import dataclasses
import datetime
import json
import os
import shutil
from typing import Any, Dict, List, Optional

import tensorflow as tf
from absl import logging

from ctcdecode import Alphabet, UTF8Alphabet
from ctcdecode.fileio import atomic_path, atomic_write_text, temporary_name
from util.config import Config, ExportConfig
from util.features import compute_features
from util.lstm import lstm_inference
from util.model_ds2 import stream_state_shapes
from util.models import AcousticModel

EXPORT_FORMAT_VERSION = 2  # 2: TFLite signatures + embedded metadata
METADATA_FILE = "metadata.json"
INT16_SCALE = 32768.0  # int16 PCM -> [-1, 1), as TF's decode_wav
TFLITE_SUFFIX = ".tflite"


class _Serving(tf.Module):
    """The serving functions of one model; see the module docstring for signatures."""

    def __init__(self, model: AcousticModel, cfg: Config, meta_json: str = "") -> None:
        super().__init__(name="serving")
        self.model = model
        self._features = cfg.features
        self._meta_json = meta_json

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int16, name="samples")])
    def probabilities(self, samples: tf.Tensor) -> Dict[str, tf.Tensor]:
        """samples : int16 [n], mono at the model rate -> probs float32 [T, C]."""
        features, features_len = self._features_of(samples)
        logits = self.model(
            features[tf.newaxis], features_len[tf.newaxis], training=False
        )
        probs_len = self.model.cfg.output_frames(features_len)
        return {"probs": tf.nn.softmax(logits)[0], "probs_len": probs_len}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int16, name="samples")])
    def features(self, samples: tf.Tensor) -> Dict[str, tf.Tensor]:
        """samples : int16 [h + n] -> features float32 [cfg.n_frames(n), n_input]
        (h = ``cfg.history_samples``: context before the chunk)."""
        h = self._features.history_samples
        history = tf.cast(samples[:h], tf.float32) / INT16_SCALE
        features, _ = self._features_of(samples[h:], history)
        return {"features": features}

    @tf.function(input_signature=[])
    def metadata(self) -> Dict[str, tf.Tensor]:
        """The export's metadata JSON as a scalar tf.string."""
        return {"metadata": tf.constant(self._meta_json)}

    def _features_of(self, samples: tf.Tensor, history=None):
        audio = tf.cast(samples, tf.float32) / INT16_SCALE
        return compute_features(audio, self._features, history)

    def stream_function(self) -> tf.types.experimental.ConcreteFunction:
        """The ``stream`` signature's concrete function (unidirectional models)."""
        n_hidden = self.model.cfg.n_hidden
        specs = [
            tf.TensorSpec([None, self.model.n_input], tf.float32, name="features"),
            tf.TensorSpec([n_hidden], tf.float32, name="state_h"),
            tf.TensorSpec([n_hidden], tf.float32, name="state_c"),
        ]
        return tf.function(self.stream, input_signature=specs).get_concrete_function()

    def stream(self, features, state_h, state_c) -> Dict[str, tf.Tensor]:
        """features float32 [m, n_mfcc] (m >= 2 n_context + 1), state [H] each."""
        x = self.model.feed_forward_front(features[tf.newaxis], padding="VALID")[0]
        hs, h, c = self._lstm(0, x, state_h, state_c)
        logits = self.model.feed_forward_back(hs)
        return {"probs": tf.nn.softmax(logits), "state_h": h, "state_c": c}

    def _lstm(self, direction: int, x, state_h, state_c):
        """One LSTM direction over x [t, H] from the state; hs [t, H], h, c [H].

        util/lstm's inference loop with [T, D=1, B=1, ...] axes and carried state.
        """
        projected = self.model.lstm[direction].project(x)  # [t, 4H]
        hs, h, c = lstm_inference(
            projected[:, tf.newaxis, tf.newaxis],
            self.model.lstm[direction].recurrent_kernel[tf.newaxis],
            state_h[tf.newaxis, tf.newaxis],
            state_c[tf.newaxis, tf.newaxis],
        )
        return hs[:, 0, 0], h[0, 0], c[0, 0]

    def ds2_stream_function(self) -> tf.types.experimental.ConcreteFunction:
        """The ``ds2_stream`` signature's concrete function (unidirectional DS2)."""
        shapes = self.model.stream_state_shapes()
        specs = [
            tf.TensorSpec([None, self.model.n_input], tf.float32, name="features"),
            *(
                tf.TensorSpec(shape, tf.float32, name=name)
                for name, shape in shapes.items()
            ),
            tf.TensorSpec([], tf.int32, name="first_output"),
            tf.TensorSpec([], tf.int32, name="utterance_frames"),
        ]
        return tf.function(
            self.ds2_stream, input_signature=specs
        ).get_concrete_function()

    def ds2_stream(
        self, features, context_1, context_2, state, first_output, utterance_frames
    ) -> Dict[str, tf.Tensor]:
        """One step of util/model_ds2.py ``stream`` (module docstring)."""
        logits, contexts, state = self.model.stream(
            features, [context_1, context_2], state, first_output, utterance_frames
        )
        return {
            "probs": tf.nn.softmax(logits),
            "context_1": contexts[0],
            "context_2": contexts[1],
            "state": state,
        }

    def chunk_functions(self) -> List[tf.types.experimental.ConcreteFunction]:
        """``chunk_backward`` and ``chunk_forward`` (bidirectional models)."""
        n_hidden = self.model.cfg.n_hidden
        features = tf.TensorSpec([None, self.model.n_input], tf.float32, "features")
        state = [
            tf.TensorSpec([n_hidden], tf.float32, name="state_h"),
            tf.TensorSpec([n_hidden], tf.float32, name="state_c"),
        ]
        hs_bw = tf.TensorSpec([None, n_hidden], tf.float32, name="hs_bw")
        return [
            tf.function(self.chunk_backward, input_signature=[features, *state])
            .get_concrete_function(),
            tf.function(self.chunk_forward, input_signature=[features, hs_bw, *state])
            .get_concrete_function(),
        ]  # fmt: skip

    def chunk_backward(self, features, state_h, state_c) -> Dict[str, tf.Tensor]:
        """The backward LSTM over one chunk, last frame first (module docstring)."""
        x = self.model.feed_forward_front(features[tf.newaxis], padding="VALID")[0]
        hs, h, c = self._lstm(1, tf.reverse(x, [0]), state_h, state_c)
        return {"hs": tf.reverse(hs, [0]), "state_h": h, "state_c": c}

    def chunk_forward(self, features, hs_bw, state_h, state_c) -> Dict[str, tf.Tensor]:
        """The forward LSTM over one chunk and layers 5-6 (module docstring)."""
        x = self.model.feed_forward_front(features[tf.newaxis], padding="VALID")[0]
        hs, h, c = self._lstm(0, x, state_h, state_c)
        logits = self.model.feed_forward_back(tf.concat([hs, hs_bw], axis=-1))
        return {"probs": tf.nn.softmax(logits), "state_h": h, "state_c": c}


def metadata(cfg: Config, alphabet: Alphabet) -> Dict[str, Any]:
    """Everything a client needs to feed the model and read its output."""
    exp = cfg.export
    meta = _metadata(cfg, alphabet, exp)
    if can_stream(cfg) and cfg.model.model == "deepspeech2":
        meta["stream_state"] = stream_state_shapes(cfg.model, cfg.features.n_input)
    return meta


def _metadata(cfg: Config, alphabet: Alphabet, exp: ExportConfig) -> Dict[str, Any]:
    bytes_mode = isinstance(alphabet, UTF8Alphabet)
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "sample_rate": cfg.features.audio_sample_rate,
        "features": dataclasses.asdict(cfg.features),
        "model": dataclasses.asdict(cfg.model),
        # Bytes output mode lists no symbols: a client that does not know the mode
        # refuses the model instead of reading bytes as Latin-1 characters.
        "bytes_output_mode": bytes_mode,
        "alphabet": [] if bytes_mode else list(alphabet.symbols),
        "alphabet_sha256": alphabet.sha256(),
        "n_classes": alphabet.n_classes,
        "blank_index": alphabet.blank_index,
        "input": {"name": "samples", "dtype": "int16", "shape": [None]},
        "output": {
            "name": "probs",
            "dtype": "float32",
            "shape": [None, alphabet.n_classes],
        },
        "streaming": can_stream(cfg),
        # feature frames an output frame waits for (DeepSpeech: n_context; DS2: 40)
        "stream_lag_frames": cfg.model.lookahead_frames,
        "time_stride": cfg.model.time_stride,
        "n_input": cfg.features.n_input,
        "feature_history_samples": cfg.features.history_samples,
        "quantized": exp.export_quantize,
        "beam_width": exp.export_beam_width,
        "language": exp.export_language,
        "author_id": exp.export_author_id,
        "model_name": exp.export_model_name,
        "model_version": exp.export_model_version,
        "license": exp.export_license,
        "description": exp.export_description,
        # DeepSpeech 0.9's export metadata flags and --n_steps (issue 12).
        "contact_info": exp.export_contact_info,
        "min_ds_version": exp.export_min_ds_version,
        "max_ds_version": exp.export_max_ds_version,
        "stream_steps": exp.n_steps,
    }


def model_card_path(exp: ExportConfig) -> str:
    """``<export_dir>/<author>_<model name>_<version>.md`` (DeepSpeech 0.9's name)."""
    name = f"{exp.export_author_id}_{exp.export_model_name}_{exp.export_model_version}"
    return os.path.join(exp.export_dir or "", name + ".md")


def write_model_card(exp: ExportConfig) -> str:
    """The metadata file DeepSpeech 0.9 wrote beside an export, for model catalogues:
    YAML front matter (author, name, version, contact, licence, language, runtime,
    client versions, URLs to fill in) and the description. Returns its path."""
    placeholder = "<replace this with {}>"
    fields = [
        ("author", exp.export_author_id),
        ("model_name", exp.export_model_name),
        ("model_version", exp.export_model_version),
        ("contact_info", exp.export_contact_info or placeholder.format("a contact")),
        ("license", exp.export_license),
        ("language", exp.export_language or placeholder.format("a BCP 47 tag")),
        ("runtime", "tflite" if exp.export_tflite else "tensorflow"),
        (
            "min_ds_version",
            exp.export_min_ds_version or placeholder.format("a version"),
        ),
        (
            "max_ds_version",
            exp.export_max_ds_version or placeholder.format("a version"),
        ),
        ("acoustic_model_url", placeholder.format("the model's public URL")),
        ("scorer_url", placeholder.format("the scorer's public URL, if any")),
    ]
    body = "---\n" + "".join(f"{k}: {v}\n" for k, v in fields) + "---\n"
    path = model_card_path(exp)
    atomic_write_text(path, body + exp.export_description + "\n")
    logging.info("model metadata written to %s: complete it before publishing", path)
    return path


def package_zip(exp: ExportConfig, scorer_path: Optional[str]) -> str:
    """0.9's --export_zip: the scorer copied into export_dir, zipped as <dir>.zip."""
    export_dir = os.path.abspath(exp.export_dir or "")
    if scorer_path:
        shutil.copy(scorer_path, export_dir)
    archive = shutil.make_archive(export_dir, "zip", export_dir)
    logging.info("exported packaged model %s", archive)
    return archive


def export_outputs(exp: ExportConfig) -> List[str]:
    """Names of the entries of ``export_dir`` an export writes."""
    name = exp.export_file_name
    card = os.path.basename(model_card_path(exp))
    return [name, name + TFLITE_SUFFIX, METADATA_FILE, card]


def can_chunk(cfg: Config) -> bool:
    """Whether the export gets the ``chunk_backward``/``chunk_forward`` signatures: a
    bidirectional DeepSpeech model on features without per-utterance statistics (the
    client computes the features of a long file in pieces)."""
    return (
        cfg.model.model == "deepspeech"
        and cfg.model.bidirectional
        and cfg.features.streamable
    )


def can_stream(cfg: Config) -> bool:
    """Whether the export streams (``stream`` signature for DeepSpeech,
    ``ds2_stream`` for DeepSpeech2): a unidirectional model on features without
    per-utterance statistics."""
    return not cfg.model.bidirectional and cfg.features.streamable


def prepare_export_dir(exp: ExportConfig) -> str:
    """``exp.export_dir``, created; with ``--remove_export`` an earlier export's
    entries (:func:`export_outputs`) are removed first, and nothing else: the
    directory may hold other files (DeepSpeech 0.9 removed it whole)."""
    if not exp.export_dir:
        raise ValueError("--export_dir is empty")
    if exp.remove_export:
        for name in export_outputs(exp):
            path = os.path.join(exp.export_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                logging.info("--remove_export: removing %s", path)
                shutil.rmtree(path)
            elif os.path.lexists(path):
                logging.info("--remove_export: removing %s", path)
                os.remove(path)
    os.makedirs(exp.export_dir, exist_ok=True)
    return exp.export_dir


def export_saved_model(model: AcousticModel, cfg: Config, alphabet: Alphabet) -> str:
    """Write ``<export_dir>/<export_file_name>/`` (SavedModel) and ``metadata.json``.

    Built in a temporary directory and renamed into place, so an interrupted export
    never leaves a half-written model where a client would load it.
    """
    export_dir = cfg.export.export_dir
    if not export_dir:
        raise ValueError("--export_dir is empty")
    os.makedirs(export_dir, exist_ok=True)
    target = os.path.join(export_dir, cfg.export.export_file_name)
    tmp = temporary_name(target)  # a directory: renamed whole, like a file
    serving = _Serving(model, cfg)
    tf.saved_model.save(
        serving, tmp, signatures={"serving_default": serving.probabilities}
    )
    if os.path.exists(target):
        shutil.rmtree(target)
    os.replace(tmp, target)
    _write_metadata_json(cfg, alphabet)
    logging.info("exported SavedModel to %s", target)
    return target


def _write_metadata_json(cfg: Config, alphabet: Alphabet) -> None:
    atomic_write_text(
        os.path.join(cfg.export.export_dir, METADATA_FILE),
        json.dumps(metadata(cfg, alphabet), indent=2, ensure_ascii=False),
    )


def tflite_bytes(model: AcousticModel, cfg: Config, alphabet: Alphabet) -> bytes:
    """The ``.tflite`` flatbuffer with every signature of the module docstring.

    ``cfg.export.export_quantize`` stores weights as int8 (post-training dynamic-range
    quantisation: activations stay float, matmuls dequantise on the fly).
    """
    meta = json.dumps(metadata(cfg, alphabet), ensure_ascii=False, sort_keys=True)
    serving = _Serving(model, cfg, meta)
    functions: List[Any] = [
        serving.probabilities.get_concrete_function(),
        serving.features.get_concrete_function(),
        serving.metadata.get_concrete_function(),
    ]
    if can_chunk(cfg):
        functions += serving.chunk_functions()
    elif can_stream(cfg) and cfg.model.model == "deepspeech2":
        functions.append(serving.ds2_stream_function())
    elif can_stream(cfg):
        functions.append(serving.stream_function())
    elif not cfg.model.bidirectional:
        logging.warning(
            "this unidirectional model is exported without streaming: "
            "--feature_normalization %s needs the whole utterance (train with "
            "--feature_normalization none to stream)",
            cfg.features.feature_normalization,
        )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, serving)
    # mfcc: AudioSpectrogram, Mfcc (shipped by the runtime); spectrogram/fbank: none.
    converter.allow_custom_ops = cfg.features.feature_type == "mfcc"
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if cfg.export.export_quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def export_tflite(model: AcousticModel, cfg: Config, alphabet: Alphabet) -> str:
    """Write ``<export_dir>/<export_file_name>.tflite`` atomically + metadata.json."""
    export_dir = cfg.export.export_dir
    if not export_dir:
        raise ValueError("--export_dir is empty")
    os.makedirs(export_dir, exist_ok=True)
    target = os.path.join(export_dir, cfg.export.export_file_name + TFLITE_SUFFIX)
    blob = tflite_bytes(model, cfg, alphabet)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            out.write(blob)
    _write_metadata_json(cfg, alphabet)
    logging.info("exported TFLite model to %s (%.1f MB)", target, len(blob) / 1e6)
    return target
