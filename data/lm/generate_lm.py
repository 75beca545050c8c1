#!/usr/bin/env python3
"""Build a KenLM word language model for the scorer: text -> ``lm.binary`` + vocabulary.

    python data/lm/generate_lm.py --input_txt corpus.txt.gz --output_dir lm \
        --top_k 500000 --kenlm_bins tools/kenlm/bin --arpa_order 5 \
        --max_arpa_memory 85% --arpa_prune 0|0|1 --binary_a_bits 255 \
        --binary_q_bits 8 --binary_type trie --discount_fallback

The flags are DeepSpeech's ``data/lm/generate_lm.py`` flags, plus ``--alphabet``. Steps:

1. normalise the corpus (lowercase, collapse whitespace, drop lines with characters
   outside ``--alphabet``) into ``<output_dir>/lower.txt.gz``, counting words;
2. keep the ``--top_k`` most frequent words in ``vocab-<top_k>.txt``;
3. ``lmplz`` (always with ``-S``/``-T``: without them it reserves 80 % of the RAM and
   writes temporaries to the working directory) -> ``lm.arpa``;
4. ``filter`` the ARPA to the vocabulary -> ``lm_filtered.arpa``;
5. ``build_binary`` -> ``lm.binary``, which generate_scorer_package.py packages.

``make kenlm`` builds the three KenLM tools into ``tools/kenlm/bin``.
See doc/SCORER.rst.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import io
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Counter, Dict, List, Optional, Sequence

REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
)

import progressbar  # noqa: E402

from ctcdecode import Alphabet, load_alphabet  # noqa: E402

DEFAULT_KENLM_BINS = os.path.join(REPO_ROOT, "tools", "kenlm", "bin")
KENLM_TOOLS = ("lmplz", "filter", "build_binary")
LOWER_FILE = "lower.txt.gz"
ARPA_FILE = "lm.arpa"
FILTERED_ARPA_FILE = "lm_filtered.arpa"
BINARY_FILE = "lm.binary"
_PROGRESS_EVERY = 10_000  # lines between progress-bar updates
_N_DROPPED_SHOWN = 5  # dropped lines quoted in the report
_TOOL_OUTPUT_SHOWN = 2_000  # characters of a failing tool's stderr shown


class LMBuildError(RuntimeError):
    """A step of the LM build failed; the message says which and how to fix it."""


@dataclass
class CorpusStats:
    """What normalisation kept and dropped, and the word counts of the kept lines."""

    n_lines: int = 0
    n_kept: int = 0
    n_empty: int = 0
    n_dropped: int = 0  # lines with characters outside the alphabet
    dropped_examples: List[str] = field(default_factory=list)
    counter: Counter[str] = field(default_factory=collections.Counter)


def normalise_line(line: str) -> str:
    """Lowercase and collapse runs of whitespace, as DeepSpeech's transcripts are."""
    return " ".join(line.lower().split())


def normalise_corpus(
    input_txt: str,
    output_gz: str,
    alphabet: Optional[Alphabet] = None,
    show_progress: bool = True,
) -> CorpusStats:
    """Write the normalised lines of ``input_txt`` (plain or .gz) to ``output_gz``.

    A line the alphabet cannot spell is dropped whole: deleting its odd characters
    would invent words (``naïve`` -> ``nave``) that the LM would then learn.
    """
    stats = CorpusStats()
    size = os.path.getsize(input_txt)
    bar = _progress_bar(size, show_progress)
    with (
        open(input_txt, "rb") as raw,
        gzip.open(output_gz, "wt", encoding="utf-8") as out,
    ):
        stream = gzip.open(raw) if input_txt.endswith(".gz") else raw
        for line in io.TextIOWrapper(stream, encoding="utf-8"):
            stats.n_lines += 1
            _keep_line(normalise_line(line), alphabet, stats, out)
            if bar is not None and stats.n_lines % _PROGRESS_EVERY == 0:
                bar.update(min(raw.tell(), size))  # compressed bytes for .gz input
    if bar is not None:
        bar.finish()
    return stats


def _keep_line(
    line: str, alphabet: Optional[Alphabet], stats: CorpusStats, out: IO[str]
) -> None:
    if not line:
        stats.n_empty += 1
        return
    if alphabet is not None and not alphabet.can_encode(line):
        stats.n_dropped += 1
        if len(stats.dropped_examples) < _N_DROPPED_SHOWN:
            stats.dropped_examples.append(line)
        return
    stats.n_kept += 1
    stats.counter.update(line.split())
    out.write(line + "\n")


def _progress_bar(size: int, show: bool) -> Optional[progressbar.ProgressBar]:
    if not show:
        return None
    widgets = [
        "Counting words ",
        progressbar.Percentage(),
        " ",
        progressbar.Bar(),
        " ",
        progressbar.ETA(),
    ]
    return progressbar.ProgressBar(max_value=max(size, 1), widgets=widgets).start()


def top_k_words(counter: Counter[str], top_k: int) -> List[str]:
    """The ``top_k`` most frequent words; ties broken alphabetically (reproducible)."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[:top_k]]


def write_vocab(words: Sequence[str], path: str) -> None:
    """One word per line: the format of DeepSpeech's vocab-<k>.txt and KenLM filter."""
    with open(path, "w", encoding="utf-8") as fout:
        fout.writelines(word + "\n" for word in words)


def find_kenlm_tools(kenlm_bins: str) -> Dict[str, str]:
    """{tool name: path} for lmplz, filter and build_binary in ``kenlm_bins``."""
    paths = {name: os.path.join(kenlm_bins, name) for name in KENLM_TOOLS}
    missing = [n for n, p in paths.items() if not os.access(p, os.X_OK)]
    if missing:
        raise LMBuildError(
            f"KenLM tools {missing} not found in {kenlm_bins!r}; run `make kenlm` "
            "(builds them into tools/kenlm/bin) or pass --kenlm_bins"
        )
    return paths


def run_tool(cmd: Sequence[str], stdin_path: Optional[str] = None) -> float:
    """Run one KenLM tool; returns its wall time (s). Its stderr is its progress log."""
    shown = shlex.join(cmd) + (f" < {shlex.quote(stdin_path)}" if stdin_path else "")
    print("$ " + shown, flush=True)
    start = time.perf_counter()
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(
            cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")[-_TOOL_OUTPUT_SHOWN:]
        hint = ""
        if "discount" in err.lower():
            hint = "\nsmall corpora need --discount_fallback"
        raise LMBuildError(
            f"{os.path.basename(cmd[0])} failed (exit {proc.returncode}):\n{err}{hint}"
        )
    return time.perf_counter() - start


def lmplz_command(
    args: argparse.Namespace, tools: dict, corpus: str, arpa: str
) -> list:
    cmd = [
        tools["lmplz"],
        "--order",
        str(args.arpa_order),
        "-S",
        args.max_arpa_memory,
        "-T",
        os.path.join(args.output_dir, ""),  # a prefix: the "/" keeps temps inside
        "--text",
        corpus,
        "--arpa",
        arpa,
    ]
    if args.arpa_prune:
        cmd += ["--prune", *args.arpa_prune.split("|")]
    if args.discount_fallback:
        cmd.append("--discount_fallback")
    return cmd


def build_binary_command(args: argparse.Namespace, tools: dict, arpa: str) -> list:
    cmd = [tools["build_binary"]]
    if args.binary_type == "trie":  # -a/-q only apply to (and are only valid for) trie
        cmd += ["-a", str(args.binary_a_bits), "-q", str(args.binary_q_bits)]
    cmd += ["-v", args.binary_type, arpa, os.path.join(args.output_dir, BINARY_FILE)]
    return cmd


def build_lm(args: argparse.Namespace, vocab_path: str, tools: dict) -> None:
    """lmplz -> filter -> build_binary in ``args.output_dir``."""
    corpus = os.path.join(args.output_dir, LOWER_FILE)
    arpa = os.path.join(args.output_dir, ARPA_FILE)
    filtered = os.path.join(args.output_dir, FILTERED_ARPA_FILE)
    timings = {
        "lmplz": run_tool(lmplz_command(args, tools, corpus, arpa)),
        # filter reads the vocabulary on stdin, the model from the named file.
        "filter": run_tool(
            [tools["filter"], "single", f"model:{arpa}", filtered], vocab_path
        ),
        "build_binary": run_tool(build_binary_command(args, tools, filtered)),
    }
    print("KenLM times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def report_corpus(stats: CorpusStats, vocab: Sequence[str]) -> None:
    print(
        f"{stats.n_lines} lines read, {stats.n_kept} kept, {stats.n_empty} empty, "
        f"{stats.n_dropped} dropped for characters outside the alphabet"
    )
    for line in stats.dropped_examples:
        print(f"  dropped: {line[:120]!r}")
    n_words = sum(stats.counter.values())
    covered = sum(stats.counter[w] for w in vocab)
    print(
        f"{n_words} words, {len(stats.counter)} distinct; the top {len(vocab)} cover "
        f"{100.0 * covered / max(n_words, 1):.2f} % of the corpus"
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input_txt",
        required=True,
        help="corpus, one sentence per line (plain or .gz)",
    )
    parser.add_argument("--output_dir", required=True, help="directory to write to")
    parser.add_argument(
        "--top_k", type=int, required=True, help="number of most frequent words to keep"
    )
    parser.add_argument(
        "--kenlm_bins",
        default=DEFAULT_KENLM_BINS,
        help="directory with lmplz, filter and build_binary "
        "(default: tools/kenlm/bin, built by `make kenlm`)",
    )
    parser.add_argument(
        "--arpa_order", type=int, required=True, help="order of the n-gram model"
    )
    parser.add_argument(
        "--max_arpa_memory",
        required=True,
        help="lmplz -S: memory for sorting, e.g. 85%% or 2G",
    )
    parser.add_argument(
        "--arpa_prune",
        default="",
        help="lmplz --prune thresholds per order, '|'-separated, " "e.g. 0|0|1",
    )
    parser.add_argument(
        "--binary_a_bits",
        type=int,
        default=255,
        help="build_binary -a (trie pointer compression bits)",
    )
    parser.add_argument(
        "--binary_q_bits",
        type=int,
        default=8,
        help="build_binary -q (trie probability quantisation bits)",
    )
    parser.add_argument(
        "--binary_type",
        default="trie",
        choices=["trie", "probing"],
        help="build_binary data structure",
    )
    parser.add_argument(
        "--discount_fallback",
        action="store_true",
        help="lmplz --discount_fallback (needed for small corpora)",
    )
    parser.add_argument(
        "--alphabet", default="", help="alphabet.txt: drop corpus lines it cannot spell"
    )
    parser.add_argument(
        "--show_progressbar",
        type=_bool,
        default=True,
        help="progress bar while counting words (true/false)",
    )
    args = parser.parse_args(argv)
    if args.top_k < 1 or args.arpa_order < 1:
        parser.error("--top_k and --arpa_order must be >= 1")
    return args


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        tools = find_kenlm_tools(args.kenlm_bins)
        alphabet = load_alphabet(args.alphabet) if args.alphabet else None
        os.makedirs(args.output_dir, exist_ok=True)
        stats = normalise_corpus(
            args.input_txt,
            os.path.join(args.output_dir, LOWER_FILE),
            alphabet,
            args.show_progressbar,
        )
        if not stats.n_kept:
            raise LMBuildError(f"{args.input_txt!r} has no usable line")
        vocab = top_k_words(stats.counter, args.top_k)
        vocab_path = os.path.join(args.output_dir, f"vocab-{args.top_k}.txt")
        write_vocab(vocab, vocab_path)
        report_corpus(stats, vocab)
        build_lm(args, vocab_path, tools)
    except (LMBuildError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {os.path.join(args.output_dir, BINARY_FILE)} and {vocab_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
