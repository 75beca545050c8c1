"""Read sample CSVs and validate every row before training sees it.

Contract (doc/ARCHITECTURE.rst, Contracts): a CSV has the columns
``wav_filename,wav_filesize, transcript`` and is UTF-8. A relative ``wav_filename``
resolves against the CSV's directory, as in DeepSpeech. ``read_sample_set`` turns one
CSV into a ``SampleSet`` of ``Sample`` rows whose audio header is readable, whose
transcript encodes in the alphabet and whose audio is long enough for CTC. Every other
row becomes a ``BadSample`` naming its CSV line and the reason, so a user can fix the
file instead of meeting a NaN loss or a crash hours into training (DeepSpeech#1629:
transcripts too long for their audio).

Only audio headers are read here (``util.audio.audio_info``); decoding happens later, in
the tf.data pipeline (``util.feeding``). This module imports no TensorFlow.
"""

from __future__ import annotations

import collections
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import pandas as pd
from absl import logging

from util import sample_collections, tfrecords
from util.audio import AudioError, AudioInfo, audio_info
from util.config import FeatureConfig, ModelConfig

CSV_COLUMNS = ("wav_filename", "wav_filesize", "transcript")

# BadSample.reason values.
MISSING_FILE = "missing file"
UNREADABLE = "unreadable audio"
EMPTY_AUDIO = "empty audio"
EMPTY_TRANSCRIPT = "empty transcript"
OUT_OF_ALPHABET = "characters not in alphabet"
CTC_INFEASIBLE = "transcript too long for audio"

# util.audio.audio_info raises AudioError with this text for files without samples.
_NO_SAMPLES_MESSAGE = "contains no samples"
MAX_ROWS_IN_ERROR = 20  # bad rows listed in BadSamplesError's message
MAX_ROWS_IN_WARNING = 10  # bad rows listed in the skip warning


@dataclass(frozen=True)
class Sample:
    """One validated CSV row.

    ``labels`` are the alphabet indices of ``transcript`` (blank excluded).
    ``n_frames`` is the number of feature frames the audio yields once converted to
    ``FeatureConfig.audio_sample_rate``, computed from the header alone:
    ``cfg.n_frames(ceil(n_frames_source * target_rate / source_rate))``, the length
    ``util.audio.read_audio`` resamples to; it equals the pipeline's ``features_len``.
    ``row`` is the 1-based line of the row in its CSV (the header is line 1; a quoted
    transcript spanning several lines shifts the rows after it).
    """

    wav_filename: str  # absolute path
    wav_filesize: int  # bytes
    transcript: str
    labels: Tuple[int, ...]
    n_frames: int  # feature frames at the target rate
    duration_s: float  # s
    csv: str
    row: int


@dataclass(frozen=True)
class BadSample:
    """A CSV row that cannot be trained on; ``reason`` is a module constant."""

    csv: str
    row: int
    wav_filename: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.csv}:{self.row} {self.wav_filename}: {self.reason} ({self.detail})"
        )


@dataclass(frozen=True)
class SampleSet:
    """The valid samples of one CSV (in CSV order) and its rejected rows."""

    name: str  # the CSV path as given
    samples: Tuple[Sample, ...]
    bad: Tuple[BadSample, ...]
    n_resampled: int  # kept samples whose source rate differs from the target rate
    n_downmixed: int  # kept samples with more than one channel
    source_rates: Tuple[int, ...]  # Hz, distinct source rates of the kept samples

    @property
    def total_duration_s(self) -> float:
        return float(sum(s.duration_s for s in self.samples))


class BadSamplesError(ValueError):
    """Raised by ``read_sample_set(skip_bad=False)`` when any row is bad."""

    def __init__(self, bad: Sequence[BadSample]) -> None:
        self.bad = tuple(bad)
        lines = [str(b) for b in self.bad[:MAX_ROWS_IN_ERROR]]
        if len(self.bad) > MAX_ROWS_IN_ERROR:
            lines.append(f"... and {len(self.bad) - MAX_ROWS_IN_ERROR} more")
        super().__init__(
            f"{len(self.bad)} bad sample(s):\n  "
            + "\n  ".join(lines)
            + "\nFix the CSV or pass --skip_bad_samples to leave these rows out."
        )


class CsvNotFoundError(FileNotFoundError, ValueError):
    """The sample CSV does not exist (a ValueError too, like every bad-input error)."""


@dataclass(frozen=True)
class CsvRow:
    """One raw CSV row, before validation (``read_csv_rows``)."""

    row: int
    wav_filename: str  # absolute path
    wav_filesize: str  # as written in the CSV, may be empty or garbage
    transcript: str


def ctc_required_frames(labels: Sequence[int]) -> int:
    """Fewest frames CTC needs to emit ``labels``.

    One frame per label plus one blank between each pair of equal adjacent labels,
    since CTC merges repeats that no blank separates ("hello" needs 6 frames). A
    shorter input gives an infinite loss (DeepSpeech#1629).
    """
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return len(labels) + repeats


def ctc_feasibility(
    labels: Sequence[int], n_frames: int, model: ModelConfig
) -> Optional[Tuple[str, str]]:
    """None when CTC can emit ``labels`` from the model's output frames of
    ``n_frames`` feature frames, else ``(CTC_INFEASIBLE, detail)``."""
    needed = ctc_required_frames(labels)
    n_out = model.output_frames(n_frames)
    if n_out >= needed:
        return None
    if model.time_stride == 1:
        return CTC_INFEASIBLE, f"needs {needed} frames, audio has {n_frames}"
    return CTC_INFEASIBLE, (
        f"needs {needed} output frames, audio has {n_frames} feature frames = "
        f"{n_out} output frames after the model's time stride {model.time_stride}"
    )


def read_sample_set(
    csv_path: str,
    alphabet: Any,
    cfg: FeatureConfig,
    limit: int = 0,
    skip_bad: bool = True,
    n_workers: int = 8,
    read_buffer: int = 1 << 20,
    model: ModelConfig = ModelConfig(),
) -> SampleSet:
    """Read and validate ``csv_path``.

    Args:
      csv_path: the CSV file; relative ``wav_filename`` values resolve against its dir.
      alphabet: a ``ctcdecode.Alphabet`` (``encode``, ``unknown_chars``).
      cfg: the feature config; gives the target rate and the frame geometry.
      limit: keep only the first ``limit`` rows (DeepSpeech's ``--limit_*``); 0 = all.
      skip_bad: leave bad rows out with a warning instead of raising.
      n_workers: threads reading audio headers.
      read_buffer: bytes of read buffer for ``.sdb`` sample databases.
      model: the geometry; its ``output_frames`` (DeepSpeech2: a quarter of the
        feature frames) decides whether CTC can fit the transcript.

    Raises:
      CsvNotFoundError: the CSV does not exist.
      ValueError: the CSV cannot be parsed or lacks a required column.
      BadSamplesError: ``skip_bad`` is false and at least one row is bad.
    """
    if tfrecords.is_tfrecord_source(csv_path):  # TFRecord shards (or a glob of them)
        return _read_tfrecord_set(csv_path, alphabet, cfg, limit, skip_bad, model)
    if sample_collections.is_sdb(csv_path):  # DeepSpeech 0.9 sample database
        checked = [
            _check_row(
                _sdb_row(entry), csv_path, alphabet, cfg, _sdb_audio(entry), model
            )
            for entry in sample_collections.sdb_headers(csv_path, limit, read_buffer)
        ]
    else:
        rows = read_csv_rows(csv_path, limit)
        with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool:
            checked = list(
                pool.map(
                    lambda r: _check_row(r, csv_path, alphabet, cfg, None, model), rows
                )
            )
    good = [c for c in checked if isinstance(c[0], Sample)]
    bad = tuple(c[0] for c in checked if isinstance(c[0], BadSample))
    if bad and not skip_bad:
        raise BadSamplesError(bad)
    target = cfg.audio_sample_rate
    infos = [info for _, info in good if info is not None]
    sample_set = SampleSet(
        name=csv_path,
        samples=tuple(s for s, _ in good),
        bad=bad,
        n_resampled=sum(1 for i in infos if i.sample_rate != target),
        n_downmixed=sum(1 for i in infos if i.n_channels > 1),
        source_rates=tuple(sorted({i.sample_rate for i in infos})),
    )
    if bad:
        warn_bad(csv_path, bad)
    log_summary(sample_set, target)
    return sample_set


def _read_tfrecord_set(
    pattern: str,
    alphabet: Any,
    cfg: FeatureConfig,
    limit: int = 0,
    skip_bad: bool = True,
    model: ModelConfig = ModelConfig(),
) -> SampleSet:
    """The samples of the shards ``pattern`` names, validated like CSV rows."""
    try:
        shards = tfrecords.shard_paths(pattern)
    except FileNotFoundError as e:
        raise CsvNotFoundError(str(e)) from None

    good: List[Sample] = []
    bad: List[BadSample] = []
    for shard in shards:
        for index, (offset, data) in enumerate(tfrecords.iter_records(shard)):
            if limit and len(good) + len(bad) >= limit:
                break
            item = _record_sample(shard, index, offset, data, alphabet, cfg, model)
            (bad if isinstance(item, BadSample) else good).append(item)
    if bad and not skip_bad:
        raise BadSamplesError(bad)
    if bad:
        warn_bad(pattern, bad)
    sample_set = SampleSet(pattern, tuple(good), tuple(bad), 0, 0, ())
    log_summary(sample_set, cfg.audio_sample_rate)
    return sample_set


def _record_sample(
    shard: str,
    index: int,
    offset: int,
    data: bytes,
    alphabet: Any,
    cfg: FeatureConfig,
    model: ModelConfig,
) -> Any:
    """A Sample for one record, or a BadSample naming ``shard`` and the record index."""
    example = tfrecords.parse_example(data)
    ref = f"{shard}{tfrecords.REF_SEPARATOR}{offset}"
    transcript = tfrecords.example_transcript(example)
    if tfrecords.example_kind(example) == tfrecords.KIND_FEATURES:
        tfrecords.check_feature_config(example, cfg, shard)
        n_frames = len(tfrecords.example_features(example, cfg.n_input))
        duration_s = (n_frames * cfg.win_step_samples) / cfg.audio_sample_rate
    else:
        samples, rate = tfrecords.example_audio(example, ref)
        n_frames = cfg.n_frames(-(-len(samples) * cfg.audio_sample_rate // rate))
        duration_s = len(samples) / rate
    labels, problem = check_transcript(transcript, alphabet)
    if problem is None:
        problem = ctc_feasibility(labels, n_frames, model)
    if problem is not None:
        return BadSample(shard, index, ref, *problem)
    return Sample(
        ref, len(data), transcript, labels, n_frames, duration_s, shard, index
    )


def read_csv_rows(
    csv_path: str, limit: int = 0, required: Sequence[str] = CSV_COLUMNS
) -> List[CsvRow]:
    """The rows of a sample CSV, ``wav_filename`` made absolute: the one CSV reader.

    The trainer, ``evaluate_tflite.py`` and the alphabet check all read sample CSVs
    here. ``required`` columns must exist (an absent optional one reads as "");
    ``limit`` > 0 keeps the first rows only. Raises CsvNotFoundError or ValueError
    naming the CSV and the fix.
    """
    if not os.path.isfile(csv_path):
        raise CsvNotFoundError(f"sample CSV {csv_path!r} does not exist")
    try:
        frame = pd.read_csv(
            csv_path,
            encoding="utf-8",
            dtype=str,
            keep_default_na=False,  # "null" and "nan" are transcripts, not missing
            na_filter=False,
            nrows=limit if limit > 0 else None,
        )
        # A first row with more fields than the header (an unquoted comma in its
        # transcript) makes pandas take the extra field for an index column, which
        # shifts wav_filename to the file size ("missing file .../93638"); later such
        # rows raise ParserError. Both become an error naming the line.
        if not isinstance(frame.index, pd.RangeIndex):
            raise pd.errors.ParserError(
                f"Expected {len(frame.columns)} fields in line 2, saw more"
            )
    except (ValueError, pd.errors.ParserError) as e:  # incl. UnicodeDecodeError
        hint = ""
        if "Expected" in str(e) and "fields" in str(e):
            hint = '; quote a field that holds a comma ("she had, your dark suit")'
        raise ValueError(f"cannot read sample CSV {csv_path!r}: {e}{hint}") from e
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"sample CSV {csv_path!r} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns)) or 'none'} "
            f"and needs {','.join(CSV_COLUMNS)}"
        )
    base = os.path.dirname(os.path.abspath(csv_path))
    empty = [""] * len(frame)
    names, sizes, texts = (
        frame[c] if c in frame.columns else empty for c in CSV_COLUMNS
    )
    return [
        CsvRow(
            row=k + 2,  # header is line 1; exact unless a quoted field spans lines
            wav_filename=(
                os.path.normpath(os.path.join(base, str(name))) if name else ""
            ),
            wav_filesize=str(size),
            transcript=str(text),
        )
        for k, (name, size, text) in enumerate(zip(names, sizes, texts))
    ]


def _sdb_row(entry: "sample_collections.SDBHeader") -> CsvRow:
    """A database sample as a row: ``<file>.sdb:<index>``, its index as the row."""
    return CsvRow(entry.index, entry.ref, str(entry.n_bytes), entry.transcript)


def _sdb_audio(
    entry: "sample_collections.SDBHeader",
) -> Tuple[Optional[AudioInfo], Optional[Tuple[str, str]]]:
    if entry.error is not None:
        return None, (UNREADABLE, entry.error)
    if entry.info is None or entry.info.n_frames_source <= 0:
        return None, (EMPTY_AUDIO, "0 samples")
    return entry.info, None


def _check_row(
    row: CsvRow,
    csv_path: str,
    alphabet: Any,
    cfg: FeatureConfig,
    audio: Optional[Tuple[Optional[AudioInfo], Optional[Tuple[str, str]]]] = None,
    model: ModelConfig = ModelConfig(),
) -> Tuple[Union[Sample, BadSample], Optional[AudioInfo]]:
    """Validate one row: the audio, the transcript, then the one against the other.

    ``audio``: the header already read (``.sdb`` samples), else the file's is read.
    """
    info, problem = audio if audio is not None else _check_audio(row.wav_filename)
    labels: Tuple[int, ...] = ()
    if problem is None:
        labels, problem = check_transcript(row.transcript, alphabet)
    n_frames = 0
    if problem is None and info is not None:
        n_frames = cfg.n_frames(_n_target_samples(info, cfg.audio_sample_rate))
        problem = ctc_feasibility(labels, n_frames, model)
    if problem is not None or info is None:
        reason, detail = problem or (UNREADABLE, "no header")
        return BadSample(csv_path, row.row, row.wav_filename, reason, detail), None
    sample = Sample(
        wav_filename=row.wav_filename,
        wav_filesize=_filesize(row),
        transcript=row.transcript,
        labels=labels,
        n_frames=n_frames,
        duration_s=float(info.duration_s),
        csv=csv_path,
        row=row.row,
    )
    return sample, info


def _check_audio(path: str) -> Tuple[Optional[AudioInfo], Optional[Tuple[str, str]]]:
    """(header, None) when the file has audio, else (None, (reason, detail))."""
    if not os.path.isfile(path):
        return None, (MISSING_FILE, "no such file")
    try:
        info = audio_info(path)
    except (AudioError, ValueError, OSError, RuntimeError) as e:
        if _NO_SAMPLES_MESSAGE in str(e):
            return None, (EMPTY_AUDIO, "0 samples")
        return None, (UNREADABLE, str(e) or type(e).__name__)
    if info.n_frames_source <= 0 or info.sample_rate <= 0:
        return None, (EMPTY_AUDIO, "0 samples")
    return info, None


def _n_target_samples(info: AudioInfo, target_rate: int) -> int:
    """Samples once resampled to ``target_rate``: n * target / source, rounded half up.

    This is the length ``util.audio.read_audio`` returns (soxr rounds half up:
    checked against soxr for every n in [100000, 100400) at six source rates), so
    ``Sample.n_frames`` equals the frames the pipeline yields.
    """
    n, rate = info.n_frames_source, info.sample_rate
    return (2 * n * target_rate + rate) // (2 * rate)


def check_transcript(
    transcript: str, alphabet: Any
) -> Tuple[Tuple[int, ...], Optional[Tuple[str, str]]]:
    """(labels, None) when the transcript encodes, else ((), (reason, detail))."""
    if not transcript.strip():
        return (), (EMPTY_TRANSCRIPT, "transcript is blank")
    unknown = sorted(set(alphabet.unknown_chars(transcript)), key=transcript.find)
    if unknown:
        return (), (OUT_OF_ALPHABET, ", ".join(repr(c) for c in unknown))
    try:
        return tuple(int(x) for x in alphabet.encode(transcript)), None
    except ValueError as e:  # AlphabetError
        return (), (OUT_OF_ALPHABET, str(e))


def _filesize(row: CsvRow) -> int:
    """The CSV's ``wav_filesize``, or the size on disk when it is empty or garbage."""
    try:
        return int(row.wav_filesize.strip())
    except ValueError:
        return os.path.getsize(row.wav_filename)


def warn_bad(csv_path: str, bad: Sequence[BadSample]) -> None:
    counts: Dict[str, int] = collections.Counter(b.reason for b in bad)
    by_reason = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    shown = "\n  ".join(str(b) for b in bad[:MAX_ROWS_IN_WARNING])
    more = len(bad) - MAX_ROWS_IN_WARNING
    logging.warning(
        "%s: skipping %d bad sample(s) (%s):\n  %s%s",
        csv_path,
        len(bad),
        by_reason,
        shown,
        f"\n  ... and {more} more" if more > 0 else "",
    )


def log_summary(sample_set: SampleSet, target_rate: int) -> None:
    conversions = []
    if sample_set.n_resampled:
        rates = ", ".join(str(r) for r in sample_set.source_rates if r != target_rate)
        conversions.append(
            f"{sample_set.n_resampled} files will be resampled from rates {{{rates}}} "
            f"to {target_rate} Hz"
        )
    if sample_set.n_downmixed:
        conversions.append(f"{sample_set.n_downmixed} downmixed to mono")
    logging.info(
        "%s: %d samples (%s of audio); %d skipped%s",
        sample_set.name,
        len(sample_set.samples),
        _hms(sample_set.total_duration_s),
        len(sample_set.bad),
        "; " + ", ".join(conversions) if conversions else "",
    )


def _hms(seconds: float) -> str:
    """H:MM:SS, e.g. 1:02:03."""
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
