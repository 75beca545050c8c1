#!/usr/bin/env python3
"""How many lm_optimizer trials matter? Best WER found after N trials, several seeds.

Runs the checkpoint over ``--test_files`` once (as lm_optimizer.py does), then repeats
optuna's TPE search over (lm_alpha, lm_beta) in [0, 5]^2 with ``--seeds`` seeds for
``--max_trials`` trials each, and prints, for N in --report_at, the best corpus WER
after N trials (median and worst over the seeds) and the seconds per trial. Trial 0 is
the scorer's default pair, as in lm_optimizer.py. Results: bench/README.md. The decoder
workers import lm_optimizer by name: run with the repository root on PYTHONPATH.

    python bench/lm_optimizer_trials.py --test_files dev.csv,test.csv \
        --checkpoint_dir runs/own_data/checkpoints --scorer_path own.scorer
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from absl import app, flags

REPORT_AT = "1,10,25,50,100,200,400"


def define_bench_flags() -> None:
    flags.DEFINE_string(
        "synthetic_text",
        "",
        "instead of a checkpoint: simulated acoustic outputs for the lines of this "
        "text file (each character right with some noise, a third of them confused "
        "with another letter, as a weak model would)",
    )
    flags.DEFINE_integer("max_trials", 400, "trials per seed")
    flags.DEFINE_integer("seeds", 5, "independent searches")
    flags.DEFINE_string("report_at", REPORT_AT, "trial counts to report")


def load_script(name: str):
    """The top-level script ``<name>.py`` as a module, by path (it is no package)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and worker pickles look it up there
    spec.loader.exec_module(module)
    return module


def synthetic_utterances(path: str, alphabet, utterance_class, seed: int = 0):
    """lm_optimizer.Utterance per line: probs float32 [T, n_classes], char + blank."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = [alphabet.encode(c)[0] for c in "abcdefghijklmnopqrstuvwxyz"]
    out = []
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    for text in lines:
        rows = []
        for label in alphabet.encode(text):
            row = rng.dirichlet(np.full(alphabet.n_classes, 0.3)) * 0.2
            row[label] += 0.5
            if rng.random() < 0.33:  # confused: a wrong letter wins the frame
                row[rng.choice(letters)] += 0.6
            blank = np.full(alphabet.n_classes, 0.01)
            blank[alphabet.blank_index] = 1.0
            rows += [row / row.sum(), blank / blank.sum()]
        out.append(utterance_class(np.asarray(rows, np.float32), text))
    return out


def best_so_far(values):
    out, best = [], float("inf")
    for v in values:
        best = min(best, v)
        out.append(best)
    return out


def main(argv) -> int:
    import optuna

    lm_optimizer = load_script("lm_optimizer")
    from ctcdecode import Alphabet, Scorer
    from util import checkpoints
    from util.config import Config

    del argv
    values = flags.FLAGS.flag_values_dict()
    cfg = Config.from_flags(values)
    if values["synthetic_text"]:
        alphabet = Alphabet(cfg.data.alphabet_config_path)
        utterances = synthetic_utterances(
            values["synthetic_text"], alphabet, lm_optimizer.Utterance
        )
    else:
        cfg, alphabet = checkpoints.as_trained(
            cfg, Alphabet(cfg.data.alphabet_config_path)
        )
        utterances = lm_optimizer.acoustic_outputs(cfg, alphabet)
    scorer = Scorer(None, None, cfg.decoder.scorer_path, alphabet)
    processes = cfg.decoder.decoder_processes or os.cpu_count() or 1
    decoder = lm_optimizer.TrialDecoder(
        utterances, alphabet, cfg.decoder, scorer, processes
    )
    refs = [u.transcript for u in utterances]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    curves, seconds = [], []
    try:
        for seed in range(values["seeds"]):
            study = optuna.create_study(
                direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed)
            )
            study.enqueue_trial({"lm_alpha": scorer.alpha, "lm_beta": scorer.beta})

            def objective(trial):
                alpha = trial.suggest_float("lm_alpha", 0.0, 5.0)
                beta = trial.suggest_float("lm_beta", 0.0, 5.0)
                return lm_optimizer.corpus_wer(refs, decoder.decode(alpha, beta))

            began = time.perf_counter()
            study.optimize(objective, n_trials=values["max_trials"])
            seconds.append((time.perf_counter() - began) / values["max_trials"])
            curves.append(best_so_far([t.value for t in study.trials]))
    finally:
        decoder.close()
    print(f"{len(utterances)} utterances, {statistics.median(seconds):.3f} s per trial")
    print("| trials | best WER, median of seeds | worst seed |")
    print("|---|---|---|")
    for n in (int(x) for x in values["report_at"].split(",")):
        if n <= values["max_trials"]:
            at = [c[n - 1] for c in curves]
            print(f"| {n} | {statistics.median(at):.4f} | {max(at):.4f} |")
    return 0


if __name__ == "__main__":
    # DeepSpeech.py owns DeepSpeech's flags: loading it defines them (and quiets
    # TensorFlow's C++ logs), as lm_optimizer.py does.
    load_script("DeepSpeech")
    define_bench_flags()
    sys.exit(app.run(main))
