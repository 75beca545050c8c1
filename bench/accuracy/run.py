"""Held-out-speaker accuracy benchmark: build the corpus, train, test, print the table.

    python bench/accuracy/run.py                       # the small-data recipe
    python bench/accuracy/run.py --recipes default,small
    python bench/accuracy/run.py --ablate "no-aug=--without augment"

Needs the synthesis engines (``apt-get install`` corpus.PACKAGES, the last ones from
Debian's contrib and non-free sections; doc/ACCURACY.rst) and the KenLM tools (``make
kenlm``). The corpus recipe is in corpus.py and doc/ACCURACY.rst. Each recipe trains
from scratch in ``<work>/<recipe>``, keeps the checkpoint of the best dev loss (dev =
held-out dev voices, never the test voices) and is tested on it, greedy and with a
scorer built from the training sentences only (alpha/beta: ``--lm_alpha``/``--lm_beta``
below, or tuned on the dev set with ``--tune_lm TRIALS``, lm_optimizer.py). Results go
to stdout as a table (and a second one of the clean test set per held-out engine) and
to ``<work>/results.json``.
"""

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import corpus  # noqa: E402

TEST_SETS = ("test-clean", "test-noise", "test-reverb", "test-seen")

# The common geometry of every recipe: batch, epochs cap, the cache, quiet output.
COMMON = (
    "--train_batch_size 8 --dev_batch_size 32 --test_batch_size 32 "
    "--show_progressbar false --checkpoint_secs 100000 --max_to_keep 1"
)
# Today's defaults (DeepSpeech 0.9's recipe: raw MFCCs, dropout 0.05, lr 0.001, no
# augmentation), with the width and epochs the benchmark's time budget allows.
DEFAULT = "--n_hidden 128 --epochs 15"
RECIPES = {
    "default": DEFAULT,
    # bin/run-small-data.sh's flags: kept in step by tests/test_accuracy_corpus.py
    "small": "@bin/run-small-data.sh",
}


def recipe_flags(spec: str):
    """Flags of a recipe: a flag string, or ``@script`` for the flags a run script
    passes (its ``RECIPE=(...)`` array)."""
    if spec.startswith("@"):
        return small_data_flags(os.path.join(ROOT, spec[1:]))
    return shlex.split(spec)


def small_data_flags(script: str):
    """The flags in the ``RECIPE=( ... )`` array of bin/run-small-data.sh."""
    with open(script, encoding="utf-8") as f:
        text = f.read()
    start = text.index("RECIPE=(") + len("RECIPE=(")
    body = text[start : text.index(")", start)]
    return shlex.split(body, comments=True)


def cacheable(augment: str) -> bool:
    """Whether an --augment spec works after the feature cache (features domain)."""
    kind = augment.split("[")[0]
    return "domain=features" in augment or (
        kind in ("add", "multiply") and "domain=" not in augment
    )


def ablate(recipe, changes):
    """``recipe`` with ``changes`` appended (later flags win); ``--without NAME`` in
    ``changes`` removes every ``--NAME VALUE`` from the recipe instead (for repeated
    flags such as --augment, which appending cannot undo)."""
    out = list(recipe)
    rest = []
    it = iter(changes)
    for token in it:
        if token == "--without":
            drop = "--" + next(it)
            kept = []
            i = 0
            while i < len(out):
                if out[i] == drop:
                    i += 2
                else:
                    kept.append(out[i])
                    i += 1
            out = kept
        else:
            rest.append(token)
    return out + rest


def build_scorer(corpus_dir: str, out_dir: str) -> str:
    scorer = os.path.join(out_dir, "train.scorer")
    if os.path.exists(scorer):
        return scorer
    lm_dir = os.path.join(out_dir, "lm")
    py = sys.executable
    subprocess.run(
        [py, "data/lm/generate_lm.py",
         "--input_txt", os.path.join(corpus_dir, "train.txt"),
         "--output_dir", lm_dir, "--top_k", "100000", "--arpa_order", "3",
         "--max_arpa_memory", "64M", "--binary_type", "trie", "--discount_fallback",
         "--alphabet", "data/alphabet.txt", "--show_progressbar", "false"],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    vocab = [f for f in os.listdir(lm_dir) if f.startswith("vocab-")][0]
    subprocess.run(
        [py, "native_client/generate_scorer_package.py", "--alphabet",
         "data/alphabet.txt", "--lm", os.path.join(lm_dir, "lm.binary"), "--vocab",
         os.path.join(lm_dir, vocab), "--package", scorer, "--default_alpha", "0.93",
         "--default_beta", "1.18"],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return scorer


def deepspeech(flags, log: str, script: str = "DeepSpeech.py") -> float:
    """Run DeepSpeech.py (or ``script``) with ``flags`` (output to ``log``); its wall
    time in s."""
    start = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {script} " + shlex.join(flags) + "\n")
        f.flush()
        proc = subprocess.run(
            [sys.executable, script] + flags, cwd=ROOT, stdout=f,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"{script} failed (exit {proc.returncode}); see {log}")
    return time.time() - start


def tune_lm(base, flags, csvs, scorer, run_dir, log, trials, beam_width):
    """(alpha, beta) chosen by lm_optimizer.py on the dev set, never the test voices."""
    out = os.path.join(run_dir, f"lm_optimizer-{trials}-beam{beam_width}.json")
    if not os.path.exists(out):
        deepspeech(
            base + ["--test_files", csvs["dev"], "--load_evaluate", "best",
                    "--scorer_path", scorer, "--n_trials", str(trials),
                    "--beam_width", str(beam_width),
                    "--lm_optimizer_output_file", out] + flags,
            log, script="lm_optimizer.py",
        )  # fmt: skip
    with open(out, encoding="utf-8") as f:
        best = json.load(f)
    return best["lm_alpha"], best["lm_beta"]


def run_recipe(name, flags, csvs, scorer, work, args):
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir, exist_ok=True)
    log = os.path.join(run_dir, "log.txt")
    ckpt = os.path.join(run_dir, "checkpoints")
    base = shlex.split(COMMON)
    base += ["--checkpoint_dir", ckpt, "--random_seed", str(args.seed)]
    if all(cacheable(a) for f, a in zip(flags, flags[1:]) if f == "--augment"):
        base += ["--feature_cache", os.path.join(work, "feature_cache")]
    train_s = 0.0
    if not os.path.exists(os.path.join(run_dir, "trained")):
        train_s = deepspeech(
            base + ["--train_files", csvs["train"], "--dev_files", csvs["dev"]] + flags,
            log,
        )
        with open(os.path.join(run_dir, "trained"), "w") as f:
            f.write(f"{train_s:.1f}\n")
    else:
        with open(os.path.join(run_dir, "trained")) as f:
            train_s = float(f.read())
    results = {"recipe": name, "flags": flags, "train_wall_s": round(train_s, 1)}
    alpha, beta = args.lm_alpha, args.lm_beta
    if args.tune_lm:
        alpha, beta = tune_lm(
            base, flags, csvs, scorer, run_dir, log, args.tune_lm, args.beam_width
        )
    results["lm_alpha"], results["lm_beta"] = alpha, beta
    tests = ",".join(csvs[t] for t in TEST_SETS)
    voices = read_voices(os.path.dirname(csvs["train"]), args.seed, args.more_engines)
    for decoding in ("greedy", "scorer"):
        tag = "greedy" if decoding == "greedy" else f"scorer-a{alpha:g}-b{beta:g}"
        out = os.path.join(run_dir, f"test-{tag}.json")
        extra = ["--scorer_path", scorer, "--lm_alpha", str(alpha),
                 "--lm_beta", str(beta), "--beam_width", str(args.beam_width)] \
            if decoding == "scorer" else ["--scorer_path", ""]  # fmt: skip
        test = ["--test_files", tests, "--test_output_file", out, "--load_evaluate",
                "best", "--limit_test", str(args.limit_test)]  # fmt: skip
        if not os.path.exists(out):  # a finished test is not redone
            deepspeech(base + test + flags + extra, log)
        results[decoding] = score(out, csvs)
        results[decoding + "_by_engine"] = score_by_engine(out, voices)
    return results


def read_voices(corpus_dir: str, seed: int, more_engines: bool = True):
    """{WAV file name: voice id} from the corpus's voices.csv (written for a corpus
    built before the manifest existed: the plan is a pure function of the seed)."""
    path = os.path.join(corpus_dir, "voices.csv")
    if not os.path.exists(path):
        plan = corpus.make_plan(seed, more_engines=more_engines)[0]
        corpus.write_manifest(corpus_dir, plan)
    with open(path, encoding="utf-8", newline="") as f:
        return {row["wav_filename"]: row["voice"] for row in csv.DictReader(f)}


def read_rows(path):
    """{WAV file name: result row} of a --test_output_file JSON."""
    with open(path, encoding="utf-8") as f:
        return {os.path.basename(r["wav_filename"]): r for r in json.load(f)}


def error_rates(rows):
    """(WER, CER, n) of result rows: corpus-level rates (edit distances summed over
    the rows / reference lengths summed), with the project's own edit distances."""
    from util.evaluate_tools import char_errors, word_errors

    w = [word_errors(r["src"], r["res"]) for r in rows]
    c = [char_errors(r["src"], r["res"]) for r in rows]
    w_err, words = sum(d for d, _ in w), sum(n for _, n in w)
    c_err, chars = sum(d for d, _ in c), sum(n for _, n in c)
    return w_err / max(words, 1), c_err / max(chars, 1), len(rows)


def score_by_engine(path, voices):
    """{engine: (WER, CER, n)} over the clean held-out test set (test-clean-*)."""
    by_engine = {}
    for name, row in read_rows(path).items():
        if name.startswith("test-clean-"):
            by_engine.setdefault(voices[name].split(":")[0], []).append(row)
    return {e: error_rates(rows) for e, rows in sorted(by_engine.items())}


def score(path, csvs):
    """{test set: (WER, CER, n)} from a --test_output_file JSON."""
    by_file = read_rows(path)
    return {
        name: error_rates([r for f, r in by_file.items() if f.startswith(name + "-")])
        for name in TEST_SETS
    }


def format_table(all_results) -> str:
    lines = [
        "| recipe | decoding | " + " | ".join(TEST_SETS) + " | train wall |",
        "|---|---|" + "---|" * len(TEST_SETS) + "---|",
    ]
    for r in all_results:
        for decoding in ("greedy", "scorer"):
            cells = [
                f"{100 * r[decoding][t][0]:.1f} / {100 * r[decoding][t][1]:.1f}"
                for t in TEST_SETS
            ]
            lines.append(
                f"| {r['recipe']} | {decoding} | " + " | ".join(cells)
                + f" | {r['train_wall_s'] / 60:.1f} min |"
            )  # fmt: skip
    lines.append(
        "(cells: WER % / CER %; test-seen = test sentences by training voices)"
    )
    engines = sorted({e for r in all_results for e in r["greedy_by_engine"]})
    lines += [
        "",
        "| recipe | decoding | " + " | ".join(f"clean, {e}" for e in engines) + " |",
        "|---|---|" + "---|" * len(engines),
    ]
    for r in all_results:
        for decoding in ("greedy", "scorer"):
            by_engine = r[decoding + "_by_engine"]
            cells = [
                f"{100 * by_engine[e][0]:.1f} / {100 * by_engine[e][1]:.1f}"
                if e in by_engine else "-"
                for e in engines
            ]  # fmt: skip
            label = decoding if decoding == "greedy" else (
                f"scorer (alpha {r['lm_alpha']:g}, beta {r['lm_beta']:g})"
            )  # fmt: skip
            lines.append(f"| {r['recipe']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="runs/accuracy", help="corpus, runs, results")
    parser.add_argument("--recipes", default="small",
                        help="comma-separated: " + ", ".join(RECIPES))  # fmt: skip
    parser.add_argument("--ablate", action="append", default=[],
                        help="NAME=FLAGS: 'small' + FLAGS")  # fmt: skip
    parser.add_argument("--custom", action="append", default=[],
                        help="NAME=FLAGS: a recipe of its own")  # fmt: skip
    parser.add_argument("--extra", default="", help="flags appended to every recipe")
    parser.add_argument("--seed", type=int, default=1, help="corpus and training seed")
    parser.add_argument("--limit_test", type=int, default=0,
                        help="test the first N rows of each set (0: all)")  # fmt: skip
    parser.add_argument("--lm_alpha", type=float, default=0.93)
    parser.add_argument("--lm_beta", type=float, default=1.18)
    parser.add_argument("--beam_width", type=int, default=256)
    parser.add_argument("--tune_lm", type=int, default=0, metavar="TRIALS",
                        help="tune alpha/beta on the dev set with lm_optimizer.py "
                        "(TRIALS trials; 0: use --lm_alpha/--lm_beta)")  # fmt: skip
    parser.add_argument("--more_engines", action=argparse.BooleanOptionalAction,
                        default=True, help="train and dev voices of mbrola, Pico and "
                        "RHVoice too (--no-more_engines: espeak-ng and flite only, "
                        "the corpus before 2026-11-30)")  # fmt: skip
    args = parser.parse_args()
    start = time.time()
    work = os.path.abspath(args.work)
    corpus_dir = os.path.join(work, "corpus")
    if not os.path.exists(os.path.join(corpus_dir, "voices.txt")):
        print(f"building the corpus in {corpus_dir} ...", file=sys.stderr, flush=True)
        csvs = corpus.build(corpus_dir, seed=args.seed, more_engines=args.more_engines)
    else:
        csvs = {n: os.path.join(corpus_dir, f"{n}.csv")
                for n in ("train", "dev") + TEST_SETS}  # fmt: skip
    scorer = build_scorer(corpus_dir, work)
    runs = [(n, recipe_flags(RECIPES[n])) for n in args.recipes.split(",") if n]
    for spec in args.ablate:
        name, _, flags = spec.partition("=")
        runs.append((name, ablate(recipe_flags(RECIPES["small"]), shlex.split(flags))))
    for spec in args.custom:
        name, _, flags = spec.partition("=")
        runs.append((name, shlex.split(flags)))
    all_results = []
    for name, flags in runs:
        flags = flags + shlex.split(args.extra)
        print(f"training {name}: {shlex.join(flags)}", file=sys.stderr, flush=True)
        result = run_recipe(name, flags, csvs, scorer, work, args)
        all_results.append(result)
        with open(os.path.join(work, "results.json"), "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
        print(format_table([result]), file=sys.stderr, flush=True)
    print(format_table(all_results))
    print(f"wall time: {(time.time() - start) / 60:.1f} min (machine: {os.cpu_count()} "
          f"CPUs, load {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
