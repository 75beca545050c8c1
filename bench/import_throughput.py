#!/usr/bin/env python3
"""Importer conversion throughput: audio hours converted per wall minute.

Generates ``--minutes`` of 44.1 kHz stereo audio per format (FLAC, MP3) as
``--clip_s`` clips in a temporary folder (not timed), then times
``util.importing.importers.run_importer`` converting them to 16 kHz mono 16-bit WAV with
``--workers`` processes (decode, downmix, soxr_hq resample, write), and a re-run,
which must reuse every WAV.

    .venv/bin/python bench/import_throughput.py --minutes 4 --workers 2
"""

import argparse
import os
import tempfile
import time

import numpy as np
import soundfile as sf

from util.importing import importers

SOURCE_RATE = 44100  # Hz, CD audio (typical of MP3/FLAC sources)
FORMATS = {"FLAC": ("flac", "PCM_16"), "MP3": ("mp3", "MPEG_LAYER_III")}


def make_corpus(root: str, fmt: str, minutes: float, clip_s: float) -> int:
    """Write clips of speech-like noise + tones; returns the number of clips."""
    ext, subtype = FORMATS[fmt]
    n_clips = int(round(minutes * 60 / clip_s))
    rng = np.random.default_rng(0)
    t = np.arange(int(clip_s * SOURCE_RATE)) / SOURCE_RATE
    for k in range(n_clips):
        left = 0.2 * np.sin(2 * np.pi * (200 + k) * t) + 0.05 * rng.standard_normal(
            len(t)
        )
        stereo = np.stack([left, np.roll(left, 100)], axis=1).astype(np.float32)
        path = os.path.join(root, f"clip{k:04d}")
        sf.write(f"{path}.{ext}", stereo, SOURCE_RATE, format=fmt, subtype=subtype)
        with open(f"{path}.txt", "w", encoding="utf-8") as f:
            f.write("a benchmark transcript\n")
    return n_clips


def iter_folder(root: str):
    for name in sorted(os.listdir(root)):
        stem, ext = os.path.splitext(name)
        if ext in (".flac", ".mp3"):
            with open(os.path.join(root, stem + ".txt"), encoding="utf-8") as f:
                text = f.read()
            yield importers.RawSample(os.path.join(root, name), text, stem)


def bench(fmt: str, minutes: float, clip_s: float, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "source")
        os.makedirs(source)
        n_clips = make_corpus(source, fmt, minutes, clip_s)
        options = importers.ImportOptions(
            os.path.join(tmp, "out"), archive=(source,), workers=workers
        )
        start = time.perf_counter()
        report = importers.run_importer(iter_folder, options)
        wall_s = time.perf_counter() - start
        assert report.n_converted == n_clips, report.format()
        start = time.perf_counter()
        again = importers.run_importer(iter_folder, options)
        rerun_s = time.perf_counter() - start
        assert again.n_converted == 0 and again.n_reused == n_clips
    audio_h = n_clips * clip_s / 3600
    print(
        f"{fmt:5} 44.1 kHz stereo -> 16 kHz mono WAV, {workers} workers: "
        f"{n_clips} clips, {audio_h * 60:.1f} audio-min in {wall_s:.1f} s = "
        f"{audio_h / (wall_s / 60):.2f} audio-h per wall-min "
        f"({audio_h * 3600 / wall_s:.0f}x real time); re-run {rerun_s:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="audio per format")
    parser.add_argument("--clip_s", type=float, default=10.0, help="clip length (s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--formats", default="FLAC,MP3")
    args = parser.parse_args()
    for fmt in args.formats.split(","):
        bench(fmt, args.minutes, args.clip_s, args.workers)


if __name__ == "__main__":
    main()
