"""What ``deepspeech-transcribe`` writes per audio file: JSON, SRT, WebVTT, tlog.

A file's result is a plain dict (:func:`file_result`)::

    {"file": ..., "duration": s, "sample_rate": Hz, "transcript": all segments joined,
     "segments": [{"start": s, "end": s, "transcript": ..., "confidence": ...,
                   "words": [{"word", "start", "end", "confidence"}, ...]}, ...]}

``confidence`` of a segment is the decoder's (DeepSpeech's log probability); a word's
is the mean probability the model gave its characters at the frames they were emitted
(0..1). Subtitles are composed with the ``srt`` and ``webvtt-py`` packages: one cue
per run of at most :data:`CUE_MAX_WORDS` words / :data:`CUE_MAX_S` seconds of a
segment. ``.tlog`` is DeepSpeech 0.9's transcription log (a JSON list of
``{"start": ms, "end": ms, "transcript"}``), kept for tools such as DSAlign.

Every file is written atomically (temporary file, then rename), and the JSON last, so a
run killed midway leaves either all of a file's outputs or none that count as done.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

FORMATS = ("json", "srt", "vtt", "tlog")
CUE_MAX_WORDS = 12
CUE_MAX_S = 6.0


@dataclass(frozen=True)
class Cue:
    start: float  # s
    end: float  # s
    text: str


def cues(segments: Sequence[Dict[str, Any]]) -> List[Cue]:
    """Subtitle cues of result segments; segments without words give none."""
    out: List[Cue] = []
    for segment in segments:
        words = segment["words"]
        group: List[Dict[str, Any]] = []
        for word in words:
            if group and (
                len(group) >= CUE_MAX_WORDS
                or word["end"] - group[0]["start"] > CUE_MAX_S
            ):
                out.append(_cue(group))
                group = []
            group.append(word)
        if group:
            out.append(_cue(group))
    return out


def _cue(words: Sequence[Dict[str, Any]]) -> Cue:
    return Cue(words[0]["start"], words[-1]["end"], " ".join(w["word"] for w in words))


def to_srt(items: Sequence[Cue]) -> str:
    import srt

    return srt.compose(
        [
            srt.Subtitle(i + 1, _td(c.start), _td(c.end), c.text)
            for i, c in enumerate(items)
        ]
    )


def to_vtt(items: Sequence[Cue]) -> str:
    import srt
    import webvtt

    def stamp(seconds: float) -> str:  # WebVTT: HH:MM:SS.mmm (SRT's with a dot)
        return srt.timedelta_to_srt_timestamp(_td(seconds)).replace(",", ".")

    vtt = webvtt.WebVTT()
    for c in items:
        vtt.captions.append(webvtt.Caption(stamp(c.start), stamp(c.end), c.text))
    return vtt.content


def to_tlog(result: Dict[str, Any]) -> str:
    """DeepSpeech 0.9's .tlog: start/end in integer milliseconds."""
    return json.dumps(
        [
            {
                "start": int(round(s["start"] * 1000)),
                "end": int(round(s["end"] * 1000)),
                "transcript": s["transcript"],
            }
            for s in result["segments"]
        ]
    )


def _td(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=round(seconds, 3))


def render(result: Dict[str, Any], fmt: str) -> str:
    """The text of ``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(result, ensure_ascii=False, indent=1)
    if fmt == "tlog":
        return to_tlog(result)
    items = cues(result["segments"])
    return to_srt(items) if fmt == "srt" else to_vtt(items)


def output_paths(base: str, formats: Sequence[str]) -> Dict[str, str]:
    """{format: ``base.<format>``}, the JSON last (it marks the file as done)."""
    ordered = [f for f in formats if f != "json"] + [f for f in formats if f == "json"]
    return {fmt: f"{base}.{fmt}" for fmt in ordered}


def is_done(base: str, formats: Sequence[str]) -> bool:
    """True when every output of ``base`` exists (a finished earlier run)."""
    return all(os.path.isfile(p) for p in output_paths(base, formats).values())


def write_all(result: Dict[str, Any], base: str, formats: Sequence[str]) -> None:
    """Write every format of ``result`` next to ``base``, each atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    for fmt, path in output_paths(base, formats).items():
        atomic_write_text(path, render(result, fmt))


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
