#!/usr/bin/env python3
"""Tune the scorer's lm_alpha/lm_beta on test sets with optuna (DeepSpeech's tool).

    python lm_optimizer.py --test_files dev.csv --checkpoint_dir ckpt \
        --scorer_path kenlm.scorer --write_scorer_defaults

It runs the acoustic model over ``--test_files`` once and keeps the softmax outputs
in memory; each optuna trial only re-runs the beam search with its (alpha, beta), in
``--decoder_processes`` worker processes that received the outputs once. DeepSpeech's
tool re-ran the whole test pass, acoustic model included, for every trial. Trial 0 is
the scorer's current defaults, so the result is never worse than them. The best pair is
printed, saved as JSON (``--lm_optimizer_output_file``), and with
``--write_scorer_defaults`` stored in the scorer package as its new defaults.

This file is an edge like DeepSpeech.py: it parses DeepSpeech's flags (defined by
importing DeepSpeech.py, the only importer of util/flags.py) plus its own, builds the
Config once and passes plain values inward.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

# DeepSpeech 0.9 ran 2400 trials (about 7 h at 10 s per trial). The search has two
# parameters and TPE's best stops moving after a few dozen trials (bench/README.md,
# "lm_optimizer trials"), so 100 is the default; doc/SCORER.rst gives the guidance.
DEFAULT_N_TRIALS = 100
DEFAULT_ALPHA_MAX = 5.0
DEFAULT_BETA_MAX = 5.0
OUTPUT_FILE_NAME = "lm_optimizer.json"  # in the checkpoint dir unless given
_CHUNKS_PER_PROCESS = 4  # work items per worker and trial, for load balance
_ABSL_LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}  # --log_level


@dataclass(frozen=True)
class TuneSettings:
    """The search: trials, the box [0, max] for alpha and beta, where results go."""

    n_trials: int = DEFAULT_N_TRIALS
    lm_alpha_max: float = DEFAULT_ALPHA_MAX
    lm_beta_max: float = DEFAULT_BETA_MAX
    seed: int = 4568
    output_file: str = ""
    write_scorer_defaults: bool = False
    show_progressbar: bool = True  # --show_progressbar: a bar on a terminal

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError("--n_trials must be >= 1")
        if self.lm_alpha_max < 0 or self.lm_beta_max < 0:
            raise ValueError("--lm_alpha_max and --lm_beta_max must be >= 0")


@dataclass(frozen=True)
class Utterance:
    """One cached acoustic output. probs : float32 [T, n_classes], T = valid frames."""

    probs: np.ndarray
    transcript: str


@dataclass(frozen=True)
class TuneResult:
    lm_alpha: float
    lm_beta: float
    wer: float
    n_trials: int
    seconds_per_trial: float


# -- acoustic outputs (the only TensorFlow part) ------------------------------------


def acoustic_outputs(cfg: Any, alphabet: Any) -> List[Utterance]:
    """Softmax outputs of the checkpoint on every ``--test_files`` utterance, once."""
    from util import distributed, training
    from util.evaluate import predict

    session = training.build_session(cfg, alphabet, distributed.make_strategy([]))
    session.checkpoints.restore_for_evaluation()
    sets = training.load_sets(cfg.data.test_files, cfg, alphabet, cfg.data.limit_test)
    return [
        Utterance(p.probs, p.sample.transcript)
        for sample_set in sets
        for batch in predict(
            session.steps, sample_set.samples, cfg, f"Outputs {sample_set.name}"
        )
        for p in batch
    ]


# -- re-decoding per trial ------------------------------------------------------------


class _TrialSearch:
    """Beam search of the cached outputs at any (alpha, beta); one per process."""

    def __init__(
        self, probs: Sequence[np.ndarray], alphabet: Any, decoder_cfg: Any, scorer: Any
    ) -> None:
        self.probs = list(probs)
        self.alphabet = alphabet
        self.beam_width = decoder_cfg.beam_width
        self.cutoff_prob = decoder_cfg.cutoff_prob
        self.cutoff_top_n = decoder_cfg.cutoff_top_n
        self.scorer = scorer

    def decode(self, alpha: float, beta: float, indices: Sequence[int]) -> List[str]:
        from ctcdecode import ctc_beam_search_decoder

        self.scorer.reset_params(alpha, beta)  # the LM and trie stay loaded
        texts = []
        for i in indices:
            hyps = ctc_beam_search_decoder(
                self.probs[i], self.alphabet, self.beam_width, self.cutoff_prob,
                self.cutoff_top_n, scorer=self.scorer,
            )  # fmt: skip
            texts.append(hyps[0].text if hyps else "")
        return texts


class TrialDecoder:
    """Decodes all cached outputs per trial, in ``num_processes`` worker processes.

    The workers are spawned once and receive the outputs and the scorer once (each
    loads the LM once); a trial sends them only (alpha, beta, utterance indices).
    flashlight's decoders hold the GIL, hence processes, not threads.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        alphabet: Any,
        decoder_cfg: Any,
        scorer: Any,
        num_processes: int,
    ) -> None:
        from ctcdecode.pool import WorkerPool

        probs = [u.probs for u in utterances]
        self.n_utterances = len(probs)
        self.num_processes = max(1, min(num_processes, len(probs)))
        self._pool = WorkerPool(
            _TrialSearch(probs, alphabet, decoder_cfg, scorer), self.num_processes
        )
        # Longest first, dealt round-robin: every chunk gets a similar amount of work.
        order = sorted(range(len(probs)), key=lambda i: -len(probs[i]))
        n_chunks = (
            1 if self.num_processes == 1 else self.num_processes * _CHUNKS_PER_PROCESS
        )
        self._chunks = [c for c in (order[k::n_chunks] for k in range(n_chunks)) if c]

    def decode(self, alpha: float, beta: float) -> List[str]:
        """Best transcript of every utterance, in input order."""
        tasks = [(alpha, beta, chunk) for chunk in self._chunks]
        texts: List[str] = [""] * self.n_utterances
        for chunk, chunk_texts in zip(self._chunks, self._pool.map("decode", tasks)):
            for i, text in zip(chunk, chunk_texts):
                texts[i] = text
        return texts

    def close(self) -> None:
        self._pool.close()


def corpus_wer(transcripts: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Total word edit distance / total reference words (not capped at 1).

    The same micro average as the test report, without its cap, so that the search
    can still tell two bad settings apart.
    """
    from util.evaluate_tools import word_errors

    distance = length = 0
    for ref, hyp in zip(transcripts, hypotheses):
        d, n = word_errors(ref, hyp)
        distance, length = distance + d, length + n
    return distance / max(length, 1)


def optimize(
    decoder: TrialDecoder,
    transcripts: Sequence[str],
    settings: TuneSettings,
    start: Optional[Tuple[float, float]] = None,
) -> TuneResult:
    """Minimise WER over (alpha, beta) in [0, max]^2 with optuna's TPE sampler.

    ``start`` (the scorer's current defaults) is tried first when inside the box.
    Progress: a bar (or a log line every 30 s) with the best WER so far; each
    trial's (alpha, beta, WER) at DEBUG (``--log_level 0``). Optuna's own per-trial
    INFO lines are silenced while it runs.
    """
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=settings.seed),
        )
        began = time.perf_counter()
        _search(study, decoder, transcripts, settings, start)
        elapsed = time.perf_counter() - began
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = study.best_trial
    return TuneResult(
        lm_alpha=float(best.params["lm_alpha"]),
        lm_beta=float(best.params["lm_beta"]),
        wer=float(best.value),
        n_trials=len(study.trials),
        seconds_per_trial=elapsed / max(len(study.trials), 1),
    )


def _search(study: Any, decoder, transcripts, settings, start) -> None:
    """Run the trials of :func:`optimize` on ``study``."""
    from absl import logging

    from util.progress import Progress

    if start is not None:
        alpha, beta = start
        if 0 <= alpha <= settings.lm_alpha_max and 0 <= beta <= settings.lm_beta_max:
            study.enqueue_trial({"lm_alpha": alpha, "lm_beta": beta})

    def objective(trial: Any) -> float:  # optuna.Trial
        alpha = trial.suggest_float("lm_alpha", 0.0, settings.lm_alpha_max)
        beta = trial.suggest_float("lm_beta", 0.0, settings.lm_beta_max)
        return corpus_wer(transcripts, decoder.decode(alpha, beta))

    progress = Progress(
        "lm_optimizer trials", settings.n_trials, settings.show_progressbar
    )

    def report(study, trial) -> None:
        logging.debug(
            "trial %d: lm_alpha %.4f, lm_beta %.4f, WER %.4f",
            trial.number, trial.params["lm_alpha"], trial.params["lm_beta"],
            trial.value,
        )  # fmt: skip
        progress.update(trial.number + 1, best_wer=study.best_value)

    study.optimize(objective, n_trials=settings.n_trials, callbacks=[report])
    progress.finish()


def write_result(path: str, result: TuneResult, scorer_path: str) -> None:
    """The best pair as JSON, written atomically."""
    from ctcdecode.fileio import atomic_write_text

    record = {**result.__dict__, "scorer_path": scorer_path}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def run(cfg: Any, settings: TuneSettings) -> TuneResult:
    """Acoustic outputs once -> optuna search -> JSON (+ scorer defaults)."""
    from ctcdecode import Scorer, output_alphabet
    from ctcdecode.scorer_package import rewrite_defaults
    from util import checkpoints

    scorer_path = cfg.decoder.scorer_path
    if not scorer_path:
        raise ValueError("lm_optimizer.py needs --scorer_path (the scorer to tune)")
    if not cfg.data.test_files:
        raise ValueError("lm_optimizer.py needs --test_files (the sets to tune on)")
    cfg, alphabet = checkpoints.as_trained(
        cfg, output_alphabet(cfg.data.alphabet_config_path, cfg.data.bytes_output_mode)
    )
    scorer = Scorer(None, None, scorer_path, alphabet)  # checks the alphabet first
    start = (scorer.alpha, scorer.beta)
    utterances = acoustic_outputs(cfg, alphabet)
    if not utterances:
        raise ValueError(f"no usable utterance in {', '.join(cfg.data.test_files)}")
    processes = cfg.decoder.decoder_processes or os.cpu_count() or 1
    decoder = TrialDecoder(utterances, alphabet, cfg.decoder, scorer, processes)
    try:
        result = optimize(decoder, [u.transcript for u in utterances], settings, start)
    finally:
        decoder.close()
    output = settings.output_file or os.path.join(
        cfg.checkpoint.load_checkpoint_dir, OUTPUT_FILE_NAME
    )
    write_result(output, result, scorer_path)
    if settings.write_scorer_defaults:
        rewrite_defaults(scorer_path, result.lm_alpha, result.lm_beta)
    return result


# -- command line ---------------------------------------------------------------------


def define_optimizer_flags() -> None:
    """lm_optimizer.py's own flags, next to DeepSpeech's (util/flags.py)."""
    from absl import flags

    # --n_trials, --lm_alpha_max, --lm_beta_max: DeepSpeech's flags (util/flags.py).
    flags.DEFINE_boolean(
        "write_scorer_defaults",
        False,
        "store the best pair in the --scorer_path package as its default "
        "lm_alpha/lm_beta",
    )
    flags.DEFINE_string(
        "lm_optimizer_output_file",
        "",
        "write the best pair as JSON here (default: lm_optimizer.json in the "
        "checkpoint dir)",
    )


def main(argv: Sequence[str]) -> int:
    from absl import app, flags, logging

    from util.config import Config

    del argv
    values = flags.FLAGS.flag_values_dict()
    logging.set_verbosity(_ABSL_LEVELS[values["log_level"]])
    try:
        cfg = Config.from_flags(values)
        settings = TuneSettings(
            n_trials=values["n_trials"],
            lm_alpha_max=values["lm_alpha_max"],
            lm_beta_max=values["lm_beta_max"],
            seed=cfg.train.random_seed,
            output_file=values["lm_optimizer_output_file"],
            write_scorer_defaults=values["write_scorer_defaults"],
            show_progressbar=cfg.train.show_progressbar,
        )
    except ValueError as err:
        raise app.UsageError(str(err))
    from util import devices

    threads = devices.set_threads(  # the CPU settings DeepSpeech.py's import chose
        cfg.device.inter_op_parallelism_threads, cfg.device.intra_op_parallelism_threads
    )
    logging.info("%s", threads.summary())
    try:
        result = run(cfg, settings)
    except (ValueError, OSError) as err:
        logging.error("%s: %s", type(err).__name__, err)
        return 1
    print(
        f"Best params: lm_alpha={result.lm_alpha} and lm_beta={result.lm_beta} with "
        f"WER={result.wer:.4f} ({result.n_trials} trials, "
        f"{result.seconds_per_trial:.2f} s per trial)"
    )
    if settings.write_scorer_defaults:
        print(f"stored them as the defaults of {cfg.decoder.scorer_path}")
    return 0


if __name__ == "__main__":
    from absl import app

    # DeepSpeech.py owns DeepSpeech's flags (the only importer of util/flags.py):
    # importing it defines them and quiets TensorFlow's C++ logs before TF loads.
    import DeepSpeech  # noqa: F401

    define_optimizer_flags()
    app.run(main, argv=sys.argv)
