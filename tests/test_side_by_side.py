"""bench/side_by_side.py: its parts that need neither torch nor a long run."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "side_by_side.py")


@pytest.fixture(scope="module")
def sbs():
    spec = importlib.util.spec_from_file_location("side_by_side", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_parses_the_last_match_and_clears_hand_set_speed_variables(
    sbs, monkeypatch
):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # must not reach the child
    code = (
        "import os; print('median 1.5 audio-s/s'); "
        "print('median', 2.5 if 'TF_ENABLE_ONEDNN_OPTS' not in os.environ else 9, "
        "'audio-s/s', os.environ.get('ONEDNN_MAX_CPU_ISA'))"
    )
    value = sbs.run(
        [sys.executable, "-c", code],
        {"ONEDNN_MAX_CPU_ISA": "AVX2"},
        r"median ([0-9.]+) audio-s/s AVX2",
    )
    assert value == 2.5


def test_run_failure_names_the_command_and_shows_its_output(sbs):
    with pytest.raises(RuntimeError, match=r"(?s)failed.*boom"):
        sbs.run([sys.executable, "-c", "print('boom')"], {}, r"median ([0-9.]+)")


def test_header_prints_cpu_isa_settings_and_load(sbs):
    text = sbs.header("avx2")
    assert text.startswith("CPU: ")
    assert "ISA flags:" in text and "ISA setting: avx2" in text
    assert "ONEDNN_MAX_CPU_ISA" in text and "load average at start" in text
    assert "ours' automatic settings: CPU" in text


def test_unknown_benchmark_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--torch_python", sys.executable, "--only", "bogus"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown ['bogus']" in proc.stderr
