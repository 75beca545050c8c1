"""DeepSpeech 0.9's ``Model`` and ``Stream`` API over an exported ``.tflite`` model.

Audio in: int16 mono PCM at :meth:`Model.sampleRate` (the CLI converts files). The
model computes its own features (the exported ``features``/``probabilities``
signatures); nothing is re-implemented here.

Streaming (doc/USING.rst). A unidirectional model streams for real: fed audio becomes
feature frames (``features`` signature) and every :data:`STREAM_STEPS` frames one call
of the ``stream`` signature advances the LSTM state; the new probabilities go straight
into the stream's incremental beam search (ctcdecode ``StreamingDecoder``), so neither
the model nor the decoder revisits old frames and the cost of a fed chunk does not grow
with the stream (DeepSpeech#1757). Output lags ``n_context`` frames (180 ms), the
look-ahead of the first layer; :meth:`Stream.finishStream` and
:meth:`Stream.intermediateDecodeFlushBuffers` pad the end with zero frames, exactly as
the whole-file path does, and the final transcript is the whole-file one. A
unidirectional DeepSpeech2 streams the same way through its ``ds2_stream`` signature
(_ds2_stream.py: the convolutions' edges and every recurrent layer's state carried),
4 feature frames per output frame, lagging 40 feature frames (400 ms) behind the
audio. A bidirectional model needs the whole utterance: its stream buffers audio and
runs the model and the beam search over all of it at every decode. So does a
DeepSpeech model on per-utterance normalised features (metadata ``streaming`` false):
``intermediateDecode`` re-runs the whole buffer, ``finishStream`` decodes it. A
unidirectional DeepSpeech2 on such features cannot stream and ``createStream`` says
so (train it with ``--feature_normalization none``).

Thread safety: a Model may be shared by threads; each Stream belongs to one thread at a
time. Settings (beam width, scorer, alpha/beta, hot words) are read once per ``stt``
call and, for a stream, once at ``createStream`` (as DeepSpeech's native client did).
"""

from __future__ import annotations

import math
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _decoding
from ._ds2_stream import DS2Frames
from ._runtime import TFLiteModel
from .errors import DeepSpeechError
from .metadata import CandidateTranscript, Metadata

STREAM_STEPS = 16  # output frames per ``stream`` call (DeepSpeech's n_steps default)
# Output frames per model call when a whole file is transcribed (Model.probabilities;
# ``stream`` for a unidirectional model, ``chunk_*`` for a bidirectional one). The
# exported LSTM loop costs O(m^2) in the frames m of one call (TFLite lowers its
# TensorArray to a slice + concatenation per step), so the whole-file signature is
# quadratic in the audio length; fixed-size chunks with carried state are linear.
# 32-64 were the fastest sizes measured (n_hidden 256).
WHOLE_FILE_STEPS = 64
FEATURE_CHUNK_FRAMES = 3000  # feature frames computed per call (60 s of audio)


class Model:
    """A loaded exported model (DeepSpeech 0.9: ``deepspeech.Model(model_path)``).

    Args:
        model_path: a ``.tflite`` file written by ``DeepSpeech.py --export_tflite``.
        num_threads: TFLite threads per inference call (None: the runtime's default).
        max_interpreters: most TFLite interpreters kept for threads that run at the
            same time (each holds its own copy of the repacked weights and working
            memory); further threads wait for a free one. None: one per CPU core.

    Raises:
        DeepSpeechError: DS_ERR_NO_MODEL, DS_ERR_FAIL_INTERPRETER,
            DS_ERR_MODEL_INCOMPATIBLE or DS_ERR_INVALID_ALPHABET.
    """

    def __init__(
        self,
        model_path: str,
        num_threads: Optional[int] = None,
        max_interpreters: Optional[int] = None,
    ) -> None:
        self._tflite = TFLiteModel(model_path, num_threads, max_interpreters)
        meta = self._tflite.metadata
        try:
            if meta.get("bytes_output_mode"):  # UTF-8 bytes: no symbols to read
                self._alphabet = _decoding.UTF8Alphabet()
            else:
                self._alphabet = _decoding.Alphabet.from_symbols(meta["alphabet"])
        except (KeyError, ValueError) as err:
            raise DeepSpeechError("DS_ERR_INVALID_ALPHABET", str(err)) from err
        if self._alphabet.n_classes != meta["n_classes"]:
            raise DeepSpeechError(
                "DS_ERR_INVALID_ALPHABET", "alphabet size does not match the model"
            )
        features = meta["features"]
        self._win_len = (
            features["audio_sample_rate"] * features["feature_win_len"] // 1000
        )
        self._win_step = (
            features["audio_sample_rate"] * features["feature_win_step"] // 1000
        )
        # One output frame per time_stride feature frames (DeepSpeech2: 4).
        self._frame_s = (
            features["feature_win_step"] / 1000.0 * meta.get("time_stride", 1)
        )
        # Samples before a chunk its features read (fbank's pre-emphasis: 1).
        self._history = int(meta.get("feature_history_samples", 0))
        self._lock = threading.Lock()
        self._beam_width = int(meta.get("beam_width", 500))
        self._scorer: Optional[_decoding.Scorer] = None
        self._hot_words: Dict[str, float] = {}

    # --- model properties ------------------------------------------------------
    @property
    def metadata(self) -> Dict:
        """The metadata embedded in the model file (util/export.py ``metadata``)."""
        return dict(self._tflite.metadata)

    @property
    def alphabet(self) -> "_decoding.Alphabet":
        return self._alphabet

    @property
    def streams_natively(self) -> bool:
        """True for a unidirectional model with a ``stream`` or ``ds2_stream``
        signature."""
        return self._tflite.has_stream or self._tflite.has_ds2_stream

    def sampleRate(self) -> int:
        """Sample rate (Hz) the model expects."""
        return int(self._tflite.metadata["sample_rate"])

    def beamWidth(self) -> int:
        return self._beam_width

    def setBeamWidth(self, beam_width: int) -> int:
        """Set the beam width; returns 0 (DeepSpeech's DS_ERR_OK)."""
        if int(beam_width) < 1:
            raise DeepSpeechError("DS_ERR_INVALID_SHAPE", "beam width must be >= 1")
        with self._lock:
            self._beam_width = int(beam_width)
        return 0

    # --- scorer and hot words --------------------------------------------------
    def enableExternalScorer(self, scorer_path: str) -> int:
        """Load a ``.scorer`` package built for this model's alphabet; returns 0."""
        import os

        if not os.path.isfile(scorer_path):
            raise DeepSpeechError(
                "DS_ERR_SCORER_UNREADABLE", f"scorer {scorer_path!r} not found"
            )
        try:
            scorer = _decoding.Scorer(None, None, scorer_path, self._alphabet)
            scorer.parts()  # load the LM now, once, not inside concurrent decodes
        except (ValueError, OSError, RuntimeError) as err:
            raise DeepSpeechError("DS_ERR_INVALID_SCORER", str(err)) from err
        with self._lock:
            self._scorer = scorer
        return 0

    def disableExternalScorer(self) -> int:
        with self._lock:
            self._scorer = None
        return 0

    def setScorerAlphaBeta(self, alpha: float, beta: float) -> int:
        """LM weight alpha and word bonus beta (nats); needs an enabled scorer."""
        if not (math.isfinite(alpha) and math.isfinite(beta)):
            raise DeepSpeechError(
                "DS_ERR_INVALID_SCORER",
                f"alpha and beta must be finite numbers, got {alpha!r} and {beta!r}",
            )
        with self._lock:
            if self._scorer is None:
                raise DeepSpeechError("DS_ERR_SCORER_NOT_ENABLED", "no scorer enabled")
            self._scorer.reset_params(alpha, beta)
        return 0

    def configureDecoder(
        self,
        beam_width: Optional[int] = None,
        scorer_path: Optional[str] = None,
        lm_alpha: Optional[float] = None,
        lm_beta: Optional[float] = None,
    ) -> None:
        """Apply command-line decoder options (not in 0.9's API; its CLIs use it).

        ``None``/0 keeps the model's beam width; alpha or beta left ``None`` keep the
        scorer package's default for that one.
        """
        if beam_width:
            self.setBeamWidth(beam_width)
        if scorer_path:
            self.enableExternalScorer(scorer_path)
            if lm_alpha is not None or lm_beta is not None:
                scorer = self._scorer
                self.setScorerAlphaBeta(
                    scorer.alpha if lm_alpha is None else lm_alpha,
                    scorer.beta if lm_beta is None else lm_beta,
                )

    def addHotWord(self, word: str, boost: float) -> int:
        """Add ``boost`` to the LM log probability of ``word`` (negative: penalise)."""
        with self._lock:
            if self._scorer is None:
                raise DeepSpeechError("DS_ERR_SCORER_NOT_ENABLED", "no scorer enabled")
            if not word or " " in word:
                raise DeepSpeechError(
                    "DS_ERR_FAIL_INSERT_HOTWORD", f"hot word {word!r} is not one word"
                )
            self._hot_words[word] = float(boost)
        return 0

    def eraseHotWord(self, word: str) -> int:
        with self._lock:
            if self._hot_words.pop(word, None) is None:
                raise DeepSpeechError(
                    "DS_ERR_FAIL_ERASE_HOTWORD", f"{word!r} is not a hot word"
                )
        return 0

    def clearHotWords(self) -> int:
        with self._lock:
            self._hot_words.clear()
        return 0

    # --- whole-utterance inference -----------------------------------------------
    def stt(self, audio_buffer: np.ndarray) -> str:
        """Transcript of int16 mono audio ``[n]`` at :meth:`sampleRate`."""
        return self.sttWithMetadata(audio_buffer, 1).transcripts[0].text

    def sttWithMetadata(
        self, audio_buffer: np.ndarray, num_results: int = 1
    ) -> Metadata:
        """Up to ``num_results`` candidate transcripts with token and word timings."""
        return self._metadata(self.probabilities(audio_buffer), num_results)

    def probabilities(self, audio_buffer: np.ndarray) -> np.ndarray:
        """Model output for int16 audio [n]: float32 [T, n_classes] (no decoding).

        A unidirectional model runs as a stream internally (:data:`WHOLE_FILE_STEPS`
        frames per call, state carried, zero look-ahead at both ends as the
        whole-file signature pads), so time and memory grow linearly with the audio.
        """
        audio = check_audio(audio_buffer)
        if len(audio) < self._win_len:
            return np.zeros((0, self._alphabet.n_classes), np.float32)
        if self._tflite.has_ds2_stream:
            return self._ds2_streamed_probs(self._whole_features(audio))
        if self.streams_natively:
            return self._streamed_probs(self._whole_features(audio))
        if self._tflite.has_chunks:
            return self._chunked_bidirectional_probs(self._whole_features(audio))
        # an export older than the chunk signatures: cost grows as T^2
        return self._tflite.run("probabilities", samples=audio)["probs"]

    def _chunk_windows(self, features: np.ndarray) -> List[Tuple[int, np.ndarray]]:
        """(first frame, feature window) of each WHOLE_FILE_STEPS-frame chunk.

        Windows reach ``n_context`` frames beyond the chunk on both sides; zero frames
        stand in beyond the ends, as the whole-file signature's padding.
        """
        n_context = int(self._tflite.metadata["model"]["n_context"])
        pad = np.zeros((n_context, features.shape[1]), np.float32)
        frames = np.concatenate([pad, features, pad])
        return [
            (start, frames[start : start + WHOLE_FILE_STEPS + 2 * n_context])
            for start in range(0, len(features), WHOLE_FILE_STEPS)
        ]

    def _zero_state(self) -> Tuple[np.ndarray, np.ndarray]:
        n_hidden = int(self._tflite.metadata["model"]["n_hidden"])
        return (np.zeros(n_hidden, np.float32),) * 2

    def _streamed_probs(self, features: np.ndarray) -> np.ndarray:
        """probs [T, C] of features [T, n_mfcc] of a whole utterance, chunk by chunk."""
        probs = np.empty((len(features), self._alphabet.n_classes), np.float32)
        state = self._zero_state()
        for start, window in self._chunk_windows(features):
            chunk, state = self._stream_step(window, state)
            probs[start : start + len(chunk)] = chunk
        return probs

    def _ds2_streamed_probs(self, features: np.ndarray) -> np.ndarray:
        """probs of a whole utterance's features via ``ds2_stream`` (linear cost)."""
        frames = DS2Frames(self._tflite, WHOLE_FILE_STEPS)
        return np.concatenate([*frames.feed(features), frames.flush()])

    def _chunked_bidirectional_probs(self, features: np.ndarray) -> np.ndarray:
        """As :meth:`_streamed_probs` for a bidirectional model: two passes.

        The backward LSTM runs over the chunks from last to first, keeping its
        outputs (float32 [T, n_hidden]: memory linear in T); then the forward LSTM
        and layers 5-6 run first to last (util/export.py ``chunk_*`` signatures).
        """
        windows = self._chunk_windows(features)
        n_hidden = int(self._tflite.metadata["model"]["n_hidden"])
        hs_bw = np.empty((len(features), n_hidden), np.float32)
        h, c = self._zero_state()
        for start, window in reversed(windows):
            out = self._tflite.run(
                "chunk_backward", features=window, state_h=h, state_c=c
            )
            hs_bw[start : start + len(out["hs"])] = out["hs"]
            h, c = out["state_h"], out["state_c"]
        probs = np.empty((len(features), self._alphabet.n_classes), np.float32)
        h, c = self._zero_state()
        for start, window in windows:
            n = min(WHOLE_FILE_STEPS, len(features) - start)
            out = self._tflite.run(
                "chunk_forward", features=window, hs_bw=hs_bw[start : start + n],
                state_h=h, state_c=c,
            )  # fmt: skip
            probs[start : start + n] = out["probs"]
            h, c = out["state_h"], out["state_c"]
        return probs

    def createStream(self) -> "Stream":
        """A new :class:`Stream`.

        Raises DeepSpeechError DS_ERR_FAIL_CREATE_STREAM for a unidirectional
        DeepSpeech2 model trained on per-utterance normalised features: their
        statistics need the whole utterance, so it cannot stream.
        """
        meta = self._tflite.metadata
        geometry = meta.get("model", {})
        if (
            geometry.get("model") == "deepspeech2"
            and not geometry.get("bidirectional", True)
            and not self.streams_natively
        ):
            norm = meta["features"].get("feature_normalization")
            if norm == "none":  # exported before DeepSpeech2 streamed
                why = "its export has no ds2_stream signature: re-export it with "
                why += "DeepSpeech.py --export_tflite to stream"
            else:
                why = (
                    f"it was trained with --feature_normalization {norm}, whose "
                    "statistics need the whole utterance: train it with "
                    "--feature_normalization none to stream"
                )
            raise DeepSpeechError(
                "DS_ERR_FAIL_CREATE_STREAM",
                f"this unidirectional DeepSpeech2 model cannot stream: {why}, or "
                "transcribe whole utterances with Model.stt",
            )
        return Stream(self)

    def freeModel(self) -> None:
        """Release the idle TFLite interpreters now (DeepSpeech 0.9's name).

        The model stays usable: a later call creates an interpreter again.
        """
        self._tflite.release_idle()

    # --- shared by Stream and the CLI -------------------------------------------
    def _settings(self) -> _decoding.DecoderSettings:
        """The decoder settings now (beam width, scorer, hot words)."""
        with self._lock:
            return _decoding.settings_of(
                self._beam_width, self._scorer, self._hot_words
            )

    def _metadata(self, probs: np.ndarray, num_results: int) -> Metadata:
        candidates = _decoding.decode(
            probs, self._alphabet, self._settings(), _check_num_results(num_results),
            self._frame_s,
        )  # fmt: skip
        return Metadata(tuple(candidates))

    def _results_metadata(
        self, results: Sequence["_decoding.ctcdecode.DecodeResult"]
    ) -> Metadata:
        """Metadata of ctcdecode results (frames -> seconds, words)."""
        return Metadata(
            tuple(_decoding.candidates(results, self._alphabet, self._frame_s))
        )

    def _whole_features(self, audio: np.ndarray) -> np.ndarray:
        """float32 [T, n_mfcc] of all of ``audio``, FEATURE_CHUNK_FRAMES at a time.

        A frame depends only on its own window, so pieces of audio that overlap by
        ``win_len - win_step`` samples give the whole file's frames, while the
        spectrogram's working memory stays that of one piece.
        """
        n_frames = 1 + (len(audio) - self._win_len) // self._win_step
        out = np.empty((n_frames, self._n_mfcc), np.float32)
        # Each piece starts with the features' context (fbank: one sample; silence
        # before the file), as _features expects.
        padded = np.concatenate([np.zeros(self._history, np.int16), audio])
        for first in range(0, n_frames, FEATURE_CHUNK_FRAMES):
            start = first * self._win_step
            stop = start + (FEATURE_CHUNK_FRAMES - 1) * self._win_step + self._win_len
            features, _ = self._features(padded[start : stop + self._history])
            out[first : first + len(features)] = features
        return out

    def _features(self, audio: np.ndarray) -> Tuple[np.ndarray, int]:
        """Feature frames of the complete windows in ``audio``, and samples consumed.

        ``audio`` starts with ``self._history`` samples of context (the stream keeps
        them). returns : float32 [k, n_input] and ``k * win_step``: where the
        unconsumed audio, with its context, starts.
        """
        if len(audio) - self._history < self._win_len:
            return np.zeros((0, self._n_mfcc), np.float32), 0
        n = 1 + (len(audio) - self._history - self._win_len) // self._win_step
        used = self._history + (n - 1) * self._win_step + self._win_len
        features = self._tflite.run("features", samples=audio[:used])["features"]
        return features, n * self._win_step

    @property
    def _n_mfcc(self) -> int:
        """Values per feature frame (metadata ``n_input``; older exports: n_mfcc)."""
        meta = self._tflite.metadata
        return int(meta.get("n_input", meta["features"]["n_mfcc"]))

    def _stream_step(
        self, frames: np.ndarray, state: Tuple[np.ndarray, np.ndarray]
    ) -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """features [m >= 2 n_context + 1, n_mfcc] -> probs [m - 2 n_context, C]."""
        out = self._tflite.run(
            "stream", features=frames, state_h=state[0], state_c=state[1]
        )
        return out["probs"], (out["state_h"], out["state_c"])


def _check_num_results(num_results: int) -> int:
    if int(num_results) < 1:
        raise DeepSpeechError("DS_ERR_INVALID_SHAPE", "num_results must be >= 1")
    return int(num_results)


def check_audio(audio_buffer: np.ndarray) -> np.ndarray:
    """int16 [n], C-contiguous; DS_ERR_INVALID_SHAPE for anything else."""
    audio = np.asarray(audio_buffer)
    if audio.dtype != np.int16 or audio.ndim != 1:
        raise DeepSpeechError(
            "DS_ERR_INVALID_SHAPE",
            f"audio must be mono int16 samples [n], got {audio.dtype} {audio.shape} "
            "(convert with deepspeech.audio.read_audio or (x * 32767).astype(int16))",
        )
    return np.ascontiguousarray(audio)


class Stream:
    """A streaming inference (DeepSpeech 0.9: ``Model.createStream()``).

    Feed int16 audio with :meth:`feedAudioContent`, read partial results with
    :meth:`intermediateDecode` and end with :meth:`finishStream` (or
    :meth:`freeStream` to drop it). See the module docstring for latency and cost.
    """

    def __init__(self, model: Model) -> None:
        self._model = model
        self._open = True
        # Not yet turned into frames, after the features' context (zeros at first).
        self._samples = np.zeros(model._history, np.int16)
        self._probs: List[np.ndarray] = []  # kept for intermediateDecodeFlushBuffers
        self._settings = model._settings()
        # The export's --n_steps (DeepSpeech 0.9's flag); older exports: 16.
        steps = int(model.metadata.get("stream_steps", STREAM_STEPS))
        self._ds2: Optional[DS2Frames] = None
        if model._tflite.has_ds2_stream:
            self._ds2 = DS2Frames(model._tflite, steps)
            self._decoder = _decoding.streaming_decoder(model.alphabet, self._settings)
        elif model.streams_natively:
            n_context = int(model.metadata["model"]["n_context"])
            n_hidden = int(model.metadata["model"]["n_hidden"])
            self._n_context = n_context
            self._steps = steps
            self._frames = np.zeros((n_context, model._n_mfcc), np.float32)
            self._state = (np.zeros(n_hidden, np.float32),) * 2
            self._decoder = _decoding.streaming_decoder(model.alphabet, self._settings)
        else:
            self._buffered: List[np.ndarray] = []

    def _check_open(self) -> None:
        if not self._open:
            raise DeepSpeechError(
                "DS_ERR_FAIL_CREATE_STREAM",
                "the stream is finished or freed; create a new one with createStream()",
            )

    def feedAudioContent(self, audio_buffer: np.ndarray) -> None:
        """Feed int16 mono audio [n] at the model's sample rate.

        A unidirectional model runs on the new complete 16-frame steps (DeepSpeech2:
        16 output frames of 4 feature frames) and their probabilities are
        beam-searched at once; a bidirectional one just buffers.
        """
        self._check_open()
        audio = check_audio(audio_buffer)
        if not self._model.streams_natively:
            self._buffered.append(audio.copy())
            return
        samples = np.concatenate([self._samples, audio])
        frames, used = self._model._features(samples)
        self._samples = samples[used:]
        if self._ds2 is not None:
            for probs in self._ds2.feed(frames):
                self._probs.append(probs)
                self._decoder.feed(probs)
            return
        self._frames = np.concatenate([self._frames, frames])
        chunk = self._steps + 2 * self._n_context
        while len(self._frames) >= chunk:
            probs, self._state = self._model._stream_step(
                self._frames[:chunk], self._state
            )
            self._probs.append(probs)
            self._decoder.feed(probs)
            self._frames = self._frames[self._steps :]

    def _flush_probs(self) -> np.ndarray:
        """Probabilities of the frames waiting for look-ahead, zero-padded.

        Runs on a copy of the state: the stream itself is not advanced.
        """
        if self._ds2 is not None:
            return self._ds2.flush()
        pad = np.zeros((self._n_context, self._frames.shape[1]), np.float32)
        frames = np.concatenate([self._frames, pad])
        if len(frames) <= 2 * self._n_context:
            return np.zeros((0, self._model.alphabet.n_classes), np.float32)
        return self._model._stream_step(frames, self._state)[0]

    def _all_probs(self, flush: bool) -> np.ndarray:
        """Probabilities so far; ``flush``: also of the frames waiting for context."""
        if not self._model.streams_natively:
            audio = np.concatenate([np.zeros(0, np.int16), *self._buffered])
            return self._model.probabilities(audio)
        parts = list(self._probs) + ([self._flush_probs()] if flush else [])
        if not parts:
            return np.zeros((0, self._model.alphabet.n_classes), np.float32)
        return np.concatenate(parts)

    def _whole(self, flush: bool, num_results: int) -> Metadata:
        """Beam search over all probabilities so far (bidirectional models, flush)."""
        candidates = _decoding.decode(
            self._all_probs(flush), self._model.alphabet, self._settings,
            _check_num_results(num_results), self._model._frame_s,
        )  # fmt: skip
        return Metadata(tuple(candidates))

    def intermediateDecode(self) -> str:
        """Transcript of the audio processed so far (lags ``n_context`` frames).

        Unidirectional models: the best hypothesis of the running beam search, no
        new search; with a scorer it ends at its last complete word.
        """
        self._check_open()
        if not self._model.streams_natively:
            return self._whole(False, 1).transcripts[0].text
        return self._decoder.intermediate(1)[0].text

    def intermediateDecodeWithMetadata(self, num_results: int = 1) -> Metadata:
        self._check_open()
        if not self._model.streams_natively:
            return self._whole(False, num_results)
        results = self._decoder.intermediate(_check_num_results(num_results))
        return self._model._results_metadata(results)

    def intermediateDecodeFlushBuffers(self) -> str:
        """Transcript of ALL audio fed so far (coqui STT's flush, coqui STT#1953).

        The frames still waiting for look-ahead are run with zero padding on a copy of
        the state, so, unlike coqui STT's, this does not disturb the stream: later audio
        continues from the real state. Zero look-ahead frames cannot enter the
        running search, so this one re-searches all probabilities so far: its cost
        grows with the stream (use it at pauses, not on every chunk).
        """
        self._check_open()
        return self._whole(True, 1).transcripts[0].text

    def finishStream(self) -> str:
        """Final transcript; the stream is closed afterwards."""
        return self.finishStreamWithMetadata(1).transcripts[0].text

    def finishStreamWithMetadata(self, num_results: int = 1) -> Metadata:
        """Final candidates (the whole-file ones); the stream is closed afterwards."""
        self._check_open()
        try:
            if not self._model.streams_natively:
                return self._whole(True, num_results)
            n_results = _check_num_results(num_results)
            self._decoder.feed(self._flush_probs())
            return self._model._results_metadata(self._decoder.finish(n_results))
        finally:
            self.freeStream()

    def freeStream(self) -> None:
        """Drop the stream without decoding."""
        self._open = False
        self._probs = []
        self._samples = np.zeros(0, np.int16)


__all__ = ["Model", "Stream", "CandidateTranscript", "Metadata", "check_audio"]
