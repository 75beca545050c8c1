#!/usr/bin/env bash
# Build KenLM's lmplz, build_binary and filter into tools/kenlm/bin (git-ignored), from
# the kenlm source package on PyPI, so building a language model needs no manual steps
# (DeepSpeech users had to clone and build KenLM by hand: DeepSpeech#3426, #2758).
#
#   bash data/lm/build_kenlm.sh            # what `make kenlm` runs
#   PYTHON=python3 PREFIX=/opt/kenlm bash data/lm/build_kenlm.sh
#
# Skipped when the three binaries exist. As root it installs the Debian build
# dependencies it lacks; otherwise it prints the apt-get command and fails.
set -euo pipefail
cd -P "$(dirname "$0")/../.."  # -P: the real repo, also when data/ is a symlink

KENLM_VERSION=0.3.0
PREFIX=${PREFIX:-tools/kenlm}
BIN_DIR=$PREFIX/bin
BINARIES=(lmplz build_binary filter)
DEB_PACKAGES=(libboost-program-options-dev libboost-system-dev libboost-thread-dev
  libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev cmake)
JOBS=${JOBS:-2}  # shared machines: keep the build from taking every core

. bin/_python.sh  # sets PY: $PYTHON, else .venv/bin/python, else python3

have_binaries() {
  local name
  for name in "${BINARIES[@]}"; do
    [ -x "$BIN_DIR/$name" ] || return 1
  done
}

if have_binaries; then
  echo "KenLM tools present in $BIN_DIR (delete it to rebuild)"
  exit 0
fi

missing_packages() {
  local pkg
  for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || echo "$pkg"
  done
}

if command -v dpkg-query >/dev/null 2>&1; then
  mapfile -t MISSING < <(missing_packages)
  if [ "${#MISSING[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing KenLM build dependencies: ${MISSING[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${MISSING[@]}" g++ make
    else
      echo "KenLM needs these Debian packages; install them, then run make kenlm again:" >&2
      echo "  sudo apt-get update && sudo apt-get install -y ${MISSING[*]}" >&2
      exit 1
    fi
  fi
elif ! command -v cmake >/dev/null 2>&1; then
  echo "KenLM needs cmake, a C++ compiler, Boost (program_options, system, thread," >&2
  echo "test), zlib, bzip2 and liblzma development files; install them and retry" >&2
  exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# --no-binary kenlm (not :all:): with :all: pip also builds CMake from source (10+ min).
"$PY" -m pip download --disable-pip-version-check --quiet --no-deps \
  --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$WORK"
tar -xzf "$WORK"/kenlm-*.tar.gz -C "$WORK"
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kenlm*' | head -n 1)

cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
  -DCOMPILE_TESTS=OFF -Wno-dev >"$WORK/cmake.log" 2>&1 \
  || { cat "$WORK/cmake.log" >&2; exit 1; }
make -C "$WORK/build" -j"$JOBS" "${BINARIES[@]}"

mkdir -p "$BIN_DIR"
for name in "${BINARIES[@]}"; do
  install -m 0755 "$WORK/build/bin/$name" "$BIN_DIR/$name"
done
echo "KenLM $KENLM_VERSION tools installed in $BIN_DIR: ${BINARIES[*]}"
