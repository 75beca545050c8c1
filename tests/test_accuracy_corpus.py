"""Tests for bench/accuracy's corpus builder pieces that need no synthesis engine, and
for bin/run-small-data.sh being a plain list of existing DeepSpeech.py flags."""

from __future__ import annotations

import importlib.util
import os
import random

import numpy as np
import pytest
from absl import flags

from util import flags as ds_flags
from util.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    path = os.path.join(ROOT, "bench", "accuracy", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"accuracy_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = load("corpus")


def test_held_out_sentences_are_unseen_but_every_word_is_in_training():
    sentences = corpus.read_sentences()
    assert len(sentences) == 758
    train, dev, test = corpus.split_sentences(sentences, 50, 30, random.Random(1))
    assert (len(train), len(dev), len(test)) == (678, 30, 50)
    assert not set(train) & set(dev + test) and not set(dev) & set(test)
    vocabulary = {w for s in train for w in s.split()}
    assert all(w in vocabulary for s in dev + test for w in s.split())
    again = corpus.split_sentences(sentences, 50, 30, random.Random(1))
    assert again == (train, dev, test)  # seeded


def test_split_refuses_what_cannot_be_held_out():
    sentences = ["a b c", "d e f", "a b d"]  # only "a b d" can go
    with pytest.raises(ValueError, match="only 1 of 3"):
        corpus.split_sentences(sentences, 2, 0, random.Random(0))


def test_dev_and_test_voices_are_never_trained_on():
    split = corpus.voice_split(random.Random(3))
    variant = {  # espeak-ng voice: its variant; others: their name
        v.id: v.name.split("+")[-1] for group in split.values() for v in group
    }
    train = {variant[v.id] for v in split["train"]}
    for held in ("dev", "test"):
        assert not train & {variant[v.id] for v in split[held]}
    assert not {variant[v.id] for v in split["dev"]} & {
        variant[v.id] for v in split["test"]
    }
    engines = {g: {v.engine for v in vs} for g, vs in split.items()}
    assert "festival" in engines["test"]  # a whole engine held out for test
    assert "festival" not in engines["train"] | engines["dev"]
    # flite's slt and kal are festival's slt and kal: test only, like festival
    assert {"slt", "kal16"}.isdisjoint(train)


def test_training_utterances_draw_accents_speeds_and_pitches():
    voices = corpus.voice_split(random.Random(0))["train"]
    utts = corpus.utterances(voices, ["one two three"] * 200, 2, random.Random(0))
    assert len(utts) == 400
    assert all("+" in u.voice.name for u in utts if u.voice.engine == "espeak-ng")
    assert len({u.voice.name.split("+")[0] for u in utts if "+" in u.voice.name}) > 4
    rates = [u.rate for u in utts]
    assert 0.85 <= min(rates) < 0.9 and 1.15 < max(rates) <= 1.2
    assert all(0.94 <= u.resample <= 1.06 for u in utts)


@pytest.mark.parametrize("snr_db", [10.0, 0.0, 25.0])
def test_noise_is_added_at_the_stated_snr(snr_db):
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    speech = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    speech = speech.astype(np.float32)
    noisy = corpus.add_noise(speech, snr_db, rng)
    noise = noisy.astype(np.float64) - speech
    measured = 10 * np.log10(
        np.mean(speech.astype(np.float64) ** 2) / np.mean(noise**2)
    )
    assert measured == pytest.approx(snr_db, abs=0.01)
    # pink: the lowest quarter of the spectrum holds most of the noise power
    power = np.abs(np.fft.rfft(noise)) ** 2
    assert power[: len(power) // 4].sum() > 0.7 * power.sum()
    same = corpus.add_noise(speech, snr_db, np.random.default_rng(0))
    assert np.array_equal(noisy, same)


def test_room_impulse_response_decays_60_db_in_rt60():
    rir = corpus.room_impulse_response(0.5, np.random.default_rng(1))
    assert len(rir) == 8000 and rir[0] == 1.0
    tail = rir[1:]
    # Schroeder backward integration of the reverberant tail: -60 dB at ~rt60.
    energy = np.cumsum(tail[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0])
    at_250ms = decay_db[int(0.25 * 16000)]
    assert -36 < at_250ms < -24  # half of RT60: -30 dB


def test_reverberation_keeps_length_and_peak_and_smears_energy():
    rng = np.random.default_rng(2)
    clicks = np.zeros(16000, np.float32)
    clicks[::4000] = 0.5
    wet = corpus.reverberate(clicks, rng)
    assert wet.shape == clicks.shape
    assert np.max(np.abs(wet)) == pytest.approx(0.5, rel=1e-5)
    assert np.count_nonzero(np.abs(wet) > 1e-3) > 10 * np.count_nonzero(clicks)


def test_small_data_recipe_is_a_plain_list_of_existing_flags():
    run = load("run")
    recipe = run.small_data_flags(os.path.join(ROOT, "bin", "run-small-data.sh"))
    assert recipe and all(a.startswith("--") for a in recipe[::2])
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["DeepSpeech.py"] + recipe + ["--n_hidden", "64"])  # later flags win
    assert values.n_hidden == 64
    cfg = Config.from_flags(values.flag_values_dict())
    assert cfg.train.lr_decay == "cosine" and cfg.model.dropout_rate == 0.2


def test_ablation_appends_or_removes_recipe_flags():
    run = load("run")
    recipe = ["--n_hidden", "128", "--augment", "a[p=1]", "--augment", "b", "--x", "1"]
    assert run.ablate(recipe, ["--n_hidden", "64"]) == recipe + ["--n_hidden", "64"]
    assert run.ablate(recipe, ["--without", "augment", "--y", "2"]) == [
        "--n_hidden", "128", "--x", "1", "--y", "2"
    ]  # fmt: skip


def test_manifest_names_the_voice_of_every_wav_and_its_noisy_copies(tmp_path):
    plan, train_sentences = corpus.make_plan(seed=3, n_test=5, n_dev=4)
    corpus.write_manifest(str(tmp_path), plan)
    run = load("run")
    voices = run.read_voices(str(tmp_path), seed=3)
    sizes = {name: len(utts) for name, utts in plan.items()}
    assert len(voices) == sum(sizes.values()) + 2 * sizes["test-clean"]
    for i, utt in enumerate(plan["test-clean"]):
        for copy in ("clean", "noise", "reverb"):
            assert voices[f"test-{copy}-{i:05d}.wav"] == utt.voice.id
    train_voices = {u.voice.id for u in plan["train"]}
    assert not train_voices & {voices[f"dev-{i:05d}.wav"] for i in range(4)}
    assert {v.split(":")[0] for k, v in voices.items() if k.startswith("test-")} == {
        "espeak-ng", "flite", "festival"
    }  # fmt: skip


def test_clean_results_are_broken_down_by_held_out_engine(tmp_path):
    import json

    run = load("run")
    voices = {
        "test-clean-00000.wav": "espeak-ng:en+m6",
        "test-clean-00001.wav": "festival:kal_diphone",
        "test-clean-00002.wav": "festival:ked_diphone",
        "test-noise-00000.wav": "espeak-ng:en+m6",
    }
    rows = [
        {"wav_filename": "/c/wav/test-clean-00000.wav", "src": "a b c d",
         "res": "a b c d"},
        {"wav_filename": "/c/wav/test-clean-00001.wav", "src": "a b", "res": "a x"},
        {"wav_filename": "/c/wav/test-clean-00002.wav", "src": "c d", "res": ""},
        {"wav_filename": "/c/wav/test-noise-00000.wav", "src": "a b c d", "res": ""},
    ]  # fmt: skip
    path = tmp_path / "test.json"
    path.write_text(json.dumps(rows))
    by_engine = run.score_by_engine(str(path), voices)
    assert set(by_engine) == {"espeak-ng", "festival"}  # noise rows are not clean
    assert by_engine["espeak-ng"] == (0.0, 0.0, 1)
    wer, cer, n = by_engine["festival"]
    assert (wer, n) == (0.75, 2)  # 1 + 2 word errors over 4 words


def test_more_engines_add_train_and_dev_voices_and_leave_every_other_wav_as_it_was():
    plan, train_sentences = corpus.make_plan(seed=3, n_test=5, n_dev=4)
    before, same_sentences = corpus.make_plan(
        seed=3, n_test=5, n_dev=4, more_engines=False
    )
    assert train_sentences == same_sentences
    for name, utts in before.items():  # the same WAV names keep the same utterances
        assert plan[name][: len(utts)] == utts
    assert plan["test-clean"] == before["test-clean"]
    assert plan["test-seen"] == before["test-seen"]
    added = {
        name: {u.voice.id for u in plan[name][len(before[name]) :]}
        for name in ("train", "dev")
    }
    more = corpus.more_voices()
    assert added["dev"] == {v.id for v in more["dev"]}  # each dev voice, every sentence
    assert len(plan["train"]) - len(before["train"]) == len(train_sentences)
    assert added["train"] <= {v.id for v in more["train"]}
    assert {v.split(":")[0] for v in added["train"]} == {"mbrola", "pico", "rhvoice"}
    # no speaker in two roles: dev voices are never trained on, and RHVoice's slt
    # (the speaker of the test voices flite slt and festival's slt) is not used
    assert not added["dev"] & {u.voice.id for u in plan["train"]}
    names = {v.name for group in more.values() for v in group}
    assert "slt" not in names
    test_names = {u.voice.name.split("+")[-1] for u in plan["test-clean"]}
    assert not names & test_names
