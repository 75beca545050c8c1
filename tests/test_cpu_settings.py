"""util/cpu_settings.py: the automatic CPU settings over fake CPU descriptions."""

import pytest

from util import cpu_settings
from util.cpu_settings import ONEDNN_ENV, CpuInfo, decide, parse_cpuinfo

AVX2_EPYC = CpuInfo(
    "x86_64",
    "AuthenticAMD",
    "AMD EPYC 7B13",
    frozenset({"sse4_2", "avx", "avx2", "fma"}),
    2,
)
AVX512_EPYC = CpuInfo(
    "x86_64",
    "AuthenticAMD",
    "AMD EPYC 9B14",
    frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}),
    2,
)
SKYLAKE = CpuInfo(
    "x86_64", "GenuineIntel", "Xeon Gold 6148", frozenset({"avx2", "fma", "avx512f"}), 8
)
OLD_X86 = CpuInfo("x86_64", "GenuineIntel", "Xeon E5-2670", frozenset({"avx"}), 16)
ARM = CpuInfo("aarch64", "", "", frozenset({"fp", "asimd", "sve"}), 4)

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse4_2 avx avx2 fma

processor\t: 1
vendor_id\t: SomethingElse
model name\t: other
flags\t\t: fpu
"""


def test_parse_cpuinfo_reads_the_first_processor():
    vendor, model, flags = parse_cpuinfo(CPUINFO)
    assert (vendor, model) == ("AuthenticAMD", "AMD EPYC 7B13")
    assert flags == {"fpu", "sse4_2", "avx", "avx2", "fma"}


def test_parse_cpuinfo_arm_features_and_garbage():
    assert parse_cpuinfo("Features\t: fp asimd\n")[2] == {"fp", "asimd"}
    assert parse_cpuinfo("no colon here\n\n:\n") == ("", "", frozenset())


def test_detect_survives_a_missing_cpuinfo(tmp_path):
    cpu = cpu_settings.detect(str(tmp_path / "missing"))
    assert cpu.flags == frozenset() and cpu.n_cores >= 1


@pytest.mark.parametrize("cpu", [AVX2_EPYC, AVX512_EPYC, SKYLAKE])
def test_onednn_on_for_every_avx2_x86(cpu):
    settings = decide(cpu, {})
    assert dict(settings.environ) == {ONEDNN_ENV: "1"}
    assert "oneDNN kernels on" in settings.summary()


def test_the_log_says_why_tf_default_differs():
    assert "would be off" in decide(AVX2_EPYC, {}).summary()
    assert "TensorFlow's own default too" in decide(AVX512_EPYC, {}).summary()


@pytest.mark.parametrize("cpu", [OLD_X86, ARM])
def test_onednn_left_alone_without_avx2(cpu):
    settings = decide(cpu, {})
    assert settings.environ == ()
    assert "TensorFlow's default" in settings.summary()


def test_threads_default_to_the_usable_cores():
    settings = decide(SKYLAKE, {})
    assert (settings.inter_op_threads, settings.intra_op_threads) == (8, 8)


@pytest.mark.parametrize(
    "cpu_max, cpus",
    [
        ("200000 100000", 2),
        ("150000 100000", 2),
        ("max 100000", 0),
        ("", 0),
        ("x y", 0),
    ],
)
def test_cgroup_quota(cpu_max, cpus):
    assert cpu_settings.cgroup_cpus(cpu_max) == cpus


def test_user_environment_wins():
    settings = decide(AVX2_EPYC, {ONEDNN_ENV: "0"})
    assert settings.environ == ()
    assert "TF_ENABLE_ONEDNN_OPTS=0 kept" in settings.summary()


def test_user_thread_flags_win():
    settings = decide(AVX2_EPYC, {}, inter_op_threads=3, intra_op_threads=5)
    assert (settings.inter_op_threads, settings.intra_op_threads) == (3, 5)
    assert "3 from --inter_op_parallelism_threads" in settings.summary()
    later = cpu_settings.with_threads(decide(AVX2_EPYC, {}), 0, 1)
    assert (later.inter_op_threads, later.intra_op_threads) == (2, 1)
    assert later.summary().count("intra-op threads") == 1


def test_switch_off_changes_nothing():
    settings = decide(AVX2_EPYC, {cpu_settings.SWITCH_ENV: "off"}, 0, 4)
    assert settings.environ == ()
    assert (settings.inter_op_threads, settings.intra_op_threads) == (0, 4)


def test_apply_exports_once_and_keeps_the_users_value(monkeypatch):
    monkeypatch.delitem(cpu_settings.sys.modules, "tensorflow", raising=False)
    monkeypatch.setattr(cpu_settings, "_APPLIED", None)
    env = {}
    first = cpu_settings.apply(env, AVX2_EPYC)
    assert env == {ONEDNN_ENV: "1"} and cpu_settings.applied() is first
    assert cpu_settings.apply({}, ARM) is first  # decided once per process
    monkeypatch.setattr(cpu_settings, "_APPLIED", None)
    env = {ONEDNN_ENV: "0"}
    cpu_settings.apply(env, AVX2_EPYC)
    assert env == {ONEDNN_ENV: "0"}


def test_the_training_edge_applies_before_tensorflow():
    """DeepSpeech.py and transcribe.py call apply() before anything imports TF."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    for script in ("DeepSpeech.py", "transcribe.py"):
        text = (root / script).read_text()
        applied = text.index("cpu_settings.apply()")
        imports = [
            i
            for i in (
                text.find("import tensorflow"),
                text.find("from util import flags"),
            )
            if i >= 0
        ]
        assert all(applied < i for i in imports), script


def test_apply_after_tensorflow_was_imported_exports_nothing(monkeypatch):
    monkeypatch.setitem(cpu_settings.sys.modules, "tensorflow", object())
    monkeypatch.setattr(cpu_settings, "_APPLIED", None)
    env = {}
    settings = cpu_settings.apply(env, AVX2_EPYC)
    assert env == {} and settings.environ == ()
    assert "imported before the CPU settings" in settings.summary()
