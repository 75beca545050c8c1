"""Sphinx directive ``.. flag-table:: SECTION``: a table of the flags of one section.

The rows come from the flag definitions themselves, so the page cannot drift from the
code: ``util/flags.py`` is loaded by path (it imports only absl), ``define_flags`` fills
a fresh ``absl.flags.FlagValues``, and each flag's name, type (with its bounds or
choices), default and help text become one row. Which flags belong to which section is
read from the ``# sphinx-doc: SECTION_flags_start`` / ``_end`` markers around the
``DEFINE_*`` calls (located with ``ast``).

Everything that could let the page lie is a Sphinx warning, and ``make docs`` builds
with ``-W``: a flag defined outside every section, a section that no directive shows, an
unknown section name, or a marker without its partner.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import os
import re
from typing import Dict, List, Tuple

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

FLAGS_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "util", "flags.py")
_MARKER = re.compile(r"#\s*sphinx-doc:\s*(\w+)_flags_(start|end)\s*$")
_SHOWN_KEY = "flag_table_shown"

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FlagRow:
    """One table row; all fields are display text."""

    name: str
    type: str
    default: str
    help: str


def _marker_ranges(source: str) -> Dict[str, Tuple[int, int]]:
    """section -> (start line, end line) of its markers; ValueError if unpaired."""
    starts: Dict[str, int] = {}
    ranges: Dict[str, Tuple[int, int]] = {}
    for lineno, line in enumerate(source.splitlines(), 1):
        match = _MARKER.search(line)
        if not match:
            continue
        section, kind = match.groups()
        if kind == "start":
            starts[section] = lineno
        elif section not in starts:
            raise ValueError(f"sphinx-doc: {section}_flags_end without a start")
        else:
            ranges[section] = (starts.pop(section), lineno)
    if starts:
        raise ValueError(f"sphinx-doc: {', '.join(starts)} without an end marker")
    return ranges


def _defined_names(source: str) -> List[Tuple[str, int]]:
    """(flag name, line) of every ``*.DEFINE_*("name", ...)`` call, in source order."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("DEFINE_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, node.lineno))
    return sorted(found, key=lambda item: item[1])


def _load_flag_values(path: str):
    """A fresh FlagValues holding every flag ``define_flags`` of ``path`` declares."""
    from absl import flags as absl_flags

    spec = importlib.util.spec_from_file_location("_flag_table_flags", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    values = absl_flags.FlagValues()
    module.define_flags(values)
    return values


def _type_of(flag) -> str:
    """'int >= 1', 'one of: a, b', 'bool', ... from the flag's parser."""
    from absl import flags as absl_flags

    if isinstance(flag, absl_flags.MultiFlag):  # --x a --x b
        return _type_of_parser(flag.parser) + ", repeatable"
    return _type_of_parser(flag.parser)


def _type_of_parser(parser) -> str:
    choices = getattr(parser, "enum_values", None)
    if choices:
        return "one of: " + ", ".join(choices)
    kind = {"integer": "int"}.get(parser.flag_type(), parser.flag_type())
    lower = getattr(parser, "lower_bound", None)
    upper = getattr(parser, "upper_bound", None)
    if lower is not None and upper is not None:
        return f"{kind}, {lower} to {upper}"
    if lower is not None:
        return f"{kind} >= {lower}"
    if upper is not None:
        return f"{kind} <= {upper}"
    return kind


def _default_of(flag) -> str:
    if isinstance(flag.default, bool):
        return "true" if flag.default else "false"
    if flag.default is None or flag.default == "":
        return "(empty)"
    if isinstance(flag.default, (list, tuple)):
        return ",".join(str(v) for v in flag.default) or "(empty)"
    return str(flag.default)


def flag_sections(path: str = FLAGS_FILE) -> Tuple[Dict[str, List[FlagRow]], List[str]]:
    """(section -> rows in definition order, names of flags outside every section)."""
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    ranges = _marker_ranges(source)
    values = _load_flag_values(path)
    sections: Dict[str, List[FlagRow]] = {name: [] for name in ranges}
    stray = []
    for name, line in _defined_names(source):
        owner = [s for s, (a, b) in ranges.items() if a < line < b]
        if not owner:
            stray.append(name)
            continue
        flag = values[name]
        sections[owner[0]].append(
            FlagRow(f"--{name}", _type_of(flag), _default_of(flag), flag.help or "")
        )
    missing = set(values) - {name for name, _ in _defined_names(source)}
    stray.extend(sorted(n for n in missing if n not in {"helpfull", "helpshort"}))
    return sections, stray


def _table(rows: List[FlagRow]) -> nodes.table:
    """A 4-column docutils table: Flag, Type, Default, Help."""
    table = nodes.table(classes=["flag-table"])
    group = nodes.tgroup(cols=4)
    table += group
    for width in (22, 14, 12, 52):
        group += nodes.colspec(colwidth=width)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    head += _row([nodes.Text(t) for t in ("Flag", "Type", "Default", "Help")])
    for row in rows:
        body += _row(
            [
                nodes.literal(text=row.name),
                nodes.Text(row.type),
                nodes.literal(text=row.default),
                nodes.Text(row.help),
            ]
        )
    return table


def _row(cells) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        paragraph = nodes.paragraph()
        paragraph += cell
        entry += paragraph
        row += entry
    return row


class FlagTable(SphinxDirective):
    """``.. flag-table:: data`` renders the flags between the data_flags markers."""

    required_arguments = 1

    def run(self) -> List[nodes.Node]:
        section = self.arguments[0]
        self.env.note_dependency(os.path.abspath(FLAGS_FILE))
        sections, _ = flag_sections()
        if section not in sections:
            logger.warning(
                "flag-table: no section %r in util/flags.py (have: %s)",
                section,
                ", ".join(sections),
                location=self.get_location(),
            )
            return []
        shown = _shown(self.env)
        shown.setdefault(self.env.docname, set()).add(section)
        return [_table(sections[section])]


def _shown(env) -> Dict[str, set]:
    """docname -> sections its flag-table directives show (kept in the environment)."""
    if not hasattr(env, _SHOWN_KEY):
        setattr(env, _SHOWN_KEY, {})
    return getattr(env, _SHOWN_KEY)


def _purge(app, env, docname: str) -> None:
    _shown(env).pop(docname, None)


def _check_complete(app, env) -> None:
    """After reading all pages: every section shown, every flag in a section."""
    sections, stray = flag_sections()
    if stray:
        logger.warning(
            "flag-table: flags outside every sphinx-doc section of util/flags.py: %s",
            ", ".join(stray),
        )
    shown = set().union(*_shown(env).values())
    for section in sorted(set(sections) - shown):
        logger.warning(
            "flag-table: section %r is shown on no page; add `.. flag-table:: %s` "
            "to doc/FLAGS.rst",
            section,
            section,
        )


def setup(app):
    app.add_directive("flag-table", FlagTable)
    app.connect("env-purge-doc", _purge)
    app.connect("env-updated", _check_complete)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
