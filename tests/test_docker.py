"""Dockerfile and Dockerfile.gpu: their build steps are README.md's set-up commands.

No container engine runs here, so the images are not built; instead each RUN line must
be a command of README.md's set-up (and GPU) blocks, in README order, and what the
images run (DeepSpeech.py, deepspeech-server) must exist. README's docker lines must
name these images and entry points.
"""

from __future__ import annotations

import json
import os
import re
import tomllib

import pytest


def _readme_commands(repo_root):
    text = open(os.path.join(repo_root, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split(" #")[0].strip() for b in blocks for line in b.splitlines()]
    return text, [line for line in lines if line]


def _dockerfile(repo_root, name):
    text = open(os.path.join(repo_root, name), encoding="utf-8").read()
    runs = re.findall(r"^RUN (.+)$", text, flags=re.M)
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, flags=re.M).group(1))
    return runs, entry


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfile_runs_the_readme_setup(repo_root, name):
    _, commands = _readme_commands(repo_root)
    runs, entry = _dockerfile(repo_root, name)
    assert [r for r in runs if r not in commands] == []
    setup = commands[commands.index("apt-get update") :][:5]
    assert [r for r in runs if "sed" not in r] == setup  # all of it, in order
    gpu = [i for i, r in enumerate(runs) if "tensorflow[and-cuda]" in r]
    assert bool(gpu) == name.endswith(".gpu")
    if gpu:  # the GPU line edits requirements.txt before it is installed
        assert gpu[0] < runs.index(".venv/bin/pip install -r requirements.txt")
    assert entry == ["python", "DeepSpeech.py"]
    assert os.path.isfile(os.path.join(repo_root, entry[1]))


def test_readme_docker_lines_use_existing_entry_points(repo_root):
    text, _ = _readme_commands(repo_root)
    assert "docker build -t deepspeech ." in text
    assert "-f Dockerfile.gpu" in text
    with open(os.path.join(repo_root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    for command in re.findall(r"--entrypoint (\S+)", text):
        assert command in scripts, command
        module, function = scripts[command].split(":")
        imported = __import__(module, fromlist=[function])
        assert callable(getattr(imported, function))
    assert "--entrypoint deepspeech-server" in text
    mounts = re.findall(r'-v "\$PWD/(\w+):/(\w+)"', text)
    assert ("data", "data") in mounts and ("runs", "runs") in mounts
