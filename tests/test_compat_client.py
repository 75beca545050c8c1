"""The ``deepspeech`` CLI prints what DeepSpeech 0.9.3's client.py printed (issue 12):
``--extended``, ``--json`` with ``--candidate_transcripts``, and its exit codes.

Upstream's client.py (tests/data/ds093/, MPL-2.0, unmodified) runs against this
package both in-process (its formatting functions on our Metadata) and as a script;
their output is compared with ours, byte for byte.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import types

import pytest
from test_client import _export_random

import deepspeech
from deepspeech import client as cli
from deepspeech.metadata import CandidateTranscript, Metadata, TokenMetadata

DS093 = os.path.join(os.path.dirname(__file__), "data", "ds093")
UPSTREAM_CLIENT = os.path.join(DS093, "client.py")
UPSTREAM_SCORER = os.path.join(DS093, "pruned_lm.scorer")
# Python 3.13 removed ``pipes``, which 0.9's client imports for ``quote``.
PIPES_SHIM = (
    "import sys, shlex, types; "
    "sys.modules.setdefault('pipes', types.SimpleNamespace(quote=shlex.quote)); "
)


def upstream_client():
    sys.modules.setdefault("pipes", types.SimpleNamespace(quote=shlex.quote))
    spec = importlib.util.spec_from_file_location("ds093_client", UPSTREAM_CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def candidate(text: str, confidence: float) -> CandidateTranscript:
    return CandidateTranscript(
        tuple(
            TokenMetadata(c, 3 * i, 0.02 * 3 * i + 0.013) for i, c in enumerate(text)
        ),
        confidence,
    )


@pytest.mark.parametrize(
    "texts",
    [("she had your",), ("a  b ", "ab c", " x"), ("",), ("one",)],
)
def test_formatting_matches_upstream_functions(texts):
    upstream = upstream_client()
    meta = Metadata(tuple(candidate(t, -1.5 * i) for i, t in enumerate(texts)))
    assert cli.upstream_json(meta) == upstream.metadata_json_output(meta)
    for t in meta.transcripts:
        assert cli.upstream_words(t) == upstream.words_from_candidate_transcript(t)
        assert t.text == upstream.metadata_to_string(t)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, alphabet):
    return _export_random(tmp_path_factory.mktemp("compat_client"), alphabet, False)[2]


def run_upstream(model_path: str, wav: str, *args: str) -> str:
    code = PIPES_SHIM + (
        "import runpy; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, UPSTREAM_CLIENT, "--model", model_path,
         "--audio", wav, *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--extended"],
        ["--json"],
        ["--json", "--candidate_transcripts", "2"],
        ["--extended", "--json"],  # 0.9: --extended wins
    ],
)
def test_cli_output_equals_upstream_client(model_path, ldc93s1_wav, capsys, args):
    full = ["--scorer", UPSTREAM_SCORER, "--beam_width", "32", *args]
    expected = run_upstream(model_path, ldc93s1_wav, *full)
    assert cli.main(["--model", model_path, "--audio", ldc93s1_wav, *full]) == 0
    assert capsys.readouterr().out == expected


def test_cli_exit_codes(model_path, ldc93s1_wav, tmp_path):
    with pytest.raises(SystemExit) as usage:
        cli.main(["--audio", ldc93s1_wav])  # 0.9: --model is required -> 2
    assert usage.value.code == 2
    assert cli.main(["--model", str(tmp_path / "missing.tflite"), "--audio",
                     ldc93s1_wav]) == 1  # fmt: skip
    assert cli.main(["--model", model_path, "--audio", str(tmp_path / "x.wav")]) == 1


def test_richer_formats_kept_under_new_names(model_path, ldc93s1_wav, capsys):
    import json

    args = ["--model", model_path, "--audio", ldc93s1_wav]
    assert cli.main([*args, "--jsonl", "--word_timings"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert {"file", "duration", "transcript", "transcripts", "words"} <= set(record)
    assert cli.main([*args, "--word_timings"]) == 0
    text = capsys.readouterr().out
    model = deepspeech.Model(model_path)
    assert text.count("[") == len(
        model.sttWithMetadata(
            __import__("deepspeech.audio").audio.read_audio(ldc93s1_wav, 16000)[0]
        )
        .transcripts[0]
        .words
    )
