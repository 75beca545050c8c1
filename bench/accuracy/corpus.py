"""The held-out-speaker corpus of ``bench/accuracy``: synthetic voices, split by voice.

Everything comes from Debian packages and ``sentences.txt`` (shipped beside this file);
nothing is downloaded. The recipe (see doc/ACCURACY.rst for the numbers):

* Sentences: ``sentences.txt`` (758 lines from Debian's ``fortunes-min``, BSD licence,
  see ``SENTENCES-LICENSE``). ``split_sentences`` picks ``n_test`` test and ``n_dev``
  dev sentences whose every word also occurs in the remaining training sentences (so
  the scorer, built from the training text only, knows every test word; the sentences
  themselves are unseen); the rest are the training sentences.
* Voices (``VOICES``): espeak-ng variants on several English accents, flite's voices,
  festival's voices. Training voices: espeak-ng variants ``TRAIN_VARIANTS`` (accent
  drawn per utterance), flite ``awb`` and ``rms``. Dev voices: espeak-ng variants
  ``DEV_VARIANTS``. Test voices, never trained on nor tuned on: espeak-ng variants
  ``TEST_VARIANTS``, flite ``kal16`` and ``slt``, and the whole festival engine
  (``kal_diphone``, ``ked_diphone``, ``cmu_us_slt_arctic_hts``).
* More engines for training (``more_engines``, on by default): mbrola's diphone voices
  (through espeak-ng: ``MBROLA_TRAIN``; ``MBROLA_DEV`` for dev), SVOX Pico
  (``PICO_TRAIN``) and RHVoice (``RHVOICE_TRAIN``; ``RHVOICE_DEV`` for dev), from
  Debian's contrib and non-free sections. They come from a second seeded stream, after
  everything above: each training sentence gets one more utterance by one of these
  voices, each dev sentence one by each of their dev voices, and every other set is
  the same, WAV for WAV, as without them. RHVoice's ``slt`` is left out: it is the
  speaker of the test voices flite ``slt`` and festival ``cmu_us_slt_arctic_hts``.
* Speed and pitch: each utterance draws a speaking rate (espeak-ng ``-s``, flite
  ``duration_stretch``, festival ``Duration_Stretch``) and, for espeak-ng, a pitch
  (``-p``); every utterance is then resampled by a factor in [0.94, 1.06] and played
  back at 16 kHz, which shifts pitch and formants of every engine.
* Test conditions: clean; additive pink noise at 10 dB SNR (``add_noise``); and
  reverberation with a synthetic room impulse response (``reverberate``: exponentially
  decaying noise, RT60 in [0.3, 0.7] s). Both are numpy, seeded per utterance.

The pure pieces (splits, noise, reverb) are tested in tests/test_accuracy_corpus.py;
the synthesis needs the engines (apt line in doc/ACCURACY.rst).
"""

import csv
import dataclasses
import os
import random
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np

SAMPLE_RATE = 16000
HERE = os.path.dirname(os.path.abspath(__file__))
SENTENCES = os.path.join(HERE, "sentences.txt")

ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-029", "en-us-nyc", "en-gb-x-gbcwmd")  # fmt: skip
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f5", "klatt", "klatt3",
                  "croak", "adam", "belinda", "john", "linda", "max")  # fmt: skip
DEV_VARIANTS = ("m5", "f3", "david")
TEST_VARIANTS = ("m6", "f4", "klatt2", "edward")
FLITE_TRAIN = ("awb", "rms")
FLITE_TEST = ("kal16", "slt")
FESTIVAL_TEST = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
MBROLA_TRAIN = ("us1", "us2", "en1")
MBROLA_DEV = ("us3",)
PICO_TRAIN = ("en-US", "en-GB")
RHVOICE_TRAIN = ("alan", "bdl", "evgeniy-eng", "lyubov")
RHVOICE_DEV = ("clb",)
#: The Debian packages of every engine (contrib and non-free for the last line).
PACKAGES = (
    "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts "
    "mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 libttspico-utils rhvoice "
    "rhvoice-english"
)


@dataclasses.dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng | flite | festival | mbrola | pico | rhvoice
    name: str  # espeak-ng: accent+variant; others: the engine's voice name

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


@dataclasses.dataclass(frozen=True)
class Utterance:
    voice: Voice
    text: str
    rate: float  # speaking rate factor, 1 = the engine's default
    pitch: int  # espeak-ng -p (0-99); unused by the other engines
    resample: float  # playback factor: > 1 raises pitch and tempo
    seed: int


def voice_split(rng: random.Random) -> Dict[str, List[Voice]]:
    """Training, dev and test voices. Dev and test voices never occur in training; the
    festival engine occurs only in test. Each dev/test espeak-ng variant gets one
    accent, drawn here; training variants get an accent per utterance (``utterances``).
    """
    train = [Voice("espeak-ng", v) for v in TRAIN_VARIANTS]
    train += [Voice("flite", v) for v in FLITE_TRAIN]
    dev = [
        Voice("espeak-ng", f"{rng.choice(ESPEAK_ACCENTS)}+{v}") for v in DEV_VARIANTS
    ]
    test = [
        Voice("espeak-ng", f"{rng.choice(ESPEAK_ACCENTS)}+{v}") for v in TEST_VARIANTS
    ]
    test += [Voice("flite", v) for v in FLITE_TEST]
    test += [Voice("festival", v) for v in FESTIVAL_TEST]
    return {"train": train, "dev": dev, "test": test}


def more_voices() -> Dict[str, List[Voice]]:
    """The training and dev voices of the engines beyond espeak-ng/flite/festival."""
    return {
        "train": [Voice("mbrola", v) for v in MBROLA_TRAIN]
        + [Voice("pico", v) for v in PICO_TRAIN]
        + [Voice("rhvoice", v) for v in RHVOICE_TRAIN],
        "dev": [Voice("mbrola", v) for v in MBROLA_DEV]
        + [Voice("rhvoice", v) for v in RHVOICE_DEV],
    }


def read_sentences(path: str = SENTENCES) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def split_sentences(
    sentences: Sequence[str], n_test: int, n_dev: int, rng: random.Random
) -> Tuple[List[str], List[str], List[str]]:
    """(train, dev, test): dev and test sentences whose every word stays in train.

    Candidates are visited in a seeded random order; one is taken when each of its
    words occurs in at least one sentence still left for training.
    """
    counts: Dict[str, int] = {}
    for s in sentences:
        for w in s.split():
            counts[w] = counts.get(w, 0) + 1
    order = list(sentences)
    rng.shuffle(order)
    held: List[str] = []
    for s in order:
        if len(held) == n_test + n_dev:
            break
        words = s.split()
        need: Dict[str, int] = {}
        for w in words:
            need[w] = need.get(w, 0) + 1
        if all(counts[w] > n for w, n in need.items()):
            held.append(s)
            for w in words:
                counts[w] -= 1
    if len(held) < n_test + n_dev:
        raise ValueError(
            f"only {len(held)} of {len(sentences)} sentences can be held out with "
            f"every word still in training; ask for fewer than {n_test} + {n_dev}"
        )
    held_set = set(held)
    train = [s for s in sentences if s not in held_set]
    return train, held[n_test:], held[:n_test]


def utterances(
    voices: Sequence[Voice], texts: Sequence[str], per_text: int, rng: random.Random,
    every_voice: bool = False,
) -> List[Utterance]:  # fmt: skip
    """Utterances of ``texts``: each by ``per_text`` voices drawn at random (training
    espeak-ng variants get a random accent), or by every voice (``every_voice``)."""
    out = []
    for text in texts:
        chosen = list(voices) if every_voice else rng.sample(list(voices), per_text)
        for voice in chosen:
            if voice.engine == "espeak-ng" and "+" not in voice.name:
                voice = Voice("espeak-ng", f"{rng.choice(ESPEAK_ACCENTS)}+{voice.name}")
            out.append(
                Utterance(
                    voice,
                    text,
                    rate=rng.uniform(0.85, 1.2),
                    pitch=rng.randint(25, 75),
                    resample=rng.uniform(0.94, 1.06),
                    seed=rng.randrange(2**31),
                )
            )
    return out


# -- signal processing (numpy, seeded) -------------------------------------------------


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f power spectrum (FFT-shaped white noise)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """``samples`` plus pink noise scaled so that signal power / noise power is
    ``snr_db`` dB (powers are means over the whole utterance)."""
    signal_power = float(np.mean(samples.astype(np.float64) ** 2))
    noise = pink_noise(len(samples), rng) * np.sqrt(signal_power / 10 ** (snr_db / 10))
    return (samples + noise).astype(np.float32)


def room_impulse_response(
    rt60: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A synthetic RIR: a unit direct path, then Gaussian noise decaying by 60 dB in
    ``rt60`` seconds (the energy envelope exp(-6.9 t / rt60)), from 2.5 ms on."""
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    tail[: int(0.0025 * sample_rate)] = 0.0
    rir = 0.3 * tail / (np.sqrt(np.sum(tail**2)) + 1e-12)
    rir[0] = 1.0
    return rir


def reverberate(
    samples: np.ndarray, rng: np.random.Generator, rt60_range=(0.3, 0.7)
) -> np.ndarray:
    """``samples`` convolved with a ``room_impulse_response`` (RT60 drawn from
    ``rt60_range``), cut to the input length and scaled back to the input's peak."""
    from scipy.signal import fftconvolve

    rir = room_impulse_response(rng.uniform(*rt60_range), rng)
    wet = fftconvolve(samples.astype(np.float64), rir)[: len(samples)]
    peak_in, peak_out = np.max(np.abs(samples)), np.max(np.abs(wet))
    return (wet * (peak_in / (peak_out + 1e-12))).astype(np.float32)


def resample(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster (pitch and tempo up by ``factor``)."""
    from scipy.signal import resample_poly

    up = 1000
    down = int(round(up * factor))
    return resample_poly(samples, up, down).astype(np.float32)


# -- synthesis (needs the engines) -----------------------------------------------------


def synthesize(utt: Utterance, path: str) -> None:
    """Write ``utt`` as a 16 kHz mono 16-bit WAV at ``path``."""
    import soundfile

    from util.audio import read_audio

    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        txt = os.path.join(tmp, "text.txt")  # for the engines that read a file
        with open(txt, "w", encoding="utf-8") as f:
            f.write(utt.text + "\n")
        level = 100 + (utt.pitch - 50) * 3 // 5  # espeak-ng's 25-75: 85-115 %
        if utt.voice.engine in ("espeak-ng", "mbrola"):  # mbrola through espeak-ng
            name = utt.voice.name
            voice = name if utt.voice.engine == "espeak-ng" else f"mb-{name}"
            cmd = ["espeak-ng", "-v", voice, "-s", str(int(175 * utt.rate)),
                   "-p", str(utt.pitch), "-w", raw, utt.text]  # fmt: skip
        elif utt.voice.engine == "flite":
            stretch = f"duration_stretch={1 / utt.rate:.3f}"
            cmd = ["flite", "-voice", utt.voice.name, "--setf", stretch,
                   "-t", utt.text, "-o", raw]  # fmt: skip
        elif utt.voice.engine == "pico":
            markup = (f"<speed level='{int(100 * utt.rate)}'><pitch level='{level}'>"
                      f"{utt.text}</pitch></speed>")  # fmt: skip
            cmd = ["pico2wave", "-l", utt.voice.name, "-w", raw, markup]
        elif utt.voice.engine == "rhvoice":
            cmd = ["RHVoice-test", "-p", utt.voice.name, "-i", txt, "-o", raw,
                   "-r", str(int(100 * utt.rate)), "-t", str(level)]  # fmt: skip
        elif utt.voice.engine == "festival":
            cmd = ["text2wave", "-F", str(SAMPLE_RATE),
                   "-eval", f"(voice_{utt.voice.name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {1 / utt.rate:.3f})",
                   txt, "-o", raw]  # fmt: skip
        else:
            raise ValueError(f"unknown engine {utt.voice.engine!r}")
        try:
            subprocess.run(cmd, check=True, capture_output=True)
        except FileNotFoundError as e:
            raise RuntimeError(
                f"{cmd[0]} (voice {utt.voice.id}) is not installed: apt-get install "
                f"{PACKAGES} (the last ones need Debian's contrib and non-free "
                "sections, see doc/ACCURACY.rst)"
            ) from e
        samples, _ = read_audio(raw, SAMPLE_RATE)
    samples = resample(samples, utt.resample)
    peak = float(np.max(np.abs(samples))) or 1.0
    soundfile.write(path, samples * (0.5 / peak), SAMPLE_RATE, subtype="PCM_16")


def write_csv(path: str, rows: Sequence[Tuple[str, str]]) -> None:
    """DeepSpeech CSV of (wav path relative to the CSV, transcript) rows."""
    base = os.path.dirname(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        for wav, text in rows:
            writer.writerow([wav, os.path.getsize(os.path.join(base, wav)), text])


def make_plan(
    seed: int = 1, n_test: int = 50, n_dev: int = 30, per_train_sentence: int = 2,
    more_engines: bool = True,
) -> Tuple[Dict[str, List["Utterance"]], List[str]]:  # fmt: skip
    """{set name: utterances} and the training sentences; a pure function of its
    arguments (seeded), so the manifest can be rewritten for an existing corpus.

    ``more_engines`` appends the ``more_voices`` utterances to train and dev, drawn
    from a stream of their own: the other utterances (and so their WAV names) are the
    same with and without them."""
    rng = random.Random(seed)
    voices = voice_split(rng)
    train_s, dev_s, test_s = split_sentences(read_sentences(), n_test, n_dev, rng)
    plan = {
        "train": utterances(voices["train"], train_s, per_train_sentence, rng),
        "dev": utterances(voices["dev"], dev_s, 0, rng, every_voice=True),
        "test-clean": utterances(voices["test"], test_s, 0, rng, every_voice=True),
        "test-seen": utterances(voices["train"], test_s, 1, rng),
    }
    if more_engines:
        more_rng = random.Random(f"more-engines-{seed}")
        more = more_voices()
        plan["train"] += utterances(more["train"], train_s, 1, more_rng)
        plan["dev"] += utterances(more["dev"], dev_s, 0, more_rng, every_voice=True)
    return plan, train_s


def write_manifest(out_dir: str, plan: Dict[str, List["Utterance"]]) -> str:
    """``voices.csv``: every WAV of every set (noise and reverb copies included) with
    its voice id (``engine:voice``), for per-engine and per-voice results."""
    path = os.path.join(out_dir, "voices.csv")
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["wav_filename", "voice"])
        for name, utts in plan.items():
            copies = [name] + (
                ["test-noise", "test-reverb"] if name == "test-clean" else []
            )
            for copy in copies:
                for i, u in enumerate(utts):
                    writer.writerow([f"{copy}-{i:05d}.wav", u.voice.id])
    os.replace(path + ".tmp", path)
    return path


def build(
    out_dir: str,
    seed: int = 1,
    n_test: int = 50,
    n_dev: int = 30,
    per_train_sentence: int = 2,
    more_engines: bool = True,
    workers: int = 2,
    progress=None,
) -> Dict[str, str]:
    """Synthesize the corpus into ``out_dir``; returns {set name: CSV path}.

    Sets: train, dev, test-clean, test-noise, test-reverb (held-out voices on test
    sentences) and test-seen (the test sentences spoken by training voices), plus
    ``train.txt``, the training text for the scorer.
    """
    import soundfile

    plan, train_s = make_plan(seed, n_test, n_dev, per_train_sentence, more_engines)
    wav_dir = os.path.join(out_dir, "wav")
    os.makedirs(wav_dir, exist_ok=True)
    jobs = []
    for name, utts in plan.items():
        for i, utt in enumerate(utts):
            jobs.append((os.path.join(wav_dir, f"{name}-{i:05d}.wav"), utt))

    def run(job):
        path, utt = job
        if not os.path.exists(path):
            synthesize(utt, path + ".tmp.wav")
            os.replace(path + ".tmp.wav", path)

    with ThreadPoolExecutor(workers) as pool:
        for i, _ in enumerate(pool.map(run, jobs)):
            if progress is not None:
                progress(i + 1, len(jobs))
    csvs = {}
    for name, utts in plan.items():
        rows = [(f"wav/{name}-{i:05d}.wav", u.text) for i, u in enumerate(utts)]
        csvs[name] = os.path.join(out_dir, f"{name}.csv")
        write_csv(csvs[name], rows)
    for cond, fn in (
        ("noise", lambda x, r: add_noise(x, 10.0, r)),
        ("reverb", reverberate),
    ):
        rows = []
        for i, utt in enumerate(plan["test-clean"]):
            src = os.path.join(wav_dir, f"test-clean-{i:05d}.wav")
            dst = f"wav/test-{cond}-{i:05d}.wav"
            samples, sr = soundfile.read(src, dtype="float32")
            out = fn(samples, np.random.default_rng([utt.seed, len(cond)]))
            out = np.clip(out, -1.0, 1.0)
            soundfile.write(os.path.join(out_dir, dst), out, sr, subtype="PCM_16")
            rows.append((dst, utt.text))
        csvs[f"test-{cond}"] = os.path.join(out_dir, f"test-{cond}.csv")
        write_csv(csvs[f"test-{cond}"], rows)
    with open(os.path.join(out_dir, "train.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(train_s) + "\n")
    write_manifest(out_dir, plan)
    with open(os.path.join(out_dir, "voices.txt"), "w", encoding="utf-8") as f:
        for name, utts in plan.items():
            ids = sorted({u.voice.id for u in utts})
            f.write(
                f"{name}: {len(utts)} utterances, {len(ids)} voices: {' '.join(ids)}\n"
            )
    return csvs
