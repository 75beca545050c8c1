"""Audio conversion for importers: sources -> 16 kHz mono 16-bit WAVs, in parallel.

Each source file is decoded once for all its segments; every file is written under a
temporary name and renamed into place, so an interrupted run never leaves a half file
that a later run trusts. An existing output is reused only when :class:`SourceIndex`
says it was made from the same source: same absolute path, size and modification time,
same cut and rate. A name is never the reuse key: two corpora (or a train and a dev
folder) with the same relative layout used to share each other's WAVs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import soundfile as sf
from absl import logging

from ctcdecode.fileio import atomic_path
from util.audio import AudioError, audio_info, read_audio, write_wav
from util.config import FeatureConfig
from util.progress import Progress
from util.samples import (
    CTC_INFEASIBLE,
    EMPTY_AUDIO,
    MISSING_FILE,
    UNREADABLE,
)

TOO_LONG = "longer than --max_duration"
SOURCES_FILE = ".sources.jsonl"  # in the WAV directory; see SourceIndex
# (dst, start_s, end_s): one output file cut from a source file; end_s None = to the end
Segment = Tuple[str, float, Optional[float]]
Converter = Callable[[str, Sequence[Segment], int], List[int]]


# -- conversion -----------------------------------------------------------------------


def convert_to_wav(
    src: str, segments: Sequence[Segment], sample_rate: int
) -> List[int]:
    """Write each segment of ``src`` as 16-bit mono WAV at ``sample_rate``.

    The source is decoded once for all its segments (a TED talk has ~100). A whole
    file that already is a 16-bit mono WAV at the rate is copied byte for byte. Empty
    segments are not written.

    Returns:
        the samples written per segment (0 for an empty one).
    Raises:
        AudioError: the source cannot be decoded.
    """
    if len(segments) == 1 and segments[0][1] == 0 and segments[0][2] is None:
        n_frames = _wav_frames(src, sample_rate)
        if n_frames is not None:
            _copy_atomically(src, segments[0][0])
            return [n_frames]
    samples, _ = read_audio(src, sample_rate)
    written = []
    for dst, start_s, end_s in segments:
        start = int(round(start_s * sample_rate))
        end = len(samples) if end_s is None else int(round(end_s * sample_rate))
        piece = samples[start:end]
        if piece.size:
            write_wav(dst, piece, sample_rate)
        written.append(int(piece.size))
    return written


def _copy_atomically(src: str, dst: str) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _wav_frames(path: str, sample_rate: int) -> Optional[int]:
    """Frames of ``path`` if it is a 16-bit mono WAV at ``sample_rate``, else None."""
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError, OSError):
        return None
    ok = (
        info.format == "WAV"
        and info.subtype == "PCM_16"
        and info.channels == 1
        and info.samplerate == sample_rate
        and info.frames > 0
    )
    return int(info.frames) if ok else None


# -- where each output came from ------------------------------------------------------


@dataclass(frozen=True)
class SourceKey:
    """What an output WAV holds: the source (identity, content), the cut, the rate."""

    src: str  # absolute, normalised path
    size: int  # bytes
    mtime_ns: int
    start_s: float
    end_s: Optional[float]
    rate: int  # Hz

    @property
    def claim(self) -> Tuple[str, float, Optional[float]]:
        """The part that names a sample: which file and which cut (not the content)."""
        return (self.src, self.start_s, self.end_s)


def source_key(
    src: str, start_s: float, end_s: Optional[float], rate: int
) -> SourceKey:
    """The key of a cut of ``src`` as it is on disk now (size, mtime 0 when missing)."""
    path = os.path.normpath(os.path.abspath(src))
    try:
        stat = os.stat(path)
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime_ns = -1, 0
    return SourceKey(path, size, mtime_ns, float(start_s), end_s, rate)


class SourceIndex:
    """Which source every WAV in one output directory was converted from.

    Stored as JSON lines in ``<wav dir>/.sources.jsonl``, one appended (and flushed)
    when a conversion finishes, so an interrupted import keeps what it finished; the
    last line for a file wins and a torn last line is ignored. A WAV that the index
    does not know (an older import, or one killed between rename and record) is
    never trusted and never overwritten: a new sample gets another name.
    """

    def __init__(self, wav_dir: str) -> None:
        self.wav_dir = wav_dir
        self.path = os.path.join(wav_dir, SOURCES_FILE)
        self._keys: Dict[str, SourceKey] = {}
        if os.path.isfile(self.path):
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    self._load_line(line)

    def _load_line(self, line: str) -> None:
        try:
            record = json.loads(line)
            name = record.pop("dst")
            self._keys[name] = SourceKey(**record)
        except (ValueError, TypeError, KeyError):
            return  # a torn or foreign line: that WAV is simply not trusted

    def key_of(self, dst: str) -> Optional[SourceKey]:
        return self._keys.get(os.path.basename(dst))

    def free_for(self, dst: str, key: SourceKey) -> bool:
        """May ``dst`` hold ``key``'s cut? Yes if it holds it already or is unused."""
        known = self.key_of(dst)
        if known is not None:
            return known.claim == key.claim
        return not os.path.exists(dst)

    def record(self, dst: str, key: SourceKey) -> None:
        name = os.path.basename(dst)
        self._keys[name] = key
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"dst": name, **asdict(key)}) + "\n")
            f.flush()
            os.fsync(f.fileno())


def unique_dst(
    dst: str, key: SourceKey, index: SourceIndex, taken: Dict[str, Any]
) -> str:
    """``dst``, or ``<stem>-<hash of the source and cut>.wav`` when another source has
    it (in this run: ``taken`` maps names to claims; or in ``index``). Raises
    ValueError if even that name is taken (a hash collision)."""
    candidates = [dst]
    digest = hashlib.sha256(repr(key.claim).encode()).hexdigest()[:10]
    candidates.append(f"{os.path.splitext(dst)[0]}-{digest}.wav")
    for name in candidates:
        claim = taken.get(name)
        if (claim is None or claim == key.claim) and index.free_for(name, key):
            return name
    raise ValueError(
        f"{dst}: no free output name for {key.src}; use a new target directory"
    )


@dataclass(frozen=True)
class Target:
    """One output WAV: where it goes, the cut, and the frames its transcript needs.

    ``reusable``: an existing ``dst`` holds exactly this source (``SourceIndex``).
    """

    dst: str
    start_s: float
    end_s: Optional[float]
    min_frames: int
    reusable: bool = False


@dataclass(frozen=True)
class Job:
    """All outputs cut from one source file (decoded once)."""

    src: str
    targets: Tuple[Target, ...]
    features: FeatureConfig
    max_samples: int  # 0 = no limit


@dataclass(frozen=True)
class Outcome:
    dst: str
    n_samples: int
    reason: Optional[str]
    converted: bool


def _problem(n_samples: int, target: Target, job: Job) -> Optional[str]:
    if n_samples <= 0:
        return EMPTY_AUDIO
    if job.max_samples and n_samples > job.max_samples:
        return TOO_LONG
    if job.features.n_frames(n_samples) < target.min_frames:
        return CTC_INFEASIBLE
    return None


def _expected_samples(src: str, target: Target, rate: int) -> Optional[int]:
    """Samples the target will have, from the source header; None if unreadable."""
    try:
        info = audio_info(src)
    except AudioError:
        return None
    total = -(-info.n_frames_source * rate // info.sample_rate)
    end = total if target.end_s is None else min(total, round(target.end_s * rate))
    return max(0, end - int(round(target.start_s * rate)))


def _run_job(job: Job, convert: Converter) -> List[Outcome]:
    """Judge and convert the targets of one source; reuse valid existing WAVs.

    Length limits are checked on the header before decoding, so a too-long or too-short
    sample costs no decoding on this run or the next.
    """
    rate = job.features.audio_sample_rate
    outcomes, todo = [], []
    for target in job.targets:
        n = _wav_frames(target.dst, rate) if target.reusable else None
        if n is not None:
            outcomes.append(Outcome(target.dst, n, _problem(n, target, job), False))
            continue
        expected = _expected_samples(job.src, target, rate)
        if expected is None:
            reason = UNREADABLE if os.path.exists(job.src) else MISSING_FILE
            outcomes.append(Outcome(target.dst, 0, reason, False))
        elif (problem := _problem(expected, target, job)) is not None:
            outcomes.append(Outcome(target.dst, 0, problem, False))
        else:
            todo.append(target)
    if todo:
        try:
            written = convert(
                job.src, [(t.dst, t.start_s, t.end_s) for t in todo], rate
            )
        except AudioError as err:
            logging.warning("cannot convert %s: %s", job.src, err)
            return outcomes + [Outcome(t.dst, 0, UNREADABLE, False) for t in todo]
        for target, n in zip(todo, written):
            outcomes.append(Outcome(target.dst, n, _problem(n, target, job), n > 0))
    return outcomes


def convert_all(
    jobs: Sequence[Job],
    workers: int,
    show_progressbar: bool,
    convert: Converter,
    on_converted: Callable[[Outcome], None] = lambda outcome: None,
) -> Dict[str, Outcome]:
    """Run the jobs in ``workers`` processes (inline for 1); outcome per output WAV.

    ``on_converted`` sees each newly written WAV as soon as its job is back (the
    importer records its source there, so an interrupted run keeps finished work).
    """
    run = functools.partial(_run_job, convert=convert)
    rate = jobs[0].features.audio_sample_rate if jobs else 1
    progress = Progress("Converting", len(jobs), show_progressbar)
    outcomes: Dict[str, Outcome] = {}
    collect = functools.partial(
        _collect,
        outcomes=outcomes,
        progress=progress,
        sample_rate=rate,
        on_converted=on_converted,
    )
    if workers <= 1 or len(jobs) <= 1:
        results: Iterable[List[Outcome]] = map(run, jobs)
        collect(results)
    else:
        # fork: workers inherit the imports; they never touch TensorFlow.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        chunk = max(1, min(32, len(jobs) // (workers * 8)))
        with context.Pool(workers) as pool:
            collect(pool.imap_unordered(run, jobs, chunksize=chunk))
    progress.finish()
    return outcomes


def _collect(
    results: Iterable[List[Outcome]],
    outcomes: Dict[str, Outcome],
    progress: Any,
    sample_rate: int,
    on_converted: Callable[[Outcome], None],
) -> None:
    """Gather outcomes; the bar's speed is audio seconds written per wall second."""
    n_written = 0  # samples
    for k, job_outcomes in enumerate(results, 1):
        for outcome in job_outcomes:
            outcomes[outcome.dst] = outcome
            if outcome.converted:
                n_written += outcome.n_samples
                on_converted(outcome)
        elapsed = max(time.perf_counter() - progress.start, 1e-6)
        progress.update(k, speed=n_written / sample_rate / elapsed)
