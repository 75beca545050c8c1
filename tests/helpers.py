"""Helpers shared by several test modules (test modules never import each other).

KenLM: tests that need ``lmplz`` call :func:`require_kenlm_bins`: without
``tools/kenlm/bin`` they skip with the fix (``make kenlm``), except under CI
(``CI=true``), where a missing build is a failure, so CI never passes by skipping.
:func:`build_tiny_lm` writes into a directory under pytest's session base temp dir and
returns early when it is complete, so every test module shares one build without module-
level state.

Also: :func:`write_bigram_arpa` (a tiny ARPA LM), :func:`run_deepspeech` (run
``DeepSpeech.py`` as a user would) and :func:`write_ldc93s1_csv`.

Serving (transcribe, server, browser tests): :func:`ldc93s1_variants` and
:func:`train_robust_ldc93s1` make a small model that transcribes LDC93S1 exactly even
when the VAD cuts it out of a longer recording, a browser streams it (resampled
16 -> 48 -> 16 kHz) or silence or noise pads it: it is trained on the clip plus such
variants. A model overfit to the bare clip is not: with a few hundred ms of extra
silence it spells "sea" for "year". :class:`RunningServer` runs a server app on
127.0.0.1. For benchmarks and demos, from the repository root::

    python -m tests.helpers runs/robust

writes ``runs/robust/export/output_graph.tflite`` and ``runs/robust/kenlm.scorer``.
"""

import csv
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pytest
import soundfile

REPO_ROOT = Path(__file__).resolve().parent.parent
KENLM_BINS = REPO_ROOT / "tools" / "kenlm" / "bin"
CORPUS = REPO_ROOT / "data" / "lm" / "vocab.txt"
TINY_TOP_K = 3000  # words kept: all 2559 distinct words of vocab.txt
TINY_ORDER = 3
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"
LDC93S1_WAV = str(REPO_ROOT / "data" / "ldc93s1" / "LDC93S1.wav")
RATE = 16000

# (seconds before, seconds after, noise std in int16 units; 0 = digital silence)
PADDINGS = (
    (0.0, 0.0, 0),
    (0.3, 0.3, 0),
    (0.6, 0.2, 8),
    (0.15, 0.8, 30),
    (1.0, 1.0, 3),
)


def require_kenlm_bins() -> Path:
    """``tools/kenlm/bin`` with lmplz, filter and build_binary, or skip/fail."""
    missing = [
        name
        for name in ("lmplz", "filter", "build_binary")
        if not os.access(KENLM_BINS / name, os.X_OK)
    ]
    if missing:
        reason = f"KenLM tools {missing} missing in {KENLM_BINS}; run `make kenlm`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: not skipping)")
        pytest.skip(reason)
    return KENLM_BINS


def build_tiny_lm(base_temp: Path) -> Path:
    """Directory with ``lm.binary`` and ``vocab-3000.txt`` of a 3-gram on vocab.txt."""
    kenlm_bins = require_kenlm_bins()
    out = base_temp / "tiny_lm"
    done = out / "lm.binary"
    if done.exists():
        return out
    cmd = [
        sys.executable, str(REPO_ROOT / "data" / "lm" / "generate_lm.py"),
        "--input_txt", str(CORPUS), "--output_dir", str(out),
        "--top_k", str(TINY_TOP_K), "--kenlm_bins", str(kenlm_bins),
        "--arpa_order", str(TINY_ORDER), "--max_arpa_memory", "64M",
        "--binary_type", "trie", "--discount_fallback",
        "--alphabet", str(REPO_ROOT / "data" / "alphabet.txt"),
        "--show_progressbar", "false",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert done.exists(), proc.stdout
    return out


def write_bigram_arpa(
    path: str, sentences: Sequence[str], extra: Sequence[str]
) -> None:
    """A small (unnormalised, which KenLM accepts) bigram LM favouring ``sentences``."""
    words = sorted({w for s in sentences for w in s.split()} | set(extra))
    bigrams = sorted(
        {
            pair
            for s in sentences
            for pair in zip(["<s>", *s.split()], [*s.split(), "</s>"])
        }
    )
    lines = ["\\data\\", f"ngram 1={len(words) + 3}", f"ngram 2={len(bigrams)}", ""]
    lines += ["\\1-grams:", "-3.0\t<unk>\t0", "-99\t<s>\t-0.5", "-2.0\t</s>\t0"]
    lines += [f"-2.0\t{w}\t-0.5" for w in words]
    lines += ["", "\\2-grams:"] + [f"-0.1\t{a} {b}" for a, b in bigrams]
    lines += ["", "\\end\\", ""]
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))


def run_deepspeech(
    repo_root: str, args: Sequence[str], cwd: str = "", timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``DeepSpeech.py args``; stdout and stderr (absl logs) are captured apart."""
    return subprocess.run(
        [sys.executable, os.path.join(repo_root, "DeepSpeech.py"), *args],
        cwd=cwd or repo_root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_ldc93s1_csv(directory: Path, wav: str) -> str:
    path = directory / "ldc93s1.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerow([wav, os.path.getsize(wav), LDC93S1_TEXT])
    return str(path)


def train_ldc93s1_steps(tmp: Path, alphabet, model_cfg, features_cfg, epochs: int = 3):
    """(Config, model) of ``model_cfg`` on ``features_cfg`` trained ``epochs`` steps
    on LDC93S1 in-process (batch-norm moving averages away from 0/1), its export
    config pointing at ``tmp / "export"``. Not enough to transcribe: for tests whose
    claims hold whatever the weights."""
    from util.config import Config
    from util.distributed import make_strategy
    from util.training import build_session, train

    tmp.mkdir(parents=True, exist_ok=True)
    base = Config()
    cfg = dataclasses.replace(
        base,
        model=model_cfg,
        features=features_cfg,
        data=dataclasses.replace(
            base.data, train_files=(write_ldc93s1_csv(tmp, LDC93S1_WAV),),
            alphabet_config_path=str(REPO_ROOT / "data" / "alphabet.txt"),
        ),
        train=dataclasses.replace(
            base.train, epochs=epochs, learning_rate=0.003, show_progressbar=False,
            summary_dir=str(tmp / "summaries"),
        ),
        checkpoint=dataclasses.replace(
            base.checkpoint, load_checkpoint_dir=str(tmp / "ckpt"),
            save_checkpoint_dir=str(tmp / "ckpt"),
        ),
        export=dataclasses.replace(
            base.export, export_dir=str(tmp / "export"), export_tflite=True
        ),
    )  # fmt: skip
    session = build_session(cfg, alphabet, make_strategy([]))
    train(session)
    session.checkpoints.close()
    return cfg, session.model


def browser_resample(pcm: np.ndarray) -> np.ndarray:
    """16 kHz -> 48 kHz (soxr, as an AudioContext) -> 16 kHz by linear interpolation
    (what the server's page does): int16 [n]."""
    import soxr

    up = soxr.resample(pcm.astype(np.float32) / 32768.0, RATE, 48000)
    t = np.arange(0, len(up) - 1, 3.0)
    down = np.interp(t, np.arange(len(up)), up)
    return np.clip(np.round(down * 32768.0), -32768, 32767).astype(np.int16)


def pad(pcm: np.ndarray, before_s: float, after_s: float, noise: float, seed: int):
    """``pcm`` between stretches of silence (noise 0) or Gaussian noise."""
    rng = np.random.default_rng(seed)

    def stretch(seconds: float) -> np.ndarray:
        n = int(round(seconds * RATE))
        return np.clip(rng.standard_normal(n) * noise, -32768, 32767).astype(np.int16)

    return np.concatenate([stretch(before_s), pcm, stretch(after_s)])


def ldc93s1_variants(out_dir: str) -> str:
    """Write the clip, its padded/resampled variants and a training CSV; its path."""
    pcm, rate = soundfile.read(LDC93S1_WAV, dtype="int16")
    assert rate == RATE
    out_dir = os.path.abspath(out_dir)  # the CSV holds absolute paths
    os.makedirs(out_dir, exist_ok=True)
    rows: List[Tuple[str, int, str]] = []
    sources = (("orig", pcm), ("browser", browser_resample(pcm)))
    for name, clip in sources:
        for k, (before, after, noise) in enumerate(PADDINGS):
            path = os.path.join(out_dir, f"ldc93s1_{name}_{k}.wav")
            soundfile.write(path, pad(clip, before, after, noise, k), RATE, "PCM_16")
            rows.append((path, os.path.getsize(path), LDC93S1_TEXT))
    csv_path = os.path.join(out_dir, "variants.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        writer.writerows(rows)
    return csv_path


def train_robust_ldc93s1(out_dir: str, epochs: int = 120) -> str:
    """Train a unidirectional n_hidden 100 model on the variants; the .tflite path."""
    from ctcdecode import Alphabet
    from util import export
    from util.config import Config
    from util.distributed import make_strategy
    from util.training import build_session, train

    alphabet = Alphabet(str(REPO_ROOT / "data" / "alphabet.txt"))
    csv_path = ldc93s1_variants(os.path.join(out_dir, "data"))
    base = Config()
    cfg = dataclasses.replace(
        base,
        model=dataclasses.replace(
            base.model, n_hidden=100, bidirectional=False, dropout_rate=0.0
        ),
        data=dataclasses.replace(
            base.data,
            train_files=(csv_path,),
            train_batch_size=2,
            alphabet_config_path=str(REPO_ROOT / "data" / "alphabet.txt"),
        ),
        train=dataclasses.replace(
            base.train,
            epochs=epochs,
            learning_rate=0.003,
            show_progressbar=False,
            summary_dir=os.path.join(out_dir, "summaries"),
            random_seed=1,
        ),
        checkpoint=dataclasses.replace(
            base.checkpoint,
            load_checkpoint_dir=os.path.join(out_dir, "ckpt"),
            save_checkpoint_dir=os.path.join(out_dir, "ckpt"),
        ),
        export=dataclasses.replace(
            base.export, export_dir=os.path.join(out_dir, "export")
        ),
    )
    level = logging.getLogger("absl").level  # the TFLite converter changes it
    try:
        train(build_session(cfg, alphabet, make_strategy([])))
        session = build_session(cfg, alphabet, make_strategy([]))
        session.checkpoints.restore_for_evaluation()
        return export.export_tflite(session.model, cfg, alphabet)
    finally:
        logging.getLogger("absl").setLevel(level)


def ldc93s1_scorer(out_path: str, extra_words=("hat", "soot", "wish")) -> str:
    """A tiny .scorer: a bigram ARPA LM over the LDC93S1 words plus a few others."""
    from ctcdecode import Alphabet, scorer_package

    alphabet = Alphabet(str(REPO_ROOT / "data" / "alphabet.txt"))
    arpa = os.path.splitext(out_path)[0] + ".arpa"
    write_bigram_arpa(arpa, [LDC93S1_TEXT], extra_words)
    words = sorted(set(LDC93S1_TEXT.split()) | set(extra_words))
    original = scorer_package._check_lm_binary
    scorer_package._check_lm_binary = lambda lm_path: None  # an ARPA, not a binary
    try:
        scorer_package.write_scorer_package(
            out_path, arpa, words, alphabet, 0.93, 1.18, False
        )
    finally:
        scorer_package._check_lm_binary = original
    return out_path


class RunningServer:
    """uvicorn serving ``app`` in a thread on 127.0.0.1; ``url`` once started."""

    def __init__(self, app) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", ws_max_size=16 << 20
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "RunningServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def main(argv: Optional[List[str]] = None) -> int:
    out_dir = (argv or sys.argv[1:] or ["runs/robust"])[0]
    path = train_robust_ldc93s1(out_dir)
    scorer = ldc93s1_scorer(os.path.join(out_dir, "kenlm.scorer"))
    print(path, scorer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
