"""Split long int16 audio at pauses with WebRTC's voice activity detector.

The segmentation of DeepSpeech 0.9's ``transcribe.py`` (``vad_split`` in its
util/audio.py): 30 ms frames go through ``webrtcvad`` (the maintained
``webrtcvad-wheels`` package); a segment opens when more than half of the last
``padding_ms`` of frames are voiced, and closes when more than half of them are not.
The padding keeps a little silence around each segment, which the acoustic model saw in
training. Added here: each segment is widened by the padding on both sides (up to its
neighbours), since the trigger fires once speech is well under way; a segment longer
than ``max_segment_ms`` is cut at its quietest frame, so that one endless "speech"
stretch (music, noise) cannot make one huge model call; and the times are sample
indices, not rounded milliseconds.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Deque, Iterator, List, Tuple

import numpy as np

FRAME_MS = 30  # webrtcvad takes 10, 20 or 30 ms frames
VAD_RATES = (8000, 16000, 32000, 48000)  # Hz, the rates webrtcvad supports


@dataclass(frozen=True)
class Segment:
    """Samples ``[start, end)`` of the file (at the model's rate)."""

    start: int
    end: int

    def duration_s(self, sample_rate: int) -> float:
        return (self.end - self.start) / sample_rate


def split(
    pcm: np.ndarray,
    sample_rate: int,
    aggressiveness: int = 3,
    padding_ms: int = 300,
    max_segment_ms: int = 30000,
) -> List[Segment]:
    """Voiced segments of int16 mono ``pcm`` [n], in order and not overlapping.

    aggressiveness: 0 (keeps the most audio) to 3 (splits the most), webrtcvad's mode.
    padding_ms: the window that opens and closes a segment (DeepSpeech: 10 frames).
    max_segment_ms: longer segments are cut at their quietest frame.

    Raises ValueError for a rate webrtcvad does not support or a bad setting.
    """
    import webrtcvad  # the transcribe extra: pip install "deepspeech[transcribe]"

    if sample_rate not in VAD_RATES:
        raise ValueError(
            f"voice activity detection needs a rate in {VAD_RATES} Hz, the model "
            f"runs at {sample_rate} Hz"
        )
    if aggressiveness not in (0, 1, 2, 3):
        raise ValueError(f"--vad_aggressiveness must be 0..3, got {aggressiveness}")
    frame = sample_rate * FRAME_MS // 1000
    vad = webrtcvad.Vad(int(aggressiveness))
    pcm = np.ascontiguousarray(pcm, dtype=np.int16)
    voiced = [
        vad.is_speech(pcm[i : i + frame].tobytes(), sample_rate)
        for i in range(0, len(pcm) - frame + 1, frame)
    ]
    n_pad = max(1, padding_ms // FRAME_MS)
    max_frames = max(n_pad + 1, max_segment_ms // FRAME_MS)
    energy = _frame_energy(pcm, frame, len(voiced))
    runs = [
        piece
        for first, last in _voiced_runs(voiced, n_pad)
        for piece in _cut_long(first, last, max_frames, energy)
    ]
    return [
        Segment(a * frame, min(len(pcm), b * frame))
        for a, b in _widen(runs, n_pad, len(voiced))
    ]


def _voiced_runs(voiced: List[bool], n_pad: int) -> Iterator[Tuple[int, int]]:
    """Frame ranges ``[first, last)`` of segments (DeepSpeech 0.9's ring buffer)."""
    ring: Deque[bool] = collections.deque(maxlen=n_pad)
    start = None
    for index, speech in enumerate(voiced):
        ring.append(speech)
        if start is None:
            if sum(ring) > 0.5 * n_pad:
                start = index + 1 - len(ring)  # the padding frames join the segment
                ring.clear()
        elif len(ring) - sum(ring) > 0.5 * n_pad:
            yield start, index + 1
            start = None
            ring.clear()
    if start is not None:
        yield start, len(voiced)


def _widen(
    runs: List[Tuple[int, int]], n_pad: int, n_frames: int
) -> Iterator[Tuple[int, int]]:
    """Each run grown by ``n_pad`` frames on both sides, up to its neighbours.

    The ring buffer opens a segment only once speech is well under way, and a soft
    onset ("she") can start before the padding it keeps; the model also ends words
    better with some of the following pause.
    """
    for k, (first, last) in enumerate(runs):
        lo = runs[k - 1][1] if k else 0
        hi = runs[k + 1][0] if k + 1 < len(runs) else n_frames
        yield max(lo, first - n_pad), min(hi, last + n_pad)


def _frame_energy(pcm: np.ndarray, frame: int, n_frames: int) -> np.ndarray:
    """Mean square of each frame: float64 [n_frames]."""
    frames = pcm[: n_frames * frame].astype(np.float64).reshape(n_frames, frame)
    return (frames**2).mean(axis=1)


def _cut_long(
    first: int, last: int, max_frames: int, energy: np.ndarray
) -> Iterator[Tuple[int, int]]:
    """Cut ``[first, last)`` into pieces of at most ``max_frames`` at quiet frames."""
    while last - first > max_frames:
        # the quietest frame in the second half of the allowed span
        lo = first + max_frames // 2
        cut = lo + int(np.argmin(energy[lo : first + max_frames]))
        yield first, cut
        first = cut
    yield first, last
