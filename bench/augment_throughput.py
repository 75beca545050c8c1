#!/usr/bin/env python3
"""Cost of --augment: audio seconds per wall second of the training input pipeline
(``util.feeding.make_dataset``: decode, augment, featurize, batch) alone and followed
by the real train step, without and with a typical set of augmentations:

    overlay[p=0.5,source=noise.csv,snr=15~5]   (sample domain, numpy)
    reverb[p=0.3,delay=20~10,decay=10~3]       (sample domain, scipy combs)
    frequency_mask[n=2,size=1:4]               (SpecAugment, spectrogram domain)
    time_mask[n=2,size=30~10]                  (SpecAugment, spectrogram domain)

The clips are synthetic (harmonic tones with noise, 2-6 s, 16 kHz) so the run needs
no data. The two sides alternate, ``--rounds`` times, in one process; each line is the
median of its rounds. The tf.data pipeline runs ahead of the step on other threads, so
with the step the cost of augmenting shows only where the pipeline is slower than it.

    python bench/augment_throughput.py --n_hidden 2048 --rounds 3
"""

import csv
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from ctcdecode import Alphabet  # noqa: E402
from util.augmentations import AugmentPass, parse_augmentations  # noqa: E402
from util.config import FeatureConfig, ModelConfig  # noqa: E402
from util.feeding import batch_plan, make_dataset  # noqa: E402
from util.model import DeepSpeechModel, trainable_variables  # noqa: E402
from util.optimizer import Adam  # noqa: E402
from util.samples import read_sample_set  # noqa: E402
from util.steps import Steps  # noqa: E402

flags.DEFINE_integer("n_clips", 24, "training clips")
flags.DEFINE_integer("batch_size", 8, "utterances per batch")
flags.DEFINE_integer("rounds", 3, "alternating rounds (each: one epoch per side)")
flags.DEFINE_integer("n_hidden", 2048, "model width for the pipeline + step numbers")
flags.DEFINE_string("alphabet", "data/alphabet.txt", "alphabet")
FLAGS = flags.FLAGS

RATE = 16000
SPECS = (
    "overlay[p=0.5,source={noise},snr=15~5]",
    "reverb[p=0.3,delay=20~10,decay=10~3]",
    "frequency_mask[n=2,size=1:4]",
    "time_mask[n=2,size=30~10]",
)


def write_clips(folder: str, n: int, seed: int, name: str) -> str:
    """A CSV of ``n`` synthetic 2-6 s clips (harmonic tone + noise) in ``folder``."""
    rng = np.random.default_rng(seed)
    path = os.path.join(folder, f"{name}.csv")
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        for k in range(n):
            t = np.arange(int(rng.uniform(2, 6) * RATE)) / RATE
            f0 = rng.uniform(100, 250)
            tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 10))
            audio = 0.2 * tone / np.max(np.abs(tone)) + 0.01 * rng.standard_normal(
                len(t)
            )
            wav = os.path.join(folder, f"{name}{k}.wav")
            soundfile.write(wav, audio, RATE, subtype="PCM_16")
            writer.writerow([wav, os.path.getsize(wav), "a quick test"])
    return path


def epoch_rate(dataset: tf.data.Dataset, seconds: float, steps=None) -> tuple:
    """(audio-s per wall s, audio-s per CPU s of this process, all threads) of one
    pass over ``dataset`` (each batch through ``steps``). The CPU figure is what a
    busy machine (other processes) distorts least."""
    start, cpu = time.perf_counter(), time.process_time()
    for i, batch in enumerate(dataset):
        if steps is not None:
            loss, _ = steps.train_step(batch, tf.constant([0, i], tf.int32))
            loss.numpy()
        else:
            batch["features"].numpy()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds / wall, seconds / cpu


def main(_) -> None:
    folder = tempfile.mkdtemp(prefix="augment-bench-")
    train_csv = write_clips(folder, FLAGS.n_clips, 0, "train")
    noise_csv = write_clips(folder, 4, 1, "noise")
    cfg = FeatureConfig()
    samples = read_sample_set(train_csv, Alphabet(FLAGS.alphabet), cfg).samples
    seconds = sum(s.duration_s for s in samples)
    plan = batch_plan(samples, FLAGS.batch_size, 1, 1, shuffle=True)
    augment = AugmentPass(
        parse_augmentations([s.format(noise=noise_csv) for s in SPECS]), seed=1
    )
    model_cfg = ModelConfig(n_hidden=FLAGS.n_hidden, bidirectional=False)
    model = DeepSpeechModel(model_cfg, cfg.n_input, 29, seed=1)
    steps = Steps(model, Adam(trainable_variables(model), 1e-4),
                  tf.distribute.get_strategy())  # fmt: skip
    warm = make_dataset(samples, plan, cfg, augment=augment)
    epoch_rate(warm, seconds, steps)  # traces the step for every batch shape
    rates = {key: [] for key in ("plain", "augmented", "plain+step", "augmented+step")}
    for _ in range(FLAGS.rounds):
        for name, aug in (("plain", None), ("augmented", augment)):
            dataset = make_dataset(samples, plan, cfg, augment=aug)
            rates[name].append(epoch_rate(dataset, seconds))
            dataset = make_dataset(samples, plan, cfg, augment=aug)
            rates[name + "+step"].append(epoch_rate(dataset, seconds, steps))
    print(f"{len(samples)} clips, {seconds:.0f} s of audio, batch {FLAGS.batch_size}, "
          f"{FLAGS.rounds} rounds; augmentations: {' '.join(SPECS)}")  # fmt: skip
    for name, values in rates.items():
        wall = [v[0] for v in values]
        cpu = [v[1] for v in values]
        print(f"{name:16s} median {statistics.median(wall):7.1f} audio-s/s wall "
              f"({', '.join(f'{v:.1f}' for v in wall)}), "
              f"{statistics.median(cpu):7.1f} audio-s per CPU-s")  # fmt: skip
    for base in ("plain", "plain+step"):
        for k, unit in ((0, "wall"), (1, "CPU")):
            ratio = statistics.median(
                v[k] for v in rates[base.replace("plain", "augmented")]
            ) / statistics.median(v[k] for v in rates[base])
            print(f"augmented / plain, {base.replace('plain', 'pipeline')}, "
                  f"{unit}: {ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    app.run(main)
