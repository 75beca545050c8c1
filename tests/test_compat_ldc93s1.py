"""DeepSpeech 0.9.3's own bin/run-ldc93s1.sh, unchanged, runs here (issue 12).

The script (tests/data/ds093/run-ldc93s1.sh, MPL-2.0) imports LDC93S1 with
bin/import_ldc93s1.py when data/ldc93s1/ldc93s1.csv is missing, finds its checkpoint
directory with pyxdg and trains with 0.9's flags; extra arguments pass through. It runs
in a scratch "project root" holding links to DeepSpeech.py, bin/ and the alphabet, so
the repository stays clean; XDG_DATA_HOME points into the scratch dir too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

DS093 = os.path.join(os.path.dirname(__file__), "data", "ds093")
LDC93S1_TEXT = "she had your dark suit in greasy wash water all year"


def run_upstream_script(repo_root: str, root, *extra: str, timeout: float = 1800):
    # As in a checkout: data/ldc93s1 holds the bundled LDC93S1 files, which
    # bin/import_ldc93s1.py turns into data/ldc93s1/ldc93s1.csv in place.
    os.makedirs(root / "data" / "ldc93s1")
    for name in ("LDC93S1.wav", "LDC93S1.txt"):
        source = os.path.join(repo_root, "data", "ldc93s1", name)
        shutil.copy(source, root / "data" / "ldc93s1")
    os.symlink(os.path.join(repo_root, "DeepSpeech.py"), root / "DeepSpeech.py")
    os.symlink(os.path.join(repo_root, "bin"), root / "bin")
    os.symlink(
        os.path.join(repo_root, "data", "alphabet.txt"), root / "data" / "alphabet.txt"
    )
    shutil.copy(os.path.join(DS093, "run-ldc93s1.sh"), root / "run-ldc93s1.sh")
    env = {
        **os.environ,
        # 0.9's script calls `python`: this interpreter, with the repo importable.
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(
            [repo_root, os.path.join(repo_root, "native_client"),
             os.path.join(repo_root, "native_client", "python"),
             os.environ.get("PYTHONPATH", "")]
        ),  # fmt: skip
        "XDG_DATA_HOME": str(root / "xdg"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("COMPUTE_KEEP_DIR", None)
    return subprocess.run(
        ["sh", "run-ldc93s1.sh", *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_upstream_run_ldc93s1_gives_the_exact_transcript(repo_root, tmp_path):
    """0.9.3's script, flags unchanged (plus its "$@": the 0.9 smoke-test scorer and an
    export for the client test), to the exact transcript."""
    scorer = os.path.join(DS093, "pruned_lm.scorer")
    result = run_upstream_script(
        repo_root, tmp_path, "--scorer_path", scorer,
        "--export_dir", str(tmp_path / "export"), "--export_tflite",
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert (tmp_path / "data" / "ldc93s1" / "ldc93s1.csv").exists()
    assert (tmp_path / "xdg" / "deepspeech" / "ldc93s1").is_dir()  # pyxdg's dir
    assert "WER: 0.000000, CER: 0.000000" in result.stdout, log[-5000:]
    assert f' - res: "{LDC93S1_TEXT}"' in result.stdout

    import deepspeech
    from deepspeech.audio import read_audio

    model = deepspeech.Model(str(tmp_path / "export" / "output_graph.tflite"))
    model.enableExternalScorer(scorer)
    wav = os.path.join(repo_root, "data", "ldc93s1", "LDC93S1.wav")
    pcm, _ = read_audio(wav, model.sampleRate())
    assert model.stt(pcm) == LDC93S1_TEXT
