"""Repository-wide rules (doc/CONTRIBUTING.rst) that a grep or an AST walk can check.

Flags are read at the edge only (section 3), library code neither prints nor exits
(rule 5), every module says what it is for, the flag docs include every flag group, and
the LDC93S1 importer writes the CSV the demo trains on.
"""

import ast
import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FLAGS_DIRS = ("util", "native_client", "bin")
FLAGS_OWNER = Path("util/flags.py")
SKIP_DIRS = {"__pycache__", "build", ".pytest_cache"}


def _files_under(*dirs: str):
    for name in dirs:
        root = REPO / name
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(REPO)
            if path.is_file() and not SKIP_DIRS.intersection(rel.parts):
                yield rel


def _util_modules():
    return [p for p in _files_under("util") if p.suffix == ".py"]


def test_flags_only_in_flags_module():
    hits = []
    for rel in _files_under(*FLAGS_DIRS):
        if rel == FLAGS_OWNER:
            continue
        try:
            text = (REPO / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files cannot hold a FLAGS read
        hits += [
            f"{rel}:{n}: {line.strip()}"
            for n, line in enumerate(text.splitlines(), 1)
            if "FLAGS" in line
        ]
    message = "FLAGS outside util/flags.py (pass a Config section instead):"
    assert not hits, "\n".join([message, *hits])


@pytest.mark.parametrize("rel", _util_modules(), ids=str)
def test_util_module_has_docstring(rel):
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"), filename=str(rel))
    if rel.name == "__init__.py" and not tree.body:
        return
    message = f"{rel} needs a module docstring saying what it is for"
    assert ast.get_docstring(tree), message


def _forbidden_call(node: ast.AST) -> str:
    """'print' / 'sys.exit' / 'exit' when ``node`` calls one of them, else ''."""
    if not isinstance(node, ast.Call):
        return ""
    func = node.func
    if isinstance(func, ast.Name) and func.id in ("print", "exit", "quit"):
        return func.id
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "exit"
        and isinstance(func.value, ast.Name)
        and func.value.id in ("sys", "os")
    ):
        return f"{func.value.id}.exit"
    return ""


# The importers' shared command line: its main() is an edge, like DeepSpeech.py.
EDGE_FUNCTIONS = {Path("util/importing/importer_cli.py"): "main"}


@pytest.mark.parametrize("rel", _util_modules(), ids=str)
def test_util_module_does_not_print_or_exit(rel):
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"), filename=str(rel))
    for node in tree.body:  # an edge function may print; the rest of its module not
        if isinstance(node, ast.FunctionDef) and node.name == EDGE_FUNCTIONS.get(rel):
            tree.body.remove(node)
    calls = [
        f"{rel}:{node.lineno}: {name}()"
        for node in ast.walk(tree)
        if (name := _forbidden_call(node))
    ]
    message = "library code raises and logs; only the edge prints or exits:"
    assert not calls, "\n".join([message, *calls])


def test_flag_docs_include_every_flag_group():
    flags_src = (REPO / FLAGS_OWNER).read_text(encoding="utf-8")
    groups = set(re.findall(r"sphinx-doc: (\w+)_start", flags_src))
    assert groups, "util/flags.py lost its sphinx-doc markers"
    doc = (REPO / "doc" / "FLAGS.rst").read_text(encoding="utf-8")
    # One ``.. flag-table:: SECTION`` (doc/_ext/flag_table.py) per marker pair.
    included = {
        f"{s}_flags" for s in re.findall(r"^\.\. flag-table:: (\w+)$", doc, re.M)
    }
    message = f"doc/FLAGS.rst covers {sorted(included)}, flags.py {sorted(groups)}"
    assert groups == included, message


def test_import_ldc93s1_writes_csv(tmp_path):
    target = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(REPO / "bin" / "import_ldc93s1.py"), str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    with open(target / "ldc93s1.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    wav = target / "LDC93S1.wav"
    assert rows == [
        ["wav_filename", "wav_filesize", "transcript"],
        [
            "LDC93S1.wav",
            str(wav.stat().st_size),
            "she had your dark suit in greasy wash water all year",
        ],
    ]
    source = REPO / "data" / "ldc93s1" / "LDC93S1.wav"
    assert wav.read_bytes() == source.read_bytes()


def test_import_tooling_imports_without_tensorflow():
    """util.importing (and the bin/import_* scripts' core) works with no TensorFlow.

    A fresh interpreter whose meta path refuses ``tensorflow`` (as in a venv without
    it) imports every module of util.importing and writes a TFRecord shard.
    """
    code = """
import importlib.abc, pkgutil, sys, tempfile, os


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is blocked: no TensorFlow here")
        return None


sys.meta_path.insert(0, NoTensorFlow())
import util.importing
for info in pkgutil.iter_modules(util.importing.__path__):
    importlib.import_module("util.importing." + info.name)
from util import tfrecords
from util.importing import shards

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "x.tfrecord")
    shards.write_shard(path, [shards.audio_example("a", "a.wav", [0.0, 0.5], 16000)])
    (offset, data), = tfrecords.iter_records(path)
    assert tfrecords.parse_example(data)["transcript"] == b"a"
assert not [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
print("ok", len(list(pkgutil.iter_modules(util.importing.__path__))))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    n_modules = len([p for p in (REPO / "util" / "importing").glob("[!_]*.py")])
    assert result.stdout.startswith(f"ok {n_modules}"), result.stdout


def test_one_python_finder_for_the_shell_scripts(tmp_path):
    """bin/_python.sh picks $PYTHON, else .venv/bin/python; no script copies it."""
    helper = REPO / "bin" / "_python.sh"
    copies = [
        str(p.relative_to(REPO))
        for p in REPO.glob("**/*.sh")
        if p != helper and "PYTHON:-" in p.read_text(encoding="utf-8")
    ]
    assert not copies, f"scripts with their own Python lookup: {copies}"
    run = ["bash", "-c", f'. "{helper}"; printf %s "$PY"']
    env = {"PATH": "/usr/bin:/bin"}
    assert subprocess.run(run, env={**env, "PYTHON": "/x/py"}, cwd=tmp_path,
                          capture_output=True, text=True).stdout == "/x/py"  # fmt: skip
    assert subprocess.run(run, env=env, cwd=tmp_path, capture_output=True,
                          text=True).stdout == "python3"  # fmt: skip
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    (tmp_path / ".venv" / "bin" / "python").chmod(0o755)
    assert subprocess.run(run, env=env, cwd=tmp_path, capture_output=True,
                          text=True).stdout == ".venv/bin/python"  # fmt: skip


def test_importer_scripts_share_one_main():
    """Every bin/import_*.py delegates to util.importing.importer_cli.main."""
    for script in sorted(REPO.glob("bin/import_*.py")):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        (main,) = [n for n in tree.body if getattr(n, "name", "") == "main"]
        source = ast.unparse(main)
        assert "importer_cli.main(" in source, script.name
        assert "print(" not in source and "parse_args" not in source, script.name
