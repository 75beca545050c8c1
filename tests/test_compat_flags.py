"""DeepSpeech 0.9.3's flags: every name is accepted, with its 0.9 meaning (issue 12).

``tests/data/ds093/deepspeech_0.9.3_flags.py`` is upstream's flag file, unmodified; its
DEFINE calls are read with ``ast`` (never imported), so the test follows the real list.
"""

from __future__ import annotations

import ast
import os
from typing import Any, Dict

import pytest
from absl import flags

from util import flags as ds_flags
from util.config import DS09_IGNORED, Config, ds09_warnings

DS093_FLAGS = os.path.join(
    os.path.dirname(__file__), "data", "ds093", "deepspeech_0.9.3_flags.py"
)


def upstream_flags() -> Dict[str, Any]:
    """name -> 0.9.3 default of every flag DEFINEd in upstream's flags.py."""
    with open(DS093_FLAGS, encoding="utf-8") as fin:
        tree = ast.parse(fin.read())
    found: Dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        first = node.args[0]
        if not isinstance(first, ast.Constant):
            continue
        if name.startswith("DEFINE_") and name != "DEFINE_alias":
            found[first.value] = ast.literal_eval(node.args[1])
        elif name == "DEFINE_alias":
            found[first.value] = None
        elif name == "str_val_equals_help":  # DEFINE_string(name, '<help>', help)
            found[first.value] = "<" + ast.literal_eval(node.args[1]) + ">"
    return found


@pytest.fixture(scope="module")
def ours() -> flags.FlagValues:
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    return values


def test_upstream_list_is_complete():
    names = upstream_flags()
    assert len(names) == 92  # 91 flags + the 'scorer' alias
    assert {"augment", "dropout_rate6", "export_zip", "n_trials"} <= set(names)


def test_every_093_flag_name_is_accepted(ours):
    missing = sorted(set(upstream_flags()) - set(ours))
    assert not missing, f"0.9.3 flags DeepSpeech.py does not know: {missing}"


def test_every_093_default_parses_and_builds_a_config(ours):
    """A 0.9 script that passes every flag at its 0.9 default still runs."""
    argv = ["DeepSpeech.py"]
    for name, default in upstream_flags().items():
        if default is None or name == "scorer":
            continue
        if isinstance(default, bool):
            argv.append(f"--{name}" if default else f"--no{name}")
        elif name in ("lm_alpha", "lm_beta") or str(default).startswith("<"):
            continue  # 0.9's fixed LM weights / placeholder texts: see below
        else:
            argv.append(f"--{name}={default}")
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(argv + ["--lm_alpha=0.931289039105002", "--export_license=MPL-2.0"])
    cfg = Config.from_flags(values.flag_values_dict())
    assert cfg.train.epochs == 75 and cfg.data.read_buffer == 1 << 20
    assert [cfg.model.dropout_for(n) for n in (1, 2, 3, 5)] == [0.05] * 4
    # --n_trials's default is 100 here (0.9: 2400), so 0.9's value warns, once.
    assert ds09_warnings(values.flag_values_dict()) == [
        "--n_trials=2400 has no effect: only lm_optimizer.py uses it"
    ]


def parse(*args: str) -> Dict[str, Any]:
    values = flags.FlagValues()
    ds_flags.define_flags(values)
    values(["DeepSpeech.py", *args])
    return values.flag_values_dict()


def test_per_layer_dropout_follows_09_rules():
    cfg = Config.from_flags(
        parse("--dropout_rate=0.1", "--dropout_rate3=0.3", "--dropout_rate6=0.6")
    )
    assert [cfg.model.dropout_for(n) for n in (1, 2, 3, 5)] == [0.1, 0.1, 0.3, 0.6]


@pytest.mark.parametrize("name", sorted(DS09_IGNORED))
def test_meaningless_flags_warn_with_one_line_why(name):
    default = DS09_IGNORED[name][0]
    value = 0.3 if isinstance(default, float) else 3
    arg = f"--{name}" if isinstance(default, bool) else f"--{name}={value}"
    values = parse(arg)
    Config.from_flags(values)  # accepted
    (warning,) = ds09_warnings(values)
    assert warning.startswith(f"--{name}=") and "has no effect: " in warning


def test_read_buffer_sizes():
    cfg = Config.from_flags(parse("--read_buffer=64KB"))
    assert cfg.data.read_buffer == 64 * 1024
    assert Config.from_flags(parse("--read_buffer=2m")).data.read_buffer == 2 << 20
    with pytest.raises(ValueError, match="--read_buffer: 'lots'"):
        Config.from_flags(parse("--read_buffer=lots"))


def test_export_zip_implies_tflite_and_metrics_files_split():
    cfg = Config.from_flags(parse("--export_zip", "--metrics_files=a.csv,b.sdb"))
    assert cfg.export.export_tflite and cfg.export.export_zip
    assert cfg.data.metrics_files == ("a.csv", "b.sdb")


def test_epochs_counts_this_run_max_epochs_the_total():
    train = Config.from_flags(parse("--epochs=3")).train
    assert (train.last_epoch(0), train.last_epoch(10)) == (3, 13)
    capped = Config.from_flags(parse("--epochs=3", "--max_epochs=12")).train
    assert (capped.last_epoch(0), capped.last_epoch(10), capped.last_epoch(12)) == (
        3,
        12,
        12,
    )
