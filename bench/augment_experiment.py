#!/usr/bin/env python3
"""Does --augment help? Train on clean clips, test on noisy and reverberant versions
of held-out clips, with and without augmentation (the closing note's experiment).

Data (made here, nothing downloaded): three-digit sequences ("four one nine") spoken
by espeak-ng (``apt-get install espeak-ng``) with several English voices and speeds,
resampled to 16 kHz. Training and test use different sequences; the test set comes in
three versions: clean, noisy (coloured noise at ``--test_snr`` dB RMS SNR) and
reverberant (convolved with a synthetic room impulse response: exponentially decaying
noise, RT60 ``--test_rt60`` s). Test distortions are deliberately not the training
augmentations' own (different noise realisations and colour mix; a convolution
reverb instead of 0.9's comb reverb), so the test measures robustness, not memory of
the distortion.

Both runs share every flag and ``--random_seed``; the augmented run adds:

    overlay[p=0.6,source=noise.csv,snr=12~8]  reverb[p=0.4,delay=30~20,decay=6~4]
    frequency_mask[p=0.5,n=2,size=1:3]        time_mask[p=0.5,n=2,size=40~20]

    python bench/augment_experiment.py --out /tmp/augexp --epochs 40

Reports greedy WER (no language model) per test version and run.
"""

import argparse
import csv
import os
import re
import subprocess
import sys

import numpy as np
import soundfile
import soxr

RATE = 16000
DIGITS = "zero one two three four five six seven eight nine".split()
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us+f2",
          "en-gb+f4", "en-us+m3"]  # fmt: skip
AUGMENT = (
    "overlay[p=0.6,source={noise},snr=12~8]",
    "reverb[p=0.4,delay=30~20,decay=6~4]",
    "frequency_mask[p=0.5,n=2,size=1:3]",
    "time_mask[p=0.5,n=2,size=40~20]",
)


def speak(text: str, voice: str, speed: int, path: str) -> np.ndarray:
    raw = path + ".raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", raw, text],
                   check=True, capture_output=True)  # fmt: skip
    audio, rate = soundfile.read(raw, dtype="float32")
    os.remove(raw)
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White noise tilted by a random spectral slope (white .. brown-ish)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    slope = rng.uniform(0.0, 1.0)
    spectrum /= np.maximum(np.arange(len(spectrum)), 1) ** slope
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def add_noise(audio, rng, snr_db):
    noise = coloured_noise(rng, len(audio))
    gain = np.sqrt(np.mean(audio**2)) / 10 ** (snr_db / 20)
    mixed = audio + gain * noise
    return mixed / max(1.0, np.max(np.abs(mixed)))


def add_reverb(audio, rng, rt60):
    t = np.arange(int(rt60 * RATE)) / RATE
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0
    wet = np.convolve(audio, rir)[: len(audio)]
    return 0.9 * wet / np.max(np.abs(wet))


def write_set(folder, name, items, rng, distort=None):
    """items: (text, voice, speed); returns the CSV path."""
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    path = os.path.join(folder, f"{name}.csv")
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        for k, (text, audio) in enumerate(items):
            if distort is not None:
                audio = distort(audio, rng)
            wav = os.path.join(folder, name, f"{k:04d}.wav")
            soundfile.write(wav, audio, RATE, subtype="PCM_16")
            writer.writerow([wav, os.path.getsize(wav), text])
    return path


def make_data(args) -> dict:
    rng = np.random.default_rng(args.seed)
    sequences = {" ".join(rng.choice(DIGITS, 3)) for _ in range(10 * args.n_train)}
    sequences = sorted(sequences)
    rng.shuffle(sequences)
    spoken = []
    for k, text in enumerate(sequences[: args.n_train + args.n_test]):
        voice, speed = VOICES[k % len(VOICES)], int(rng.integers(130, 190))
        spoken.append((text, speak(text, voice, speed, os.path.join(args.out, "tmp"))))
    train, test = spoken[: args.n_train], spoken[args.n_train :]
    noise_items = [("", coloured_noise(rng, 3 * RATE) * 0.1) for _ in range(8)]
    return {
        "train": write_set(args.out, "train", train, rng),
        "noise": write_set(args.out, "noise", noise_items, rng),
        "test_clean": write_set(args.out, "test_clean", test, rng),
        "test_noisy": write_set(args.out, "test_noisy", test, rng,
                                lambda a, r: add_noise(a, r, args.test_snr)),
        "test_reverb": write_set(args.out, "test_reverb", test, rng,
                                 lambda a, r: add_reverb(a, r, args.test_rt60)),
    }  # fmt: skip


def train_and_test(args, sets: dict, name: str, augment: bool) -> dict:
    ckpt = os.path.join(args.out, f"ckpt_{name}")
    tests = ",".join(sets[k] for k in ("test_clean", "test_noisy", "test_reverb"))
    command = [
        sys.executable, "DeepSpeech.py", "--train_files", sets["train"],
        "--test_files", tests,
        "--epochs", str(args.epochs), "--n_hidden", str(args.n_hidden),
        "--train_batch_size", "8", "--test_batch_size", "16",
        "--learning_rate", str(args.learning_rate), "--dropout_rate", "0.1",
        "--random_seed", str(args.seed), "--checkpoint_dir", ckpt,
        "--summary_dir", os.path.join(args.out, f"summ_{name}"),
        "--show_progressbar=false", "--scorer_path", "",
    ]  # fmt: skip
    if augment:
        for spec in AUGMENT:
            command += ["--augment", spec.format(noise=sets["noise"])]
    log = subprocess.run(command, capture_output=True, text=True)
    with open(os.path.join(args.out, f"{name}.log"), "w") as out:
        out.write(log.stdout + log.stderr)
    if log.returncode:
        raise SystemExit(f"{name} failed ({log.returncode}); see {args.out}/{name}.log")
    found = re.findall(
        r"test (\S+): WER ([\d.]+), CER ([\d.]+)", log.stdout + log.stderr
    )
    return {os.path.basename(path): (float(w), float(c)) for path, w, c in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/augment_experiment")
    parser.add_argument("--n_train", type=int, default=160)
    parser.add_argument("--n_test", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--n_hidden", type=int, default=192)
    parser.add_argument("--learning_rate", type=float, default=0.001)
    parser.add_argument("--test_snr", type=float, default=5.0)
    parser.add_argument("--test_rt60", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=4568)
    parser.add_argument("--data_only", action="store_true", help="make the data only")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sets = make_data(args)
    if args.data_only:
        print("\n".join(f"{k}: {v}" for k, v in sets.items()))
        return
    results = {name: train_and_test(args, sets, name, name == "augmented")
               for name in ("clean", "augmented")}  # fmt: skip
    print(f"{'test set':14s} {'WER clean-trained':>18s} {'WER augmented':>14s}")
    for key in ("test_clean.csv", "test_noisy.csv", "test_reverb.csv"):
        plain, aug = results["clean"].get(key), results["augmented"].get(key)
        print(f"{key:14s} {plain[0]:18.3f} {aug[0]:14.3f}   "
              f"(CER {plain[1]:.3f} / {aug[1]:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
