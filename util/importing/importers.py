"""Shared importer core: sources -> clean transcripts -> 16 kHz WAVs -> CSVs + report.

A corpus importer (``bin/import_<corpus>.py``) only turns an extracted corpus into
:class:`RawSample` rows (``iter_samples(root)``); everything DeepSpeech copied into each
of its importers lives here once (doc/CONTRIBUTING.rst rule 12): finding, downloading
and extracting archives (``util.importing.archives``), cleaning transcripts against the
alphabet, converting audio to 16 kHz mono 16-bit WAV in parallel processes, dropping
samples that cannot be trained on, writing the CSVs and counting what was kept or
skipped.

Re-running is cheap and safe: an output WAV that exists with the right format is not
converted again, and every WAV and CSV is written under a temporary name and renamed
into place (``util.audio.write_wav``), so an interrupted run never leaves a half file
that a later run trusts.

CSV contract (doc/ARCHITECTURE.rst, Contracts): ``<target_dir>/<split>.csv`` with the
columns ``wav_filename,wav_filesize,transcript``, paths relative to the CSV's directory.
"""

from __future__ import annotations

import collections
import csv
import os
import re
from dataclasses import dataclass, field
from typing import (
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

from absl import logging

from ctcdecode import Alphabet, load_alphabet
from ctcdecode.fileio import atomic_write
from util.config import FeatureConfig
from util.importing import archives
from util.importing.conversion import (
    Converter,
    Job,
    Outcome,
    SourceIndex,
    SourceKey,
    Target,
    convert_all,
    convert_to_wav,
    source_key,
    unique_dst,
)
from util.importing.transcripts import clean_transcript, required_frames
from util.samples import (
    CSV_COLUMNS,
    CTC_INFEASIBLE,
)

DUPLICATE = "duplicate sample id"
N_EXAMPLES = 3  # sample ids listed per skip reason in the report
SOURCE_SUBDIR = "source"  # archives are extracted into <target_dir>/source


class ImporterError(ValueError):
    """Bad importer input (no archive, bad options); the message says the fix."""


@dataclass(frozen=True)
class RawSample:
    """One utterance as a corpus describes it, before conversion and validation.

    ``sample_id`` names the output WAV (``<sample_id>.wav``), so it must be unique in
    the corpus; the same id in two splits (Common Voice's validated.tsv repeats
    train.tsv) is converted once. ``start_s``/``end_s`` cut a segment out of a longer
    recording (TED-LIUM STM segments, TIMIT sample offsets).
    """

    audio_path: str
    transcript: str
    sample_id: str
    split: str = "train"  # the CSV the sample goes to: <split>.csv
    start_s: float = 0.0  # s
    end_s: Optional[float] = None  # s; None = to the end of the file


@dataclass(frozen=True)
class ImportOptions:
    """The shared importer flags, resolved once by :func:`options_from_args`."""

    target_dir: str
    archive: Tuple[str, ...] = ()  # local archives or extracted directories
    download: bool = False
    alphabet: Optional[str] = None  # alphabet.txt path
    filter_alphabet: bool = False
    normalize: bool = False
    max_duration: float = 0.0  # s, 0 = no limit
    workers: int = 1  # conversion processes
    show_progressbar: bool = False
    wav_subdir: str = "wav"  # WAVs go to <target_dir>/<wav_subdir>/<sample_id>.wav
    features: FeatureConfig = field(default_factory=FeatureConfig)


@dataclass
class ImportReport:
    """What an import kept and skipped; ``format()`` is the text the CLI prints."""

    csv_files: Dict[str, str] = field(default_factory=dict)  # split -> path
    kept: Dict[str, int] = field(default_factory=collections.Counter)  # split -> n
    duration_s: Dict[str, float] = field(default_factory=collections.Counter)
    skipped: Dict[str, int] = field(default_factory=collections.Counter)  # reason -> n
    examples: Dict[str, List[str]] = field(default_factory=dict)  # reason -> ids
    n_converted: int = 0  # WAVs written by this run
    n_reused: int = 0  # valid WAVs found from an earlier run
    n_out_of_alphabet_kept: int = 0  # kept although the alphabet cannot encode them

    def skip(self, reason: str, sample_id: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < N_EXAMPLES:
            shown.append(sample_id)

    def format(self) -> str:
        lines = []
        for split in sorted(self.csv_files):
            lines.append(
                f"{self.csv_files[split]}: {self.kept[split]} samples, "
                f"{_hms(self.duration_s[split])} of audio"
            )
        lines.append(
            f"converted {self.n_converted} files, reused {self.n_reused} from an "
            "earlier run"
        )
        for reason, n in sorted(self.skipped.items()):
            lines.append(
                f"skipped {n}: {reason} (e.g. {', '.join(self.examples[reason])})"
            )
        if self.n_out_of_alphabet_kept:
            lines.append(
                f"warning: kept {self.n_out_of_alphabet_kept} samples with characters "
                "outside the alphabet; pass --filter_alphabet or --normalize"
            )
        return "\n".join(lines)


def _hms(seconds: float) -> str:
    """H:MM:SS.s, e.g. 1:02:03.5."""
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes // 60)}:{int(minutes % 60):02d}:{secs:04.1f}"


# -- orchestration --------------------------------------------------------------------


def prepare_sources(
    options: ImportOptions, specs: Sequence[archives.ArchiveSpec]
) -> List[str]:
    """Directories to scan: ``--archive`` paths, or archives found/downloaded by spec.

    An archive is extracted into ``<target_dir>/source`` (once); a directory is used
    as it is, so an already extracted corpus needs no copy.
    """
    paths = list(options.archive) or _find_or_download(options, specs)
    checksums = {spec.filename: spec.sha256 for spec in specs}
    source_dir = os.path.join(options.target_dir, SOURCE_SUBDIR)
    roots: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            root = path
        elif os.path.isfile(path):
            if not archives.is_extracted(path, source_dir):
                archives.verify(path, checksums.get(os.path.basename(path)))
            archives.extract(path, source_dir)
            root = source_dir
        else:
            raise ImporterError(f"--archive {path} does not exist")
        if root not in roots:
            roots.append(root)
    return roots


def _find_or_download(
    options: ImportOptions, specs: Sequence[archives.ArchiveSpec]
) -> List[str]:
    found = []
    for spec in specs:
        local = os.path.join(options.target_dir, spec.filename)
        if os.path.isfile(local):
            found.append(local)
        elif options.download and spec.url:
            found.append(
                archives.download(spec, options.target_dir, options.show_progressbar)
            )
        else:
            logging.info("%s not found in %s", spec.filename, options.target_dir)
    if not found:
        names = ", ".join(spec.filename for spec in specs) or "the corpus"
        raise ImporterError(
            f"none of {names} is in {options.target_dir}; pass --archive PATH (an "
            "archive or an extracted directory) or --download"
        )
    return found


def run_importer(
    iter_samples: Callable[[str], Iterable[RawSample]],
    options: ImportOptions,
    specs: Sequence[archives.ArchiveSpec] = (),
    convert: Converter = convert_to_wav,
) -> ImportReport:
    """Import a corpus: sources, transcripts, conversion, CSVs; returns the report."""
    os.makedirs(os.path.join(options.target_dir, options.wav_subdir), exist_ok=True)
    alphabet = load_alphabet(options.alphabet) if options.alphabet else None
    report = ImportReport()
    rows: List[Tuple[RawSample, str, str]] = []  # (raw, clean text, dst)
    targets: Dict[str, Dict[str, Target]] = collections.defaultdict(dict)
    index = SourceIndex(os.path.join(options.target_dir, options.wav_subdir))
    keys: Dict[str, SourceKey] = {}  # dst -> the source cut it gets in this run
    taken: Dict[str, Tuple] = {}  # dst -> claim, for unique_dst
    seen = set()
    rate = options.features.audio_sample_rate
    for root in prepare_sources(options, specs):
        for raw in iter_samples(root):
            text, reason = clean_transcript(
                raw.transcript, alphabet, options.normalize, options.filter_alphabet
            )
            if reason is None and (raw.split, raw.sample_id) in seen:
                reason = DUPLICATE
            if reason is not None:
                report.skip(reason, raw.sample_id)
                continue
            seen.add((raw.split, raw.sample_id))
            key = source_key(raw.audio_path, raw.start_s, raw.end_s, rate)
            dst = unique_dst(_wav_path(options, raw.sample_id), key, index, taken)
            taken[dst], keys[dst] = key.claim, key
            needed = required_frames(text, alphabet)
            old = targets[raw.audio_path].get(dst)
            if old is None or old.min_frames < needed:
                reusable = index.key_of(dst) == key
                targets[raw.audio_path][dst] = Target(
                    dst, raw.start_s, raw.end_s, needed, reusable
                )
            rows.append((raw, text, dst))
    max_samples = int(options.max_duration * rate)
    jobs = [
        Job(src, tuple(by_dst.values()), options.features, max_samples)
        for src, by_dst in targets.items()
    ]
    outcomes = convert_all(
        jobs,
        options.workers,
        options.show_progressbar,
        convert,
        on_converted=lambda outcome: index.record(outcome.dst, keys[outcome.dst]),
    )
    _write_csvs(rows, outcomes, alphabet, options, report)
    logging.info("import report:\n%s", report.format())
    return report


def walk(root: str) -> List[Tuple[str, List[str], List[str]]]:
    """``sorted(os.walk(root))``, but an unreadable directory is an error, not a gap.

    ``os.walk`` skips what it cannot list, so a corpus with one unreadable folder was
    imported without its samples and exit status 0 (issue 11, case 8).

    Raises:
        ImporterError: naming every directory that could not be read, and the fix.
    """
    errors: List[OSError] = []
    found = sorted(os.walk(root, onerror=errors.append))
    if errors:
        listed = "; ".join(f"{e.filename} ({e.strerror or e})" for e in errors[:10])
        more = f" and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ImporterError(
            f"cannot read {len(errors)} director{'y' if len(errors) == 1 else 'ies'} "
            f"under {root}: {listed}{more}; their samples would be missing. Fix the "
            f"permissions (e.g. chmod -R u+rX {root}) and run again"
        )
    return found


def _wav_path(options: ImportOptions, sample_id: str) -> str:
    safe = re.sub(r"[^\w.\-]", "_", sample_id)
    return os.path.join(options.target_dir, options.wav_subdir, safe + ".wav")


def _write_csvs(
    rows: Sequence[Tuple[RawSample, str, str]],
    outcomes: Dict[str, Outcome],
    alphabet: Optional[Alphabet],
    options: ImportOptions,
    report: ImportReport,
) -> None:
    by_split: Dict[str, List[Tuple[str, int, str]]] = collections.defaultdict(list)
    rate = options.features.audio_sample_rate
    for raw, text, dst in rows:
        outcome = outcomes[dst]
        reason = outcome.reason
        if reason is None and options.features.n_frames(outcome.n_samples) < (
            required_frames(text, alphabet)
        ):
            reason = CTC_INFEASIBLE  # another transcript of the same audio was shorter
        if reason is not None:
            report.skip(reason, raw.sample_id)
            continue
        if alphabet is not None and not alphabet.can_encode(text):
            report.n_out_of_alphabet_kept += 1
        rel = os.path.relpath(dst, options.target_dir)
        by_split[raw.split].append((rel, os.path.getsize(dst), text))
        report.kept[raw.split] += 1
        report.duration_s[raw.split] += outcome.n_samples / rate
    report.n_converted = sum(1 for o in outcomes.values() if o.converted)
    report.n_reused = sum(
        1 for o in outcomes.values() if not o.converted and o.n_samples > 0
    )
    for split, split_rows in by_split.items():
        path = os.path.join(options.target_dir, f"{split}.csv")
        write_csv(path, split_rows)
        report.csv_files[split] = path


def write_csv(path: str, rows: Iterable[Tuple[str, int, str]]) -> None:
    """Write a sample CSV atomically (temporary file, then rename)."""
    with atomic_write(path, newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
