"""Tests for --augment: spec parsing, every kind on the training input (and never on
dev/test input), reproducibility from the seed, the feature cache rule."""

from __future__ import annotations

import csv
import dataclasses
import math
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from util import augment_sample, feeding
from util.augmentations import (
    KINDS,
    AugmentationError,
    AugmentPass,
    Overlay,
    Reverb,
    TimeMask,
    ValueRange,
    epoch_clocks,
    parse_augmentation,
    parse_augmentations,
)
from util.config import Config, DataConfig, FeatureConfig
from util.features import compute_features
from util.samples import Sample

RATE = 16000


@pytest.fixture(scope="module")
def speechy(tmp_path_factory) -> str:
    """0.6 s of a vowel-like harmonic tone with an envelope, 16 kHz PCM16."""
    t = np.arange(int(0.6 * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    audio = 0.3 * tone * np.hanning(len(t)) / np.max(np.abs(tone))
    path = tmp_path_factory.mktemp("aug") / "speech.wav"
    soundfile.write(str(path), audio, RATE, subtype="PCM_16")
    return str(path)


@pytest.fixture(scope="module")
def noise_csv(tmp_path_factory) -> str:
    """A CSV of two noise clips (no transcripts: overlay sources need none)."""
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    with open(folder / "noise.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["wav_filename", "wav_filesize", "transcript"])
        for k in range(2):
            soundfile.write(str(folder / f"n{k}.wav"), 0.2 * rng.standard_normal(4000),
                            RATE, subtype="PCM_16")  # fmt: skip
            writer.writerow([f"n{k}.wav", 0, ""])
    return str(folder / "noise.csv")


def samples_of(path: str, copies: int = 1):
    n_frames = FeatureConfig().n_frames(soundfile.info(path).frames)
    return [Sample(path, 0, "ab", (1, 2), n_frames, 0.6, "x.csv", k + 2)
            for k in range(copies)]  # fmt: skip


def train_input(samples, cfg, specs, seed=1, epoch=0, index=0, clock=0.5):
    """The training pipeline's features of one sample (feeding's loader, eagerly)."""
    augment = AugmentPass(parse_augmentations(specs), seed, epoch)
    load = feeding._audio_loader(samples, cfg, augment)
    return load(tf.constant(index), tf.constant(clock, tf.float32))[0].numpy()


def clean_input(samples, cfg, index=0):
    """What dev/test see: the same loader without augmentation."""
    return feeding._audio_loader(samples, cfg)(tf.constant(index), tf.constant(0.0))[
        0
    ].numpy()


# -- parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, integer, expected",
    [
        ("1", True, ValueRange(1, 1, 0, True)),
        ("1~3", True, ValueRange(1, 1, 3, True)),
        ("1:2", True, ValueRange(1, 2, 0, True)),
        ("1:2~3", True, ValueRange(1, 2, 3, True)),
        ("-0.2:1.2", False, ValueRange(-0.2, 1.2, 0.0)),
        ("50:20~10", False, ValueRange(50.0, 20.0, 10.0)),
    ],
)
def test_value_ranges_as_ds09(text, integer, expected):
    assert ValueRange.parse(text, integer) == expected


def test_value_range_pick_moves_with_the_clock():
    rng = np.random.default_rng(0)
    value = ValueRange.parse("4:6~2", integer=False)
    assert value.pick(0.0, rng) == pytest.approx(4, abs=2)
    low = [value.pick(0.0, rng) for _ in range(200)]
    high = [value.pick(1.0, rng) for _ in range(200)]
    assert 2 <= min(low) and max(low) <= 6 and 4 <= min(high) and max(high) <= 8
    assert np.mean(high) - np.mean(low) == pytest.approx(2, abs=0.5)
    assert all(
        isinstance(v, int)
        for v in (ValueRange.parse("1:9~2", True).pick(c, rng) for c in (0, 0.3, 1))
    )


def test_good_specs_and_defaults_as_ds09():
    reverb = parse_augmentation("reverb[p=0.1,delay=50.0~30.0,decay=10.0:2.0~1.0]")
    assert isinstance(reverb, Reverb) and reverb.p == 0.1
    assert reverb.delay == ValueRange(50.0, 50.0, 30.0)
    assert reverb.decay == ValueRange(10.0, 2.0, 1.0)
    mask = parse_augmentation("time_mask[domain=signal, n=3:10~2, size=50:100~40]")
    assert isinstance(mask, TimeMask) and mask.domain == "signal"
    assert parse_augmentation("time_mask").domain == "spectrogram"
    assert parse_augmentation("add").domain == "features"
    overlay = parse_augmentation("overlay[source=noise.sdb,layers=1,snr=50:20~10]")
    assert isinstance(overlay, Overlay) and overlay.layers.integer
    assert parse_augmentation("volume").dbfs == ValueRange(3.0103, 3.0103, 0.0)
    assert parse_augmentation("pitch").pitch == ValueRange(1.075, 1.075, 0.125)
    assert set(KINDS) == {
        "overlay", "reverb", "resample", "codec", "volume", "pitch", "tempo", "warp",
        "frequency_mask", "time_mask", "dropout", "add", "multiply",
    }  # fmt: skip
    assert parse_augmentations(None) == ()


@pytest.mark.parametrize(
    "spec, part",
    [
        ("echo[p=1]", "unknown kind 'echo'"),
        ("Reverb", "kind[param=value"),
        ("reverb[delay=abc]", "delay: 'abc' is not a number"),
        ("reverb[foo=1]", "no parameter 'foo'"),
        ("reverb[delay]", "'delay' is not param=value"),
        ("reverb[delay=1~2~3]", "more than one '~'"),
        ("reverb[delay=1,delay=2]", "'delay' is given twice"),
        ("pitch[p=1.5]", "p: '1.5' is not a probability"),
        ("frequency_mask[n=1.5]", "n: '1.5' is not an integer"),
        ("time_mask[domain=sample]", "not 'sample'"),
        ("reverb[domain=signal]", "no parameter 'domain'"),
        ("overlay[snr=3]", "overlay needs source="),
        ("volume[dbfs=3~-1]", "radius"),
        ("codec[bitrate=3000~2800]", "bitrate: 3000~2800 reaches 200..5800"),
        ("resample[rate=8000:0]", "rate: 8000:0 reaches 0..8000"),
    ],
)
def test_bad_specs_name_the_flag_the_spec_and_the_part(spec, part):
    with pytest.raises(AugmentationError) as err:
        parse_augmentation(spec)
    assert str(err.value).startswith(f"--augment {spec!r}: ")
    assert part in str(err.value)


def test_config_validates_augment_and_refuses_it_with_the_feature_cache(tmp_path):
    with pytest.raises(ValueError, match="--augment 'reverb\\[delay=x\\]': delay"):
        DataConfig(augment=("reverb[delay=x]",))
    with pytest.raises(ValueError, match="--augment 'reverb.*--feature_cache"):
        DataConfig(augment=("reverb",), feature_cache=str(tmp_path))
    kept = DataConfig(augment=("add[stddev=0.5]", "time_mask[domain=features]"),
                      feature_cache=str(tmp_path))  # fmt: skip
    assert len(kept.augment) == 2
    cfg = dataclasses.replace(Config(), data=DataConfig(augment=("pitch",)))
    assert Config.from_json(cfg.to_json()).data.augment == ("pitch",)


# -- every kind changes the training input, never the dev/test input ------------------

EVERY_KIND = [
    "overlay[source={noise},snr=3]",
    "reverb",
    "resample",
    "codec",
    "volume[dbfs=-20]",
    "pitch",
    "tempo",
    "warp[wt=0.3,wf=0.1]",
    "frequency_mask",
    "time_mask",
    "time_mask[domain=signal]",
    "time_mask[domain=features]",
    "frequency_mask[domain=features]",
    "dropout",
    "dropout[domain=signal]",
    "dropout[domain=features]",
    "add",
    "add[domain=signal,stddev=0.01]",
    "add[domain=spectrogram,stddev=0.01]",
    "multiply",
    "multiply[domain=signal,stddev=0.5]",
    "multiply[domain=spectrogram,stddev=0.5]",
]


@pytest.mark.parametrize("spec", EVERY_KIND)
def test_each_kind_changes_training_input_and_not_dev_input(spec, speechy, noise_csv):
    spec = spec.format(noise=noise_csv)
    cfg = FeatureConfig()
    samples = samples_of(speechy)
    audio, _ = feeding.read_audio(speechy, RATE)
    expected = compute_features(tf.constant(audio, tf.float32), cfg)[0].numpy()
    trained = train_input(samples, cfg, [with_p(spec, 1)])
    assert np.isfinite(trained).all()
    assert trained.shape != expected.shape or not np.allclose(trained, expected)
    np.testing.assert_array_equal(clean_input(samples, cfg), expected)
    np.testing.assert_array_equal(
        train_input(samples, cfg, [with_p(spec, 0)]), expected
    )


def with_p(spec: str, p: float) -> str:
    kind, _, rest = spec.partition("[")
    return f"{kind}[p={p},{rest}" if rest else f"{kind}[p={p}]"


@pytest.mark.parametrize("feature_type", ["mfcc", "spectrogram", "fbank"])
def test_training_batches_augmented_dev_batches_clean_for_every_feature_type(
    feature_type, speechy
):
    cfg = FeatureConfig.of_type(feature_type)
    samples = samples_of(speechy, copies=2)
    plan = feeding.batch_plan(samples, 2, 0, 1, shuffle=False)
    specs = ["volume[dbfs=-10]", "pitch", "time_mask", "add[stddev=0.1]"]
    augment = AugmentPass(parse_augmentations(specs), seed=7)
    clean = next(iter(feeding.make_dataset(samples, plan, cfg)))
    trained = next(iter(feeding.make_dataset(samples, plan, cfg, augment=augment)))
    features = trained["features"].numpy()
    assert features.shape[-1] == cfg.n_input and np.isfinite(features).all()
    assert not np.array_equal(features[0], features[1])  # each sample its own draws
    length = int(clean["features_len"][0])
    reference = compute_features(
        tf.constant(feeding.read_audio(speechy, RATE)[0], tf.float32), cfg
    )[0].numpy()
    np.testing.assert_allclose(clean["features"][0, :length], reference)
    assert not np.allclose(features[0, : min(length, int(trained["features_len"][0]))],
                           reference[: int(trained["features_len"][0])])  # fmt: skip


def test_trainer_augments_training_batches_only(tiny_config, alphabet, sample_csv,
                                                monkeypatch):  # fmt: skip
    from util import evaluate, training
    from util.distributed import make_strategy

    calls = []

    def spy(original):
        def make(*args, **kwargs):
            augment = kwargs.get("augment", args[5] if len(args) > 5 else None)
            calls.append((len(args[1]), augment))
            return original(*args, **kwargs)

        return make

    monkeypatch.setattr(training, "make_dataset", spy(training.make_dataset))
    monkeypatch.setattr(evaluate, "make_dataset", spy(evaluate.make_dataset))
    csv_path = sample_csv()
    cfg = tiny_config(data={"train_files": (csv_path,), "dev_files": (csv_path,),
                            "test_files": (csv_path,),
                            "augment": ("pitch", "time_mask")})  # fmt: skip
    session = training.build_session(cfg, alphabet, make_strategy([]))
    training.train(session)
    test_sets = training.load_sets(cfg.data.test_files, cfg, alphabet, 0)
    evaluate.run_tests(session.steps, test_sets, cfg, alphabet)
    augmented = [a for _, a in calls if a is not None]
    assert len(augmented) == 1  # the one training epoch
    assert [s.KIND for s in augmented[0].augmentations] == ["pitch", "time_mask"]
    assert augmented[0].seed == cfg.train.random_seed
    assert sum(a is None for _, a in calls) == 2  # the dev and the test pass: clean


# -- reproducibility -------------------------------------------------------------------


def test_same_seed_same_input_other_seed_or_epoch_other_input(speechy):
    cfg = FeatureConfig()
    samples = samples_of(speechy)
    specs = ["reverb[delay=20~10]", "warp", "frequency_mask", "dropout"]
    first = train_input(samples, cfg, specs, seed=3)
    np.testing.assert_array_equal(first, train_input(samples, cfg, specs, seed=3))
    assert not np.array_equal(first, train_input(samples, cfg, specs, seed=4))
    assert not np.array_equal(first, train_input(samples, cfg, specs, seed=3, epoch=1))


def test_augmentation_independent_of_batch_order_and_parallelism(speechy):
    """A sample's draws depend on (seed, epoch, index) only: any batch plan, any
    number of tf.data threads gives it the same input (constant ranges)."""
    cfg = FeatureConfig()
    samples = samples_of(speechy, copies=3)
    augment = AugmentPass(parse_augmentations(["frequency_mask", "volume[dbfs=-6~3]"]),
                          seed=5)  # fmt: skip

    def by_index(plan):
        out = {}
        for batch in feeding.make_dataset(samples, plan, cfg, augment=augment):
            for row, index in enumerate(batch["index"].numpy()):
                n = int(batch["features_len"][row])
                out[int(index)] = batch["features"][row, :n].numpy()
        return out

    one, other = by_index([[0, 1, 2]]), by_index([[2], [0], [1]])
    for index in range(3):
        np.testing.assert_array_equal(one[index], other[index])


def test_clock_moves_ranges_over_the_run():
    assert epoch_clocks(0, 0, 4) == (0.0, 0.25)
    assert epoch_clocks(3, 0, 4) == (0.75, 1.0)
    augment = AugmentPass((), 1, clock_start=0.5, clock_end=1.0)
    np.testing.assert_allclose(
        augment.clocks(np.arange(4), 4), [0.5, 0.625, 0.75, 0.875]
    )


# -- the feature cache -----------------------------------------------------------------


def test_feature_cache_gets_features_domain_augmentation_only(speechy, tmp_path):
    cfg = FeatureConfig()
    samples = samples_of(speechy)
    cache = feeding.FeatureCache.open(str(tmp_path), samples, cfg)
    plan = [[0]]
    clean = next(iter(feeding.make_dataset(samples, plan, cfg, cache)))["features"]
    augment = AugmentPass(parse_augmentations(["add[stddev=1]"]), seed=1)
    noisy = next(iter(feeding.make_dataset(samples, plan, cfg, cache, augment=augment)))
    assert not np.allclose(noisy["features"], clean)
    with pytest.raises(ValueError, match="--augment 'reverb.*features"):
        feeding.make_dataset(
            samples,
            plan,
            cfg,
            cache,
            augment=AugmentPass(parse_augmentations(["reverb"]), 1),
        )


# -- sample-domain kinds against DeepSpeech 0.9's definitions ------------------------


def ds09_reverb(audio, delay, decay, rate):
    """DeepSpeech 0.9.3's Reverb.apply loop, for comparison."""
    audio = np.array(audio, dtype=np.float64)
    orig = augment_sample.max_dbfs(audio)
    g = augment_sample.gain_db_to_ratio(-decay)
    result = np.copy(audio)
    for prime in (17, 19, 23, 29, 31):
        layer = np.copy(audio)
        n_delay = max(16, math.floor(delay * (prime / 17) * rate / 1000.0))
        for w in range(0, math.floor(len(audio) / n_delay)):
            w1, w2 = w * n_delay, (w + 1) * n_delay
            width = min(len(audio) - w2, n_delay)
            layer[w2 : w2 + width] += g * layer[w1 : w1 + width]
        result += layer
    return augment_sample.normalize_audio(result, dbfs=orig)


def test_reverb_equals_ds09_loop_and_levels_keep_the_peak():
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal(3000)).astype(np.float32)
    ours = augment_sample.reverb(audio, 5.0, 3.0, RATE)
    np.testing.assert_allclose(ours, ds09_reverb(audio, 5.0, 3.0, RATE), atol=1e-9)
    assert augment_sample.max_dbfs(ours) == pytest.approx(
        augment_sample.max_dbfs(audio)
    )
    level = augment_sample.normalize_audio(audio, -20.0)
    assert augment_sample.max_dbfs(level) == pytest.approx(-20.0)
    assert len(augment_sample.resample(audio, RATE, 8000)) == len(audio)
    assert len(augment_sample.codec(audio, RATE, 16000)) == len(audio)


def test_overlay_source_errors_name_the_spec(tmp_path):
    missing = parse_augmentations([f"overlay[source={tmp_path}/none.csv]"])
    with pytest.raises(AugmentationError, match="overlay source .*none.csv"):
        augment_sample.SampleAugmenter(missing, RATE, lambda ref, rate: np.zeros(1))
    empty = tmp_path / "empty.csv"
    empty.write_text("wav_filename,wav_filesize,transcript\n")
    overlay = parse_augmentations([f"overlay[source={empty}]"])
    with pytest.raises(AugmentationError, match="holds no samples"):
        augment_sample.SampleAugmenter(overlay, RATE, lambda ref, rate: np.zeros(1))


def test_undecodable_overlay_source_is_skipped_with_a_warning(tmp_path, caplog):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    source = tmp_path / "noise.csv"
    source.write_text(f"wav_filename,wav_filesize,transcript\n{broken},0,\n")
    augmenter = augment_sample.SampleAugmenter(
        parse_augmentations([f"overlay[source={source}]"]), RATE,
        feeding.read_sample_audio,
    )  # fmt: skip
    audio = np.full(1000, 0.1, np.float32)
    out = augmenter.apply(audio, 0.0, lambda k: np.random.default_rng(k))
    np.testing.assert_array_equal(out, audio)
    assert any("broken.wav" in r.getMessage() for r in caplog.records)


# -- bin/play.py and bin/data_set_tool.py --augment ----------------------------------


def load_tool(name: str):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "bin", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_{name}_tool", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_play_writes_what_training_hears(
    speechy, noise_csv, tmp_path, capsys, monkeypatch
):
    play = load_tool("play")
    csv_path = tmp_path / "one.csv"
    csv_path.write_text(f"wav_filename,wav_filesize,transcript\n{speechy},0,ab\n")
    specs = [f"overlay[source={noise_csv},snr=6]", "time_mask[domain=signal,n=2]",
             "pitch"]  # fmt: skip
    argv = [str(csv_path), "--output", str(tmp_path / "out"), "--clock", "0.2"]
    for spec in specs:
        argv += ["--augment", spec]
    assert play.main(argv) == 0
    written, rate = soundfile.read(str(tmp_path / "out" / "sample00000000.wav"))
    clean, _ = soundfile.read(speechy)
    assert rate == RATE and len(written) == len(clean)
    assert not np.allclose(written, clean, atol=1e-3)
    assert "pitch change the spectrogram" in capsys.readouterr().err
    # the same waveform the training pipeline starts from (row 0, epoch 0, seed)
    augmenter = augment_sample.SampleAugmenter(
        parse_augmentations(specs), RATE, feeding.read_sample_audio
    )
    augment = AugmentPass(parse_augmentations(specs), 4568)
    sample_part = augmenter.apply(clean.astype(np.float32), 0.2,
                                  lambda k: augment.rng(0, k))  # fmt: skip
    masked = np.abs(written) < 1e-4
    np.testing.assert_allclose(written[~masked], sample_part[~masked], atol=1e-4)
    assert masked.sum() > 0.005 * RATE  # two masks of ~10 ms
    import io
    import types

    piped = io.BytesIO()
    monkeypatch.setattr(play.sys, "stdout", types.SimpleNamespace(buffer=piped))
    assert play.main([str(csv_path), "--pipe", "--quiet"]) == 0
    monkeypatch.undo()
    assert len(soundfile.read(io.BytesIO(piped.getvalue()))[0]) == len(clean)
    assert play.main([str(csv_path), "--augment", "echo"]) == 1
    assert "--augment 'echo'" in capsys.readouterr().err


def test_data_set_tool_writes_an_augmented_copy(speechy, tmp_path, capsys):
    tool = load_tool("data_set_tool")
    source = tmp_path / "src.csv"
    source.write_text(f"wav_filename,wav_filesize,transcript\n{speechy},0,ab\n")
    target = tmp_path / "loud.csv"
    argv = [str(source), str(target), "--augment", "volume[dbfs=-20]"]
    assert tool.main(argv) == 0
    wav = tmp_path / "loud" / "sample00000000.wav"
    audio, _ = soundfile.read(str(wav))
    assert augment_sample.max_dbfs(audio) == pytest.approx(-20, abs=0.1)
    assert tool.main([str(source), str(tmp_path / "x.csv"), "--augment", "tempo"]) == 1
    assert "--augment tempo" in capsys.readouterr().err
