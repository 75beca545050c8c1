# Sourced (never run) by the shell scripts after they cd to the repository root: sets
# PY to the Python to use: $PYTHON when set, else the repository's .venv (made by
# `make venv`), else python3 from PATH.
#   . bin/_python.sh
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
fi
