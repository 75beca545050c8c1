# Developer entry points. `make demo` trains on LDC93S1; `make test` is what CI runs.
# Everything runs inside $(VENV), which `make venv` creates and keeps in sync with
# requirements*.txt and installs this repository into (`pip install -e .`; a stamp file
# records the last install, so repeat runs are fast).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
REQUIREMENTS := requirements.txt requirements-dev.txt
PIP_FLAGS ?= --disable-pip-version-check --no-input --quiet
PYTEST_FLAGS ?=

LINT_PATHS := util native_client bin tests bench data/lm $(wildcard DeepSpeech.py lm_optimizer.py evaluate_tflite.py transcribe.py)
# Nothing below DeepSpeech.py may touch FLAGS (doc/CONTRIBUTING.rst, Configuration).
FLAGS_DIRS := util native_client bin
FLAGS_OWNER := util/flags.py

.PHONY: venv kenlm demo test test-all test-training test-client docs lint lint-flags \
	bench clean distclean

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip

# Then the repository itself, editable (pyproject.toml): util, ctcdecode and deepspeech
# import from anywhere, so no script edits sys.path.
$(STAMP): $(REQUIREMENTS) | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) $(addprefix -r ,$(REQUIREMENTS))
	$(PY) -c "import flashlight.lib.text.decoder.kenlm" 2>/dev/null \
	  || bash native_client/build_flashlight_text.sh $(PY)
	$(PY) -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

# KenLM's lmplz, build_binary and filter from the kenlm sdist, into tools/kenlm/bin
# (git-ignored); skipped once built. See doc/SCORER.rst.
kenlm: venv
	PYTHON=$(PY) bash data/lm/build_kenlm.sh

demo: venv kenlm
	PYTHON=$(PY) bash bin/run-ldc93s1.sh

test: venv kenlm
	$(PY) -m pytest -q -m "not slow" $(PYTEST_FLAGS)
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory lint

test-all: venv kenlm
	$(PY) -m pytest -q $(PYTEST_FLAGS)
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory lint

# The training and the client tests alone, for CI's runs on other Python versions
# (.ci/run: `make PYTHON=python3.12 VENV=.venv-py3.12 test-training`).
TRAINING_TESTS := tests/test_config.py tests/test_model.py tests/test_ctc.py \
	tests/test_features.py tests/test_feeding.py tests/test_samples.py \
	tests/test_checkpoints.py tests/test_optimizer.py tests/test_compat_flags.py \
	tests/test_compat_training.py tests/test_compat_sdb.py
CLIENT_TESTS := tests/test_alphabet.py tests/test_decoder.py tests/test_scorer_package.py \
	tests/test_compat_scorer.py tests/test_client.py tests/test_compat_client.py

test-training: venv kenlm
	$(PY) -m pytest -q -m "not slow" $(PYTEST_FLAGS) $(TRAINING_TESTS)

test-client: venv kenlm
	$(PY) -m pytest -q -m "not slow" $(PYTEST_FLAGS) $(CLIENT_TESTS)

docs: venv
	$(VENV)/bin/sphinx-build -W -q -b html doc doc/_build/html

# lint-imports checks the import contracts of .importlinter (doc/ARCHITECTURE.rst).
lint: venv lint-flags
	$(VENV)/bin/flake8 $(LINT_PATHS)
	$(VENV)/bin/isort --check-only $(LINT_PATHS)
	$(VENV)/bin/lint-imports --no-cache

# git grep also sees untracked files; plain grep covers a tree without .git.
lint-flags:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  hits=$$(git grep -n --untracked -I "FLAGS" -- $(FLAGS_DIRS) || true); \
	else \
	  hits=$$(grep -rnI --exclude-dir=__pycache__ "FLAGS" $(FLAGS_DIRS) 2>/dev/null || true); \
	fi; \
	bad=$$(printf '%s\n' "$$hits" | grep -v -e '^$$' -e '^$(FLAGS_OWNER):' || true); \
	if [ -n "$$bad" ]; then \
	  echo "FLAGS may only appear in $(FLAGS_OWNER) (pass a Config section instead):"; \
	  echo "$$bad"; \
	  exit 1; \
	fi; \
	importers=$$(grep -rlIE --include='*.py' --exclude-dir=__pycache__ --exclude-dir=.venv \
	  --exclude-dir=tests '(util\.flags|from util import .*\bflags\b)' . || true); \
	if [ "$$importers" != "./DeepSpeech.py" ]; then \
	  echo "only DeepSpeech.py may import util.flags; found: $$importers"; \
	  exit 1; \
	fi

bench: venv
	@if [ -f bench/train_throughput.py ]; then \
	  $(PY) bench/train_throughput.py; \
	else \
	  echo "bench/train_throughput.py not present; nothing to run"; \
	fi

clean:
	rm -rf doc/_build runs .pytest_cache
	find . -path './.*' -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
