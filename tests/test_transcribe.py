"""deepspeech-transcribe and transcribe.py: VAD split, outputs, lists, resume, skips.

Fast tests need no model (VAD, subtitles, job lists). The others use the session's
small LDC93S1 model (conftest ``ldc93s1_model``): a long file of LDC93S1 clips between
silence and noise must give one segment per clip, each transcribed exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
import srt
import webvtt

from deepspeech import outputs, transcribe, vad
from helpers import LDC93S1_TEXT, LDC93S1_WAV, RATE


def _long_recording(path, n_clips=3, seed=0, noise_std=30):
    """LDC93S1 ``n_clips`` times, each after silence, quiet noise and silence.

    Silence is a noise floor (std 3): after exact zeros WebRTC's VAD may take the
    onset of noise for speech.

    Returns the (start, end) seconds of each clip.
    """
    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    rng = np.random.default_rng(seed)
    parts, clips, t = [], [], 0.0
    for _ in range(n_clips):
        noise = (rng.standard_normal(2 * RATE) * noise_std).astype(np.int16)
        for part in (
            np.zeros(RATE * 3 // 2, np.int16),
            noise,
            np.zeros(RATE, np.int16),
        ):
            parts.append(part)
            t += len(part) / RATE
        parts.append(pcm)
        clips.append((t, t + len(pcm) / RATE))
        t += len(pcm) / RATE
    parts.append((rng.standard_normal(RATE) * 3).astype(np.int16))
    soundfile.write(str(path), np.concatenate(parts), RATE, subtype="PCM_16")
    return clips


# --- no model ---------------------------------------------------------------------


def test_vad_finds_one_segment_per_clip(tmp_path):
    clips = _long_recording(tmp_path / "long.wav", n_clips=4)
    pcm, _ = soundfile.read(str(tmp_path / "long.wav"), dtype="int16")
    segments = vad.split(pcm, RATE, aggressiveness=3)
    assert len(segments) == len(clips)
    for segment, (start, end) in zip(segments, clips):
        # each segment covers its clip, with at most ~0.7 s of padding around it
        assert start - 0.7 <= segment.start / RATE <= start + 0.15
        assert end - 0.15 <= segment.end / RATE <= end + 0.7
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:]))


def test_vad_cuts_long_segments_and_rejects_bad_settings():
    rng = np.random.default_rng(1)
    t = np.arange(RATE * 40) / RATE
    # 40 s of "speech" (a warbling tone in noise), quieter every 7 s
    loud = 8000 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t)))
    envelope = np.where((t % 7) < 0.2, 0.05, 1.0)
    pcm = (loud * envelope + rng.standard_normal(len(t)) * 300).astype(np.int16)
    segments = vad.split(pcm, RATE, 0, max_segment_ms=10000)
    assert len(segments) >= 4
    assert max(s.duration_s(RATE) for s in segments) <= 10.0 + 0.6  # + widening
    with pytest.raises(ValueError, match="44100"):
        vad.split(pcm, 44100)
    with pytest.raises(ValueError, match="vad_aggressiveness"):
        vad.split(pcm, RATE, 5)


def _result():
    words = [
        {"word": w, "start": 1.0 + 0.5 * i, "end": 1.3 + 0.5 * i, "confidence": 0.9}
        for i, w in enumerate(f"w{k}" for k in range(14))
    ]
    return transcribe.file_result(
        "a.wav",
        10.0,
        RATE,
        [
            {
                "start": 0.8,
                "end": 8.5,
                "transcript": " ".join(w["word"] for w in words),
                "confidence": -1.0,
                "words": words,
            },
            {
                "start": 9.0,
                "end": 9.5,
                "transcript": "",
                "confidence": 0.0,
                "words": [],
            },
        ],
    )


def test_subtitles_parse_back_with_their_libraries():
    result = _result()
    subs = list(srt.parse(outputs.render(result, "srt")))
    # 14 words over 7 s: cut at 12 words or 6 s; the empty segment gives no cue
    assert [s.content.split()[0] for s in subs] == ["w0", "w12"]
    assert subs[0].start.total_seconds() == 1.0
    assert subs[-1].end.total_seconds() == pytest.approx(1.3 + 0.5 * 13)
    captions = webvtt.from_string(outputs.render(result, "vtt")).captions
    assert [c.text for c in captions] == [s.content for s in subs]
    assert captions[0].start == "00:00:01.000"
    tlog = json.loads(outputs.render(result, "tlog"))
    assert tlog[0] == {
        "start": 800,
        "end": 8500,
        "transcript": result["segments"][0]["transcript"],
    }


def test_jobs_from_dirs_lists_catalogs_and_csvs(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for name in ("a.wav", "b.flac", "notes.txt", "sub/c.mp3"):
        (src / name).write_bytes(b"x")
    flat = transcribe.find_jobs(str(src), None, recursive=False)
    assert [os.path.basename(j.src) for j in flat] == ["a.wav", "b.flac"]
    deep = transcribe.find_jobs(str(src), str(tmp_path / "out"), recursive=True)
    assert [j.base for j in deep] == [
        str(tmp_path / "out" / "a"),
        str(tmp_path / "out" / "b"),
        str(tmp_path / "out" / "sub" / "c"),
    ]
    one = transcribe.find_jobs(str(src / "a.wav"), str(tmp_path / "x.json"), False)
    assert one[0].base == str(tmp_path / "x")
    listing = tmp_path / "files.txt"
    listing.write_text("# audio\nsrc/a.wav\n\nsrc/sub/c.mp3\n")
    assert [j.base for j in transcribe.find_jobs(str(listing), None, False)] == [
        str(src / "a"),
        str(src / "sub" / "c"),
    ]
    table = tmp_path / "set.csv"
    table.write_text("wav_filename,wav_filesize,transcript\nsrc/b.flac,1,hi\n")
    assert transcribe.find_jobs(str(table), None, False)[0].src == str(src / "b.flac")
    catalog = tmp_path / "x.catalog"
    catalog.write_text(json.dumps([{"audio": "src/a.wav", "tlog": "t/a.tlog"}]))
    assert transcribe.find_jobs(str(catalog), None, False)[0].base == str(
        tmp_path / "t" / "a"
    )
    with pytest.raises(ValueError, match="no such file"):
        transcribe.find_jobs(str(tmp_path / "missing"), None, False)


# --- with the trained model -------------------------------------------------------


def test_long_file_segments_are_exact(ldc93s1_model, tmp_path, capsys):
    model, scorer, _ = ldc93s1_model
    clips = _long_recording(tmp_path / "long.wav", n_clips=3)
    args = [
        "--model",
        model,
        "--scorer",
        scorer,
        "--src",
        str(tmp_path / "long.wav"),
        "--dst",
        str(tmp_path / "out") + os.sep,
        "--workers",
        "2",
        "--batch_size",
        "2",
        "--outputs",
        "json,srt,vtt,tlog",
    ]
    assert transcribe.main(args) == 0
    assert "Transcribed 1 files" in capsys.readouterr().err
    result = json.loads((tmp_path / "out" / "long.json").read_text())
    segments = result["segments"]
    assert [s["transcript"] for s in segments] == [LDC93S1_TEXT] * len(clips)
    for segment, (start, end) in zip(segments, clips):
        assert start - 0.7 <= segment["start"] and segment["end"] <= end + 0.7
        words = segment["words"]
        assert [w["word"] for w in words] == LDC93S1_TEXT.split()
        assert segment["start"] <= words[0]["start"] and words[-1]["end"] <= end + 0.7
        assert all(0 < w["confidence"] <= 1 for w in words)
    subs = list(srt.parse((tmp_path / "out" / "long.srt").read_text()))
    assert [s.content for s in subs] == [LDC93S1_TEXT] * len(clips)
    assert len(webvtt.read(str(tmp_path / "out" / "long.vtt")).captions) == len(clips)
    # one worker, no process pool: the same result
    one = ["--workers", "1", "--force", "--outputs", "json"]
    assert transcribe.main(args[:-2] + one) == 0
    again = json.loads((tmp_path / "out" / "long.json").read_text())
    assert again["segments"] == segments


def test_unreadable_files_are_skipped_and_reported(ldc93s1_model, tmp_path, capsys):
    model, scorer, _ = ldc93s1_model
    src = tmp_path / "in"
    src.mkdir()
    pcm, _ = soundfile.read(LDC93S1_WAV, dtype="int16")
    soundfile.write(str(src / "good.flac"), pcm, RATE)
    (src / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    (src / "empty.ogg").write_bytes(b"")
    status = transcribe.main(
        ["--model", model, "--scorer", scorer, "--src", str(src), "--workers", "1"]
    )
    err = capsys.readouterr().err
    assert status == transcribe.EXIT_SKIPPED
    assert "Skipped 2 files that could not be read" in err
    assert "broken.wav" in err and "empty.ogg" in err
    good = json.loads((src / "good.json").read_text())
    assert good["transcript"] == LDC93S1_TEXT
    assert not (src / "broken.json").exists()


def test_killed_folder_run_resumes(ldc93s1_model, tmp_path, repo_root):
    model, scorer, _ = ldc93s1_model
    src = tmp_path / "talks"
    src.mkdir()
    for k in range(8):
        _long_recording(src / f"talk{k}.wav", n_clips=4, seed=k)
    cmd = [
        sys.executable,
        "-m",
        "deepspeech.transcribe",
        "--model",
        model,
        "--scorer",
        scorer,
        "--src",
        str(src),
        "--workers",
        "1",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [
                repo_root,
                os.path.join(repo_root, "native_client"),
                os.path.join(repo_root, "native_client", "python"),
            ]
        ),
    }
    proc = subprocess.Popen(
        cmd, env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not (src / "talk0.json").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run, as a crash or kill -9 would
    proc.wait()
    done = {p.name for p in src.glob("*.json")}
    assert "talk0.json" in done and len(done) < 8, done
    first = {name: (src / name).stat().st_mtime_ns for name in done}
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(done)} already done" in again.stderr
    assert f"Transcribed {8 - len(done)} files" in again.stderr
    assert {name: (src / name).stat().st_mtime_ns for name in done} == first
    for k in range(8):
        result = json.loads((src / f"talk{k}.json").read_text())
        assert [s["transcript"] for s in result["segments"]] == [LDC93S1_TEXT] * 4


def test_checkpoint_dir_mode_matches_the_exported_model(ldc93s1_model, tmp_path):
    import transcribe as script  # the repository's transcribe.py

    model, scorer, checkpoint_dir = ldc93s1_model
    _long_recording(tmp_path / "long.wav", n_clips=2)
    common = [
        "--scorer_path",
        scorer,
        "--src",
        str(tmp_path / "long.wav"),
        "--workers",
        "1",
        "--outputs",
        "json",
    ]
    assert (
        script.main(
            [
                "--checkpoint_dir",
                checkpoint_dir,
                *common,
                "--dst",
                str(tmp_path / "ckpt.json"),
            ]
        )
        == 0
    )
    assert (
        script.main(["--model", model, *common, "--dst", str(tmp_path / "tflite.json")])
        == 0
    )
    from_ckpt = json.loads((tmp_path / "ckpt.json").read_text())
    from_tflite = json.loads((tmp_path / "tflite.json").read_text())
    assert from_ckpt["segments"] == from_tflite["segments"]
    assert [s["transcript"] for s in from_ckpt["segments"]] == [LDC93S1_TEXT] * 2
    assert script.main(["--checkpoint_dir", str(tmp_path), *common]) == 1


def test_transcribe_and_server_import_no_tensorflow(repo_root):
    """deepspeech-transcribe and deepspeech-server run on the TF-free client."""
    code = (
        "import sys; import deepspeech.transcribe, deepspeech.server; "
        "assert 'tensorflow' not in sys.modules, 'TF imported'; "
        "assert not [m for m in sys.modules if m == 'util' or m.startswith('util.')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/", timeout=120)
