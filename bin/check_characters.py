#!/usr/bin/env python3
"""Which characters do the transcripts of some CSVs use? Build or check an alphabet.

    python bin/check_characters.py -csv train.csv,dev.csv              # counts
    python bin/check_characters.py -csv train.csv -alpha > alphabet.txt
    python bin/check_characters.py -csv train.csv --alphabet data/alphabet.txt

Exit status: 0 all characters known, 2 unknown characters found, 1 error.
The counting lives in util/importing/check_characters.py; this is its command line.
"""

import argparse
import sys
from typing import Optional, Sequence

from ctcdecode import load_alphabet
from util.importing.check_characters import (
    alphabet_from_counts,
    count_characters,
    format_report,
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-csv", "--csv", required=True, help="CSVs, comma-separated")
    parser.add_argument(
        "-alpha", "--alpha", action="store_true", help="write an alphabet.txt to stdout"
    )
    parser.add_argument("--alphabet", help="check the transcripts against this file")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.csv.split(",") if p.strip()]
    try:
        alphabet = load_alphabet(args.alphabet) if args.alphabet else None
        report = count_characters(paths, alphabet)
    except (ValueError, OSError) as err:
        print(f"check_characters: {err}", file=sys.stderr)
        return 1
    if args.alpha:
        print(alphabet_from_counts(report.counts).serialize(), end="")
    else:
        print(format_report(report))
    return 2 if report.unknown else 0


if __name__ == "__main__":
    sys.exit(main())
