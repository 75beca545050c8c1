"""The command line shared by every ``bin/import_<corpus>.py``: options, run, main.

:func:`main` is the one ``main`` of the seven importer scripts: each passes its
docstring (the help text), its ``iter_samples`` and, when it has corpus options, an
``add_arguments`` and a ``setup`` hook. :func:`main` is an edge (like DeepSpeech.py):
it prints the report or the error and returns the exit code; everything below it
raises and logs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple

from util.importing import archives
from util.importing.importers import (
    ImporterError,
    ImportOptions,
    RawSample,
    run_importer,
)

# -- command line ---------------------------------------------------------------------


def build_parser(description: str, epilog: str = "") -> argparse.ArgumentParser:
    """The options every importer shares; an importer adds its own to the result."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target_dir", nargs="?", help="output directory (CSVs, wav/)")
    parser.add_argument(
        "--target_dir", dest="target_dir_flag", help="same as TARGET_DIR"
    )
    parser.add_argument(
        "--archive",
        action="append",
        default=[],
        help="local archive (.tar.gz/.tgz/.tar/.zip) or extracted directory; "
        "repeatable. "
        "Default: the corpus archives found in TARGET_DIR",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="download archives missing from TARGET_DIR",
    )
    parser.add_argument("--alphabet", help="alphabet.txt to normalise/validate against")
    parser.add_argument(
        "--filter_alphabet",
        action="store_true",
        help="skip samples whose transcript has characters outside --alphabet",
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="NFKD, strip accents, lowercase, drop characters outside --alphabet",
    )
    parser.add_argument(
        "--max_duration",
        type=float,
        default=0.0,
        help="skip longer samples (s); 0 = no limit",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="conversion processes"
    )
    parser.add_argument(
        "--show_progressbar", action=argparse.BooleanOptionalAction, default=True
    )
    return parser


def options_from_args(args: argparse.Namespace, **overrides: Any) -> ImportOptions:
    """ImportOptions from parsed arguments; raises ImporterError without a target."""
    target = args.target_dir or args.target_dir_flag
    if not target:
        raise ImporterError("give the output directory: TARGET_DIR or --target_dir")
    if args.workers < 1:
        raise ImporterError("--workers must be >= 1")
    if args.filter_alphabet and not args.alphabet:
        raise ImporterError("--filter_alphabet needs --alphabet")
    values = dict(
        target_dir=os.path.abspath(target),
        archive=tuple(os.path.abspath(p) for p in args.archive),
        download=args.download,
        alphabet=args.alphabet,
        filter_alphabet=args.filter_alphabet,
        normalize=args.normalize,
        max_duration=args.max_duration,
        workers=args.workers,
        show_progressbar=args.show_progressbar,
    )
    values.update(overrides)
    return ImportOptions(**values)


def run_cli(
    iter_samples: Callable[[str], Iterable[RawSample]],
    args: argparse.Namespace,
    specs: Sequence[archives.ArchiveSpec] = (),
    **overrides: Any,
) -> Tuple[int, str]:
    """(exit code, text to show) of an importer run; ``bin/import_*.py`` prints it.

    ``overrides`` replace ImportOptions fields (e.g. the LDC93S1 importer's flat
    ``wav_subdir``). Errors come back as code 1 and a message naming the fix.
    """
    try:
        options = options_from_args(args, **overrides)
        report = run_importer(iter_samples, options, specs)
    except (ValueError, OSError) as err:
        return 1, f"error: {err}"
    return 0, report.format()


SampleSource = Callable[[str], Iterable[RawSample]]
Setup = Callable[[argparse.Namespace], Tuple[SampleSource, Sequence[Any]]]


def main(
    doc: str,
    iter_samples: SampleSource,
    argv: Optional[Sequence[str]] = None,
    specs: Sequence[archives.ArchiveSpec] = (),
    add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
    setup: Optional[Setup] = None,
    notes: Sequence[str] = (),
    **overrides: Any,
) -> int:
    """Parse the shared options (plus ``add_arguments``'), run, print; exit code.

    ``setup(args)`` (optional) returns the ``(iter_samples, specs)`` to use for these
    arguments (a corpus option picks splits or a release) and may fill in ``args``;
    a ValueError from it is printed as an error (exit code 1). ``notes``: a list the
    sample source fills while it runs (e.g. a split summary); shown before the report.
    ``overrides`` replace ImportOptions fields. The report goes to stdout, an error
    to stderr (exit code 1).
    """
    parser = build_parser(doc.splitlines()[0], doc)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if setup is not None:
        try:
            iter_samples, specs = setup(args)
        except ValueError as err:  # a bad option combination: say so, write nothing
            print(f"error: {err}", file=sys.stderr)
            return 1
    code, message = run_cli(iter_samples, args, specs, **overrides)
    if code == 0 and notes:  # lines the sample source wrote while it ran
        message = "\n".join([*notes, message])
    print(message, file=sys.stderr if code else sys.stdout)
    return code
