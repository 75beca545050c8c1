#!/usr/bin/env bash
# Build and install flashlight-text (the CTC beam search decoder, with KenLM) from its
# source distribution for a Python that has no wheel of it (3.13: flashlight-text 0.0.7
# ships wheels up to 3.12), using only the package registry: no download during the
# build.
#
#   bash native_client/build_flashlight_text.sh .venv-py3.13/bin/python
#
# kenlm's own sdist does not compile on 3.13 either (old generated Cython); it is
# built here too, and installed: requirements.txt leaves it to this script there.
# flashlight-text's setup.py links KenLM from the `kenlm` package (its libkenlm.so, in
# site-packages) and downloads KenLM's headers from GitHub unless its build directory
# already holds them: this script puts the headers of the kenlm sdist there first. Its
# CMake build downloads pybind11 unless one is installed: the pybind11 wheel is. The
# wheels (kenlm's and flashlight-text's) are cached under build/ (git-ignored), so a
# second run, for another venv of the same Python, only installs them (seconds).
set -euo pipefail

PY=${1:?usage: build_flashlight_text.sh PYTHON}
# Absolute (without resolving the venv's symlink): the build below runs setup.py from
# inside the unpacked sdist, where a relative .venv-py3.13/bin/python does not exist.
case $PY in
  */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;;
esac
cd "$(dirname "$0")/.."
FLASHLIGHT_TEXT=flashlight-text==0.0.7
KENLM=kenlm==0.3.0
PYBIND11=pybind11==2.13.6
CYTHON=cython==3.3.1
TAG=$("$PY" -c 'import sys; print(sys.implementation.cache_tag)')
WORK=build/flashlight-text-$TAG
PIP=("$PY" -m pip --disable-pip-version-check --no-input -q)

if "$PY" -c "import flashlight.lib.text.decoder.kenlm" 2>/dev/null; then
  echo "flashlight-text with KenLM already importable by $PY"
  exit 0
fi
mkdir -p "$WORK/dist" "$WORK/src"
if ! ls "$WORK"/dist/kenlm-*.whl "$WORK"/dist/flashlight_text-*.whl >/dev/null 2>&1; then
  "${PIP[@]}" install "$PYBIND11" "$CYTHON" setuptools wheel
  "${PIP[@]}" download --no-deps --no-binary flashlight-text,kenlm \
    --no-build-isolation -d "$WORK" "$FLASHLIGHT_TEXT" "$KENLM"
fi
# kenlm (an sdist, compiled once into a cached wheel) provides libkenlm.so, which
# flashlight-text's KenLM module links. Its pre-generated Cython C++ does not compile
# for Python 3.13 (_PyGC_FINALIZED, _PyDict_SetItem_KnownHash are gone), so it is
# generated again from its kenlm.pyx with a current Cython first.
if ! ls "$WORK"/dist/kenlm-*.whl >/dev/null 2>&1; then
  rm -rf "$WORK"/src/kenlm-*
  tar xzf "$WORK"/kenlm-*.tar.gz -C "$WORK/src"
  KENLM_SRC=$(cd "$WORK"/src/kenlm-* && pwd)
  "$PY" -m cython -3 --cplus "$KENLM_SRC/python/kenlm.pyx" -o "$KENLM_SRC/python/kenlm.cpp"
  "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$WORK/dist" "$KENLM_SRC"
fi
"${PIP[@]}" install --no-deps "$WORK"/dist/kenlm-*.whl
if ! ls "$WORK"/dist/flashlight_text-*.whl >/dev/null 2>&1; then
  rm -rf "$WORK"/src/flashlight-text-*
  tar xzf "$WORK"/flashlight-text-*.tar.gz -C "$WORK/src"
  [ -d "$(echo "$WORK"/src/kenlm-*)" ] || tar xzf "$WORK"/kenlm-*.tar.gz -C "$WORK/src"
  SRC=$(cd "$WORK"/src/flashlight-text-* && pwd)
  BUILD_TEMP=$("$PY" -c 'import sys, sysconfig; print(f"build/temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}")')
  # setup.py's get_kenlm_paths(): <build_temp>/kenlm/kenlm/kenlm is KenLM's source tree.
  mkdir -p "$SRC/$BUILD_TEMP/kenlm/kenlm"
  cp -r "$WORK"/src/kenlm-*/ "$SRC/$BUILD_TEMP/kenlm/kenlm/kenlm"
  PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir)
  DIST=$(cd "$WORK/dist" && pwd)
  (cd "$SRC" && CMAKE_PREFIX_PATH="$PYBIND11_DIR" "$PY" setup.py -q bdist_wheel -d "$DIST")
fi
"${PIP[@]}" install --no-deps "$WORK"/dist/flashlight_text-*.whl
"$PY" -c "import flashlight.lib.text.decoder.kenlm" && echo "flashlight-text built and installed for $PY"
