#!/usr/bin/env python3
"""Package a KenLM binary, its vocabulary and the model's alphabet into one ``.scorer``.

    python native_client/generate_scorer_package.py --alphabet data/alphabet.txt \
        --lm lm/lm.binary --vocab lm/vocab-500000.txt --package kenlm.scorer \
        --default_alpha 0.931289039105002 --default_beta 1.1834137581510284

DeepSpeech's ``generate_scorer_package`` flags. The package records the alphabet, so a
model with another alphabet refuses it instead of decoding garbage; see
``native_client/ctcdecode/scorer_package.py`` for the format and doc/SCORER.rst for
the whole LM pipeline. ``--package_format deepspeech-0.9`` writes DeepSpeech 0.9's own
format instead (native_client/ctcdecode/ds09_scorer.py), which a 0.9 client loads.
``--force_bytes_output_mode`` builds either format for a ``--bytes_output_mode`` model.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from ctcdecode import (  # noqa: E402
    AlphabetError,
    UTF8Alphabet,
    load_alphabet,
)
from ctcdecode.scorer_package import (  # noqa: E402
    KIND_DS09,
    KIND_NATIVE,
    ScorerError,
    looks_character_based,
    read_scorer_package,
    write_ds09_package,
    write_scorer_package,
)

# DeepSpeech 0.9's English defaults (lm_optimizer.py on LibriSpeech dev-clean).
DEFAULT_ALPHA = 0.931289039105002
DEFAULT_BETA = 1.1834137581510284


def read_vocab(path: str) -> List[str]:
    """Whitespace-separated words of ``path`` in file order (vocab-<k>.txt format)."""
    with open(path, encoding="utf-8") as fin:
        return fin.read().split()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--alphabet",
        default="",
        help="alphabet.txt the acoustic model was trained with",
    )
    parser.add_argument("--lm", required=True, help="KenLM binary (lm.binary)")
    parser.add_argument(
        "--vocab",
        required=True,
        help="vocabulary file (vocab-<k>.txt), words separated by " "whitespace",
    )
    parser.add_argument("--package", required=True, help="the .scorer file to write")
    parser.add_argument(
        "--default_alpha",
        type=float,
        default=DEFAULT_ALPHA,
        help="LM weight stored as the scorer's default",
    )
    parser.add_argument(
        "--default_beta",
        type=float,
        default=DEFAULT_BETA,
        help="word insertion bonus stored as the scorer's default",
    )
    parser.add_argument(
        "--force_bytes_output_mode",
        nargs="?",
        const=True,
        default=None,
        type=_boolean,
        help="the model outputs UTF-8 bytes (--bytes_output_mode; no --alphabet "
        "needed). Accepts DeepSpeech 0.9's '--force_bytes_output_mode true|false'. "
        "Left out without --alphabet, it is inferred from the vocabulary as 0.9 "
        "did: one character per entry means bytes output mode",
    )
    parser.add_argument(
        "--package_format",
        choices=(KIND_NATIVE, KIND_DS09),
        default=KIND_NATIVE,
        help="native: this project's checked format (records the alphabet); "
        "deepspeech-0.9: DeepSpeech 0.9's format, for 0.9 clients (needs an LM built "
        "with build_binary -v, as data/lm/generate_lm.py does)",
    )
    return parser.parse_args(argv)


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "y"):
        return True
    if value in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        vocab = read_vocab(args.vocab)
        bytes_mode = args.force_bytes_output_mode
        if bytes_mode is None and not args.alphabet:
            bytes_mode = looks_character_based(vocab)
            print(
                "--force_bytes_output_mode not given: the vocabulary "
                f"{'looks' if bytes_mode else 'does not look'} character based, "
                f"so bytes output mode is {'on' if bytes_mode else 'off'}",
                file=sys.stderr,
            )
            if not bytes_mode:
                print(
                    "error: give --alphabet (the model's alphabet.txt), or "
                    "--force_bytes_output_mode for a bytes output mode model",
                    file=sys.stderr,
                )
                return 1
        if bytes_mode and args.alphabet:
            print(
                f"note: bytes output mode ignores --alphabet {args.alphabet}",
                file=sys.stderr,
            )
        alphabet = UTF8Alphabet() if bytes_mode else load_alphabet(args.alphabet)
        if args.package_format == KIND_DS09:
            write_ds09_package(
                args.package,
                args.lm,
                vocab,
                alphabet,
                args.default_alpha,
                args.default_beta,
            )
        else:
            write_scorer_package(
                args.package,
                args.lm,
                vocab,
                alphabet,
                args.default_alpha,
                args.default_beta,
                isinstance(alphabet, UTF8Alphabet),
            )
        # proves it loads back
        package = read_scorer_package(args.package, alphabet=alphabet)
    except (ScorerError, AlphabetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    mode = (
        "UTF-8 bytes output mode"
        if package.bytes_output_mode
        else f"alphabet {package.alphabet_sha256[:12]}"
    )
    print(
        f"wrote {args.package}: {len(package.vocab)} words, {mode} "
        f"({package.alphabet.size()} labels), "
        f"default alpha {package.default_alpha:g}, beta {package.default_beta:g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
