"""Feature frames -> probabilities of a unidirectional DeepSpeech2, incrementally.

Drives the exported ``ds2_stream`` signature (util/export.py, util/model_ds2.py
``stream``): each call takes ``time_stride`` (4) x n new feature frames and the
carried state (the last inputs of both convolutions, each recurrent layer's state)
and returns the next output frames. An output frame needs ``stream_lag_frames`` (40)
feature frames of look-ahead, so after ``4 k`` frames the model has given the first
``k - 10`` output frames. :meth:`DS2Frames.flush` ends the utterance where it stands:
zero frames up to the last output's look-ahead, exactly the whole-utterance padding,
so all output frames together equal the ``probabilities`` signature's.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ._runtime import TFLiteModel

SIGNATURE = "ds2_stream"
UNKNOWN_END = 2**30  # ``utterance_frames`` while the utterance goes on


class DS2Frames:
    """The model side of one DeepSpeech2 stream: :meth:`feed` frames, :meth:`flush`.

    ``steps``: output frames per model call (the export's ``--n_steps``); the first
    call takes enough frames to give at least one output frame.
    """

    def __init__(self, tflite: TFLiteModel, steps: int) -> None:
        meta = tflite.metadata
        self._tflite = tflite
        self._stride = int(meta["time_stride"])
        self._lag = -(-int(meta["stream_lag_frames"]) // self._stride)  # outputs
        self._steps = max(1, int(steps))
        self._n_classes = int(meta["n_classes"])
        self._state: Dict[str, np.ndarray] = {
            name: np.zeros(shape, np.float32)
            for name, shape in meta["stream_state"].items()
        }
        self._pending = np.zeros((0, int(meta["n_input"])), np.float32)
        self._blocks = 0  # groups of ``stride`` frames given to the model so far

    def feed(self, frames: np.ndarray) -> List[np.ndarray]:
        """Append feature frames [k, n_input]; probabilities [t, C] of each model
        call they completed (possibly none)."""
        self._pending = np.concatenate([self._pending, frames])
        out = []
        while True:
            n = max(self._steps, self._lag + 1 - self._blocks)
            if len(self._pending) < n * self._stride:
                return out
            probs, self._state = self._run(
                self._pending[: n * self._stride], self._state, UNKNOWN_END
            )
            self._blocks += n
            self._pending = self._pending[n * self._stride :]
            out.append(probs)

    def flush(self) -> np.ndarray:
        """Probabilities [t, C] of the output frames still waiting for look-ahead, as
        if the utterance ended here. The stream's state is not advanced."""
        n_frames = self._blocks * self._stride + len(self._pending)
        n_outputs = -(-n_frames // self._stride)  # the utterance's output frames
        if n_outputs <= max(0, self._blocks - self._lag):
            return np.zeros((0, self._n_classes), np.float32)
        n = n_outputs + self._lag - self._blocks
        frames = np.zeros((n * self._stride, self._pending.shape[1]), np.float32)
        frames[: len(self._pending)] = self._pending
        return self._run(frames, self._state, n_frames)[0]

    def _run(
        self, frames: np.ndarray, state: Dict[str, np.ndarray], utterance_frames: int
    ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        out = self._tflite.run(
            SIGNATURE,
            features=frames,
            first_output=np.array(self._blocks - self._lag, np.int32),
            utterance_frames=np.array(utterance_frames, np.int32),
            **state,
        )
        probs = out.pop("probs")
        return probs, out
