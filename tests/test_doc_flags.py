"""doc/_ext/flag_table.py: the flag reference is generated from util/flags.py.

The page used to ``literalinclude`` the ``DEFINE_*`` calls, which showed Python and cut
the help text off the page (issue 10, case 5). Now ``.. flag-table:: SECTION`` renders
name, type, default and help of each flag; these tests pin what the tables hold and
that nothing can fall off the page unnoticed (``make docs`` builds with ``-W``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import textwrap

import pytest
from absl import flags

from util.flags import define_flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXT_PATH = os.path.join(REPO_ROOT, "doc", "_ext", "flag_table.py")


@pytest.fixture(scope="module")
def flag_table():
    pytest.importorskip("sphinx")
    spec = importlib.util.spec_from_file_location("flag_table", EXT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["flag_table"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("flag_table", None)


def test_every_flag_is_in_a_table_with_its_real_default_and_help(flag_table) -> None:
    sections, stray = flag_table.flag_sections()
    assert stray == []
    values = flags.FlagValues()
    define_flags(values)
    rows = {row.name: row for rows in sections.values() for row in rows}
    assert set(rows) == {f"--{name}" for name in values}
    assert rows["--train_batch_size"].type == "int >= 1"
    assert rows["--train_batch_size"].default == "1"
    assert rows["--epochs"].default == str(values["epochs"].default)
    assert rows["--bidirectional"].default == "true"
    assert rows["--train_files"].default == "(empty)"
    # The full help text, not a clipped source line.
    assert rows["--skip_bad_samples"].help == values["skip_bad_samples"].help
    enum_rows = [r for r in rows.values() if r.type.startswith("one of: ")]
    for row in enum_rows:
        choices = values[row.name[2:]].parser.enum_values
        assert row.type == "one of: " + ", ".join(choices)


def test_flags_page_shows_every_section_and_no_python(flag_table) -> None:
    sections, _ = flag_table.flag_sections()
    with open(os.path.join(REPO_ROOT, "doc", "FLAGS.rst"), encoding="utf-8") as page:
        text = page.read()
    shown = re.findall(r"^\.\. flag-table:: (\w+)$", text, flags=re.M)
    assert sorted(shown) == sorted(sections)
    assert "literalinclude" not in text


def test_a_flag_outside_the_markers_is_reported(flag_table, tmp_path) -> None:
    source = textwrap.dedent("""
        from absl import flags as F

        def define_flags(flag_values):
            # sphinx-doc: data_flags_start
            F.DEFINE_integer("inside", 3, "a help text", lower_bound=0,
                             flag_values=flag_values)
            # sphinx-doc: data_flags_end
            F.DEFINE_bool("outside", False, "forgotten", flag_values=flag_values)
        """)
    path = tmp_path / "flags.py"
    path.write_text(source)
    sections, stray = flag_table.flag_sections(str(path))
    assert [r.name for r in sections["data"]] == ["--inside"]
    assert sections["data"][0].type == "int >= 0"
    assert stray == ["outside"]


def test_an_unpaired_marker_is_an_error(flag_table, tmp_path) -> None:
    path = tmp_path / "flags.py"
    path.write_text(
        "def define_flags(flag_values):\n    # sphinx-doc: data_flags_start\n    pass\n"
    )
    with pytest.raises(ValueError, match="without an end marker"):
        flag_table.flag_sections(str(path))
