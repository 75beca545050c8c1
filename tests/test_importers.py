"""Importers on fixture archives laid out exactly like each corpus (generated audio).

Each test builds a tiny corpus (real directory structure, manifest formats and audio
containers: FLAC, MP3, NIST SPHERE), runs the importer's ``main`` in-process and checks
the CSVs, that every WAV is 16 kHz mono int16, and the skip report. No network: the
download test serves a file from a local HTTP server.
"""

from __future__ import annotations

import collections
import csv
import functools
import http.server
import importlib.util
import io
import os
import tarfile
import threading
import zipfile

import numpy as np
import pytest
import soundfile as sf

from util.importing import archives, conversion, importer_cli, importers, transcripts
from util.importing.splits import SplitSpec, assign_splits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALPHABET = os.path.join(REPO, "data", "alphabet.txt")
BIN_IMPORTERS = (
    "librivox",
    "cv2",
    "ted",
    "voxforge",
    "timit",
    "ldc93s1",
    "dir",
)


def load_bin(name: str):
    path = os.path.join(REPO, "bin", f"import_{name}.py")
    spec = importlib.util.spec_from_file_location(f"import_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tone(duration_s: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """[n, channels] float32: a sine plus a little noise (not silence, so MP3 works)."""
    n = int(round(duration_s * rate))
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    data = [0.3 * np.sin(2 * np.pi * 220 * (c + 1 + seed) * t) for c in range(channels)]
    out = np.stack(data, axis=1) + 0.01 * rng.standard_normal((n, channels))
    return out.astype(np.float32)


def write_audio(path, duration_s, rate=16000, channels=1, fmt=None, seed=0) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subtype = {"MP3": "MPEG_LAYER_III", "FLAC": "PCM_16", "NIST": "PCM_16"}.get(
        fmt, "PCM_16"
    )
    sf.write(
        path,
        tone(duration_s, rate, channels, seed),
        rate,
        format=fmt or "WAV",
        subtype=subtype,
    )


def write_text(path, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def make_tar(src_dir, archive, arcname) -> str:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_dir, arcname=arcname)
    return str(archive)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def check_wavs(csv_path, rows) -> None:
    """Every row's WAV exists, is 16 kHz mono 16-bit, and its size is in the CSV."""
    base = os.path.dirname(csv_path)
    for row in rows:
        wav = os.path.join(base, row["wav_filename"])
        assert not os.path.isabs(row["wav_filename"])
        info = sf.info(wav)
        assert (info.format, info.subtype) == ("WAV", "PCM_16")
        assert (info.samplerate, info.channels) == (16000, 1)
        assert int(row["wav_filesize"]) == os.path.getsize(wav)


def run_main(name, argv, capsys):
    code = load_bin(name).main([str(a) for a in argv] + ["--no-show_progressbar"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


# -- corpora --------------------------------------------------------------------------


def test_librivox(tmp_path, capsys):
    chapter = tmp_path / "src" / "LibriSpeech" / "dev-clean" / "84" / "121123"
    write_audio(str(chapter / "84-121123-0000.flac"), 1.0, fmt="FLAC")
    write_audio(str(chapter / "84-121123-0001.flac"), 0.2, fmt="FLAC", seed=1)
    write_text(
        str(chapter / "84-121123.trans.txt"),
        "84-121123-0000 GO DO YOU HEAR\n"
        "84-121123-0001 BUT IN LESS THAN FIVE MINUTES THE STAIRCASE GROANED\n",
    )
    target = tmp_path / "out"
    target.mkdir()
    make_tar(
        tmp_path / "src" / "LibriSpeech", target / "dev-clean.tar.gz", "LibriSpeech"
    )
    report = run_main("librivox", [target, "--workers", 2], capsys)  # found in target
    rows = read_csv(target / "librivox-dev-clean.csv")
    assert [r["transcript"] for r in rows] == ["go do you hear"]
    check_wavs(target / "librivox-dev-clean.csv", rows)
    assert "skipped 1: transcript too long for audio (e.g. 84-121123-0001)" in report


def test_common_voice_normalize_filter_and_shared_clips(tmp_path, capsys):
    lang = tmp_path / "cv-corpus-17.0-2024-03-15" / "fr"
    for k in range(4):  # Common Voice: 48 kHz MP3 (here stereo too, to downmix)
        write_audio(
            str(lang / "clips" / f"common_voice_fr_{k}.mp3"),
            1.0,
            48000,
            2,
            "MP3",
            seed=k,
        )
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\n"
    rows = {
        "train": [(0, 'Un "café" à Noël.'), (1, "Ça coûte 5€")],
        "dev": [(2, "Être ou ne pas être")],
        "test": [(3, "   ")],
        "validated": [(0, 'Un "café" à Noël.'), (2, "Être ou ne pas être")],
    }
    for split, entries in rows.items():
        body = "".join(
            f"abc\tcommon_voice_fr_{k}.mp3\t{text}\t2\t0\t\t\t\n" for k, text in entries
        )
        write_text(str(lang / f"{split}.tsv"), header + body)
    target = tmp_path / "out"
    argv = [
        target,
        "--archive",
        tmp_path / "cv-corpus-17.0-2024-03-15",
        "--alphabet",
        ALPHABET,
        "--normalize",
        "--filter_alphabet",
        "--workers",
        1,
    ]
    report = run_main("cv2", argv, capsys)
    train = read_csv(target / "train.csv")
    # --normalize drops what the alphabet lacks ("5", "€", quotes, punctuation)
    assert [r["transcript"] for r in train] == ["un cafe a noel", "ca coute"]
    assert (
        read_csv(target / "validated.csv")[0]["wav_filename"]
        == train[0]["wav_filename"]
    )
    assert [r["transcript"] for r in read_csv(target / "dev.csv")] == [
        "etre ou ne pas etre"
    ]
    assert not (target / "test.csv").exists()
    check_wavs(target / "train.csv", train)
    assert "converted 3 files" in report  # clip 0 is in train and validated: once
    assert "skipped 1: empty transcript" in report


def test_ted_segments(tmp_path, capsys):
    root = tmp_path / "TEDLIUM_release2"
    for split in ("train", "dev", "test"):
        talk = f"Talk{split.capitalize()}_2010"
        write_audio(str(root / split / "sph" / f"{talk}.sph"), 4.0, fmt="NIST")
        write_text(
            str(root / split / "stm" / f"{talk}.stm"),
            f"{talk} 1 {talk} 0.00 1.00 <o,f0,male> ignore_time_segment_in_scoring\n"
            f"{talk} 1 {talk} 1.00 2.50 <o,f0,male> i 'm here <unk> today\n"
            f"{talk} 1 {talk} 2.50 4.00 <o,f0,male> thank you\n",
        )
    archive = make_tar(root, tmp_path / "TEDLIUM_release2.tar.gz", "TEDLIUM_release2")
    target = tmp_path / "out"
    run_main("ted", [target, "--archive", archive, "--release", "2"], capsys)
    rows = read_csv(target / "ted-dev.csv")
    assert [r["transcript"] for r in rows] == ["i'm here today", "thank you"]
    check_wavs(target / "ted-dev.csv", rows)
    assert sf.info(str(target / rows[0]["wav_filename"])).frames == 24000  # 1.5 s
    assert len(read_csv(target / "ted-train.csv")) == 2


def test_voxforge_archives_per_session(tmp_path, capsys):
    sessions = tmp_path / "tgz"
    sessions.mkdir()
    for k, (user, subdir, fmt) in enumerate(
        [("anna", "wav", "WAV"), ("bob", "flac", "FLAC")]
    ):
        name = f"{user}-20080101-x{k}"
        session = tmp_path / "build" / name
        ext = ".wav" if fmt == "WAV" else ".flac"
        write_audio(str(session / subdir / f"a0001{ext}"), 1.0, 48000, fmt=fmt, seed=k)
        write_text(str(session / "etc" / "prompts-original"), "a0001 Hello, World!\n")
        write_text(str(session / "LICENSE"), "GPL\n")
        make_tar(session, sessions / f"{name}.tgz", name)
    target = tmp_path / "out"
    run_main("voxforge", [target, "--archive", sessions, "--workers", 1], capsys)
    rows = []
    for split in ("train", "dev", "test"):
        path = target / f"voxforge-{split}.csv"
        if path.exists():
            check_wavs(path, read_csv(path))
            rows += read_csv(path)
    assert sorted(r["transcript"] for r in rows) == ["hello world", "hello world"]


def test_timit_zip_with_sample_offsets(tmp_path, capsys):
    utterances = {
        "TIMIT/TRAIN/DR1/FCJF0/SA1": "0 16000 She had your dark suit.",
        "TIMIT/TEST/DR1/MDAB0/SI1039": "800 20000 Don't ask me to carry an oily rag.",
    }
    buffer = tmp_path / "TIMIT.zip"
    with zipfile.ZipFile(buffer, "w") as zf:
        for stem, txt in utterances.items():
            wav = io.BytesIO()
            sf.write(wav, tone(1.5, 16000), 16000, format="NIST", subtype="PCM_16")
            zf.writestr(f"{stem}.WAV", wav.getvalue())
            zf.writestr(f"{stem}.TXT", txt + "\n")
    target = tmp_path / "out"
    run_main("timit", [target, "--archive", buffer], capsys)
    test_rows = read_csv(target / "timit-test.csv")
    assert test_rows[0]["transcript"] == "don't ask me to carry an oily rag"
    assert sf.info(str(target / test_rows[0]["wav_filename"])).frames == 19200
    check_wavs(target / "timit-train.csv", read_csv(target / "timit-train.csv"))


def test_import_dir_folder_and_manifest(tmp_path, capsys):
    rec = tmp_path / "rec"
    write_audio(str(rec / "a" / "one.wav"), 1.0, 22050, 2)
    write_text(str(rec / "a" / "one.txt"), "first one\n")
    write_audio(str(rec / "two.ogg"), 1.0, 16000)  # no .txt: ignored
    write_audio(str(rec / "three.flac"), 12.0, 16000, fmt="FLAC")
    write_text(str(rec / "three.txt"), "too long\n")
    write_audio(str(rec / "four.wav"), 1.0, 16000)
    write_text(str(rec / "four.txt"), "Upper Case\n")  # not in the alphabet as is
    target = tmp_path / "out"
    argv = [target, "--archive", rec, "--max_duration", 10, "--alphabet", ALPHABET]
    report = run_main("dir", argv + ["--filter_alphabet"], capsys)
    rows = read_csv(target / "train.csv")
    assert [r["transcript"] for r in rows] == ["first one"]
    check_wavs(target / "train.csv", rows)
    assert "skipped 1: longer than --max_duration" in report
    assert "skipped 1: characters not in alphabet (e.g. four)" in report
    write_text(str(rec / "list.tsv"), "path\tsentence\na/one.wav\tvia manifest\n")
    run_main("dir", [target, "--manifest", rec / "list.tsv", "--split", "m"], capsys)
    assert [r["transcript"] for r in read_csv(target / "m.csv")] == ["via manifest"]


@pytest.mark.parametrize("name", BIN_IMPORTERS)
def test_help_names_corpus_and_licence(name):
    module = load_bin(name)
    parser = importer_cli.build_parser(module.__doc__.splitlines()[0], module.__doc__)
    text = parser.format_help()
    assert "licen" in text.lower() and "--archive" in text


# -- the core -------------------------------------------------------------------------


def _wav_folder(root, n):
    for k in range(n):
        write_audio(str(root / f"u{k}.wav"), 0.5, 8000, seed=k)
        write_text(str(root / f"u{k}.txt"), "ab")


class _Boom(RuntimeError):
    pass


def _failing_convert(src, segments, rate, counter, fail_after):
    if counter["n"] >= fail_after:
        raise _Boom("interrupted")
    counter["n"] += 1
    return conversion.convert_to_wav(src, segments, rate)


def test_interrupted_import_resumes_without_reconverting(tmp_path):
    rec = tmp_path / "rec"
    _wav_folder(rec, 5)
    dir_importer = load_bin("dir")
    options = importers.ImportOptions(str(tmp_path / "out"), archive=(str(rec),))
    first = {"n": 0}
    with pytest.raises(_Boom):
        importers.run_importer(
            dir_importer.iter_samples,
            options,
            convert=functools.partial(_failing_convert, counter=first, fail_after=3),
        )
    assert first["n"] == 3 and not (tmp_path / "out" / "train.csv").exists()
    leftovers = [n for n in os.listdir(tmp_path / "out" / "wav") if ".tmp-" in n]
    assert not leftovers
    second = {"n": 0}
    report = importers.run_importer(
        dir_importer.iter_samples,
        options,
        convert=functools.partial(_failing_convert, counter=second, fail_after=99),
    )
    assert second["n"] == 2  # only the files the first run did not finish
    assert (report.n_converted, report.n_reused, report.kept["train"]) == (2, 3, 5)


def test_normalize_keeps_letters_the_alphabet_has():
    from ctcdecode import Alphabet

    english = Alphabet(ALPHABET)
    assert transcripts.normalize_text("  Ŝtraße\tCafé! ", english) == "strae cafe"
    russian = Alphabet.from_symbols([" ", "й", "и", "к"])
    assert transcripts.normalize_text("Йик", russian) == "йик"


def test_tar_path_traversal_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(archives.ArchiveError, match="outside"):
        archives.extract(str(evil), str(tmp_path / "dest"))
    assert not (tmp_path / "escaped.txt").exists()


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with ``Range: bytes=N-`` support (http.server has none)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.translate_path(self.path)
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


def test_download_resumes_partial_file_and_checks_sha256(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    payload = os.urandom(300_000)
    (served / "corpus.tar.gz").write_bytes(payload)
    handler = functools.partial(_RangeHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/corpus.tar.gz"
        target = tmp_path / "target"
        target.mkdir()
        (target / "corpus.tar.gz.part").write_bytes(payload[:100_000])
        sha = archives.hashlib.sha256(payload).hexdigest()
        path = archives.download(
            archives.ArchiveSpec("corpus.tar.gz", url, sha), str(target)
        )
        assert open(path, "rb").read() == payload
        bad = archives.ArchiveSpec("other.tar.gz", url, "0" * 64)
        with pytest.raises(archives.ArchiveError, match="sha256"):
            archives.download(bad, str(target))
        assert not (target / "other.tar.gz").exists()
    finally:
        server.shutdown()


# -- reuse by source identity, never by name (issue 10, case 1) ----------------------


def _frames(target, row) -> int:
    return sf.info(str(target / row["wav_filename"])).frames


def test_second_split_into_same_target_gets_its_own_audio(tmp_path, capsys):
    """raw/train/a.wav and raw/dev/a.wav share a relative name, not their audio."""
    raw = tmp_path / "raw"
    write_audio(str(raw / "train" / "a.wav"), 1.0, 16000, seed=1)
    write_text(str(raw / "train" / "a.txt"), "train words")
    write_audio(str(raw / "dev" / "a.wav"), 1.5, 16000, seed=2)
    write_text(str(raw / "dev" / "a.txt"), "dev words")
    target = tmp_path / "corpus"
    run_main("dir", [target, "--archive", raw / "train", "--split", "train"], capsys)
    report = run_main(
        "dir", [target, "--archive", raw / "dev", "--split", "dev"], capsys
    )
    assert "reused 0" in report
    (train,) = read_csv(target / "train.csv")
    (dev,) = read_csv(target / "dev.csv")
    assert train["wav_filename"] != dev["wav_filename"]
    assert _frames(target, train) == 16000  # still the train recording
    assert _frames(target, dev) == 24000  # the dev recording, not train's
    again = run_main(
        "dir", [target, "--archive", raw / "dev", "--split", "dev"], capsys
    )
    assert "converted 0 files, reused 1" in again
    assert read_csv(target / "dev.csv") == [dev]


def test_changed_source_is_converted_again(tmp_path, capsys):
    rec = tmp_path / "rec"
    write_audio(str(rec / "a.wav"), 1.0, 16000)
    write_text(str(rec / "a.txt"), "ab")
    target = tmp_path / "out"
    run_main("dir", [target, "--archive", rec], capsys)
    write_audio(str(rec / "a.wav"), 2.0, 16000, seed=3)  # same name, new content
    os.utime(rec / "a.wav", ns=(1, 10**18))  # a different mtime even on coarse clocks
    report = run_main("dir", [target, "--archive", rec], capsys)
    assert "converted 1 files, reused 0" in report
    (row,) = read_csv(target / "train.csv")
    assert _frames(target, row) == 32000


def test_wav_of_unknown_origin_is_neither_reused_nor_overwritten(tmp_path, capsys):
    rec = tmp_path / "rec"
    write_audio(str(rec / "a.wav"), 1.0, 16000)
    write_text(str(rec / "a.txt"), "ab")
    target = tmp_path / "out"
    stranger = target / "wav" / "a.wav"  # e.g. written by an older importer
    write_audio(str(stranger), 3.0, 16000, seed=4)
    before = stranger.read_bytes()
    run_main("dir", [target, "--archive", rec], capsys)
    (row,) = read_csv(target / "train.csv")
    assert row["wav_filename"] != "wav/a.wav"
    assert _frames(target, row) == 16000
    assert stranger.read_bytes() == before


# -- train/dev/test splits (issue 10, case 1) ----------------------------------------


def corpus(n_speakers: int, per_speaker: int):
    keys = [f"s{s}_u{u}" for s in range(n_speakers) for u in range(per_speaker)]
    speakers = [k.split("_")[0] for k in keys]
    return keys, speakers


def test_by_speaker_keeps_every_speaker_in_one_split() -> None:
    keys, speakers = corpus(10, 6)
    spec = SplitSpec(dev_percent=10, test_percent=20, seed=7)
    result = assign_splits(keys, spec, speakers)
    splits_of_speaker = collections.defaultdict(set)
    for key, speaker in zip(keys, speakers):
        splits_of_speaker[speaker].add(result.split_of[key])
    assert all(len(s) == 1 for s in splits_of_speaker.values())
    counts = collections.Counter(result.split_of.values())
    assert counts == {"train": 42, "dev": 6, "test": 12}  # whole speakers of 6
    assert result.speakers["dev"] and result.speakers["test"]
    # Deterministic, whatever the input order; another seed picks other speakers.
    again = assign_splits(keys[::-1], spec, speakers[::-1])
    assert again.split_of == result.split_of
    other = assign_splits(keys, SplitSpec(10, 20, seed=8), speakers)
    assert other.speakers != result.speakers


def test_by_sample_shares_and_determinism() -> None:
    keys = [f"u{i:03d}" for i in range(200)]
    result = assign_splits(keys, SplitSpec(10, 5, seed=1))
    assert collections.Counter(result.split_of.values()) == {
        "train": 170,
        "dev": 20,
        "test": 10,
    }
    assert assign_splits(sorted(keys, reverse=True), SplitSpec(10, 5, 1)) == result


def test_too_few_speakers_is_an_error() -> None:
    keys, speakers = corpus(2, 3)
    with pytest.raises(ValueError, match="2 speaker"):
        assign_splits(keys, SplitSpec(20, 20), speakers)
    assert assign_splits(keys, SplitSpec(0, 40), speakers).speakers["test"]


@pytest.mark.parametrize("dev, test", [(-1, 10), (100, 0), (60, 40)])
def test_bad_percentages(dev, test) -> None:
    with pytest.raises(ValueError, match="percent"):
        SplitSpec(dev, test)


def speaker_folder(root, n_speakers=5, per_speaker=4):
    for s in range(n_speakers):
        for u in range(per_speaker):
            stem = root / f"spk{s}" / f"utt{u}"
            write_audio(f"{stem}.wav", 0.6, 16000, seed=s * 10 + u)
            write_text(f"{stem}.txt", "ab")


def speakers_in(csv_path):
    return {
        row["wav_filename"].split("/")[1].split("__")[0] for row in read_csv(csv_path)
    }


def test_import_dir_splits_by_folder_speaker(tmp_path, capsys) -> None:
    rec = tmp_path / "rec"
    speaker_folder(rec)
    target = tmp_path / "out"
    argv = [target, "--archive", rec, "--dev_percent", 20, "--test_percent", 20]
    argv += ["--speaker_from", "parent", "--seed", 3, "--no-show_progressbar"]
    assert load_bin("dir").main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert "split by speaker (seed 3): train 12 samples (3 speakers)" in out
    groups = [speakers_in(target / f"{s}.csv") for s in ("train", "dev", "test")]
    assert [len(g) for g in groups] == [3, 1, 1]
    assert set.union(*groups) == {f"spk{s}" for s in range(5)}


def test_import_dir_speaker_from_regex_and_column(tmp_path, capsys) -> None:
    rec = tmp_path / "rec"
    speaker_folder(rec, n_speakers=3, per_speaker=2)
    with open(rec / "list.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "transcript", "client_id"])
        for s in range(3):
            for u in range(2):
                writer.writerow([f"spk{s}/utt{u}.wav", "ab", f"person{s}"])
    dir_importer = load_bin("dir")
    common = ["--dev_percent", "30", "--test_percent", "30", "--no-show_progressbar"]
    regex = [str(tmp_path / "a"), "--archive", str(rec)] + common
    assert dir_importer.main(regex + ["--speaker_from", r"regex:^spk(\d)/"]) == 0
    column = [str(tmp_path / "b"), "--manifest", str(rec / "list.csv")] + common
    assert dir_importer.main(column + ["--speaker_from", "column:client_id"]) == 0
    for out in ("a", "b"):
        groups = [speakers_in(tmp_path / out / f"{s}.csv") for s in ("train", "dev")]
        assert not groups[0] & groups[1]
    capsys.readouterr()
    assert dir_importer.main(regex + ["--speaker_from", r"regex:^nomatch(\d)"]) == 1
    assert "no speaker for" in capsys.readouterr().err
    bad = [str(tmp_path / "c"), "--archive", str(rec), "--split", "dev"] + common
    assert dir_importer.main(bad) == 1
    assert not os.path.exists(tmp_path / "c" / "dev.csv")


# -- unreadable folders and cut downloads (issue 11, case 8) --------------------------


def test_unreadable_directory_is_an_error_not_a_gap(tmp_path, capsys, monkeypatch):
    root = tmp_path / "LibriSpeech" / "dev-clean" / "84"
    for chapter in ("121123", "121550"):
        write_audio(str(root / chapter / f"84-{chapter}-0000.flac"), 1.0, fmt="FLAC")
        write_text(
            str(root / chapter / f"84-{chapter}.trans.txt"), f"84-{chapter}-0000 A B\n"
        )
    hidden = str(root / "121550")
    real_scandir = os.scandir

    def scandir(path="."):  # root can read anything, so deny like chmod 000 would
        if os.fspath(path) == hidden:
            raise PermissionError(13, "Permission denied", hidden)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    target = tmp_path / "out"
    argv = [target, "--archive", tmp_path / "LibriSpeech", "--no-show_progressbar"]
    code = load_bin("librivox").main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1
    assert hidden in err and "Permission denied" in err and "chmod" in err
    assert not (target / "librivox-dev-clean.csv").exists()


class _CutHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole file but closes the connection halfway, or answers 416."""

    payload = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.headers.get("Range"):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(self.payload)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_download_cut_short_never_gets_the_final_name(tmp_path):
    handler = type("Handler", (_CutHandler,), {"payload": os.urandom(200_000)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/corpus.tar.gz"
        spec = archives.ArchiveSpec("corpus.tar.gz", url)  # no checksum known
        with pytest.raises(archives.ArchiveError, match="stopped at 100000 of 200000"):
            archives.download(spec, str(tmp_path))
        assert not (tmp_path / "corpus.tar.gz").exists()
        assert (tmp_path / "corpus.tar.gz.part").stat().st_size == 100_000
        # The resume gets 416 "bytes */200000": still short, still no final name.
        with pytest.raises(archives.ArchiveError, match="stopped at 100000 of 200000"):
            archives.download(spec, str(tmp_path))
        assert not (tmp_path / "corpus.tar.gz").exists()
    finally:
        server.shutdown()
