"""Which characters do the transcripts of some CSVs use? Build or check an alphabet.

    python bin/check_characters.py -csv train.csv,dev.csv              # counts
    python bin/check_characters.py -csv train.csv -alpha > alphabet.txt
    python bin/check_characters.py -csv train.csv --alphabet data/alphabet.txt

Run this before training on a new corpus: a character missing from the alphabet makes
the trainer skip (or refuse) every row that uses it, and a stray one (a non-breaking
space, a curly apostrophe) silently adds an output class. This module is
the pure library part (:func:`count_characters`, :func:`format_report`); the command
line is ``bin/check_characters.py``.
"""

from __future__ import annotations

import collections
import unicodedata
from dataclasses import dataclass, field
from typing import Counter, Dict, List, Optional, Sequence, Tuple

from ctcdecode import Alphabet
from util.samples import read_csv_rows

N_EXAMPLES = 3  # example rows shown per unknown character


@dataclass
class CharacterReport:
    """Character counts over the transcripts and, given an alphabet, what it lacks."""

    counts: Counter[str] = field(default_factory=collections.Counter)
    n_rows: int = 0
    # unknown character -> [(csv path, 1-based line, transcript)]
    unknown: Dict[str, List[Tuple[str, int, str]]] = field(default_factory=dict)
    n_rows_unknown: int = 0


def count_characters(
    csv_paths: Sequence[str], alphabet: Optional[Alphabet] = None
) -> CharacterReport:
    """Count the characters of every ``transcript`` and collect the unknown ones."""
    report = CharacterReport()
    for path in csv_paths:
        for row in read_csv_rows(path, required=("transcript",)):
            text = row.transcript
            report.n_rows += 1
            report.counts.update(text)
            missing = alphabet.unknown_chars(text) if alphabet is not None else []
            report.n_rows_unknown += bool(missing)
            for char in missing:
                shown = report.unknown.setdefault(char, [])
                if len(shown) < N_EXAMPLES:
                    shown.append((path, row.row, text))
    return report


def alphabet_from_counts(counts: Counter[str]) -> Alphabet:
    """An alphabet of every character seen, in code point order."""
    return Alphabet.from_symbols(sorted(counts))


def _name(char: str) -> str:
    return unicodedata.name(char, f"U+{ord(char):04X}")


def format_report(report: CharacterReport) -> str:
    """Counts per character (most frequent first), then the unknown ones."""
    lines = [f"{report.n_rows} transcripts, {len(report.counts)} distinct characters:"]
    for char, n in report.counts.most_common():
        lines.append(f"  {char!r:8} {n:>10}  {_name(char)}")
    if report.unknown:
        lines.append(
            f"{len(report.unknown)} characters are not in the alphabet "
            f"({report.n_rows_unknown} transcripts use them):"
        )
        for char in sorted(report.unknown, key=lambda c: -report.counts[c]):
            lines.append(f"  {char!r} {_name(char)}: {report.counts[char]} times, e.g.")
            lines += [f"    {p}:{k}: {t}" for p, k, t in report.unknown[char]]
    return "\n".join(lines)
