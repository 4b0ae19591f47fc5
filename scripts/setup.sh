#!/usr/bin/env bash
# One-time machine setup for building and testing Hibana (run as root; idempotent, non-interactive).
#
# * cmake and a C/C++ toolchain: llama-cpp-sys-2 builds llama.cpp with cmake.
# * libclang: llama-cpp-sys-2 generates its bindings with bindgen, which loads libclang at build time.
# * models: installs the model catalog a devnet and the `hibana-ai` tests run into
#   $HIBANA_MODELS (default: <data dir>/hibana/models), with `hibana models install` (which builds
#   the node) or, with --tests, a small installer example. Pass --no-models to skip that step.
# With --tests, what only the test suite needs (about 500 MB of packages a devnet never uses):
# * python3-venv and procps: a test runs the openai client in a virtualenv; tests stop processes.
# * faketime: a network test runs one validator with its clock an hour ahead.
# * chromium, nodejs, npm: the dashboard test drives the node's web page in headless Chromium
#   with playwright-core (pinned in crates/node/tests/dashboard/package-lock.json).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
with_models=1
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --no-models) with_models=0 ;;
    --tests) with_tests=1 ;;
    *) echo "usage: $0 [--tests] [--no-models]" >&2; exit 2 ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$apt_updated" = 0 ]; then apt-get update -qq && apt_updated=1 || return 1; fi
  apt-get install -y -qq --no-install-recommends "$@"
}

have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && ls "$LIBCLANG_PATH"/libclang*.so* >/dev/null 2>&1 && return 0
  ldconfig -p 2>/dev/null | grep -q 'libclang\(-[0-9.]*\)\?\.so' && return 0
  ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-*.so* >/dev/null 2>&1
}

if ! command -v cmake >/dev/null 2>&1; then
  echo "setup: installing cmake"
  apt_install cmake || pip install --quiet cmake
fi
if ! command -v c++ >/dev/null 2>&1; then
  echo "setup: installing a C/C++ compiler"
  apt_install build-essential
fi
if ! have_libclang; then
  echo "setup: installing libclang (bindgen)"
  apt_install libclang-dev || pip install --quiet libclang
fi
if [ "$with_tests" = 1 ]; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "setup: installing python3-venv (a test runs the openai client in a virtualenv)"
    apt_install python3-venv
  fi
  if ! command -v ps >/dev/null 2>&1 || ! command -v pkill >/dev/null 2>&1; then
    echo "setup: installing procps (tests stop the processes they start)"
    apt_install procps
  fi
  if ! command -v faketime >/dev/null 2>&1; then
    echo "setup: installing faketime (a network test runs a validator with a skewed clock)"
    apt_install faketime
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (the dashboard test drives the page headless)"
    apt_install chromium
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing nodejs and npm (they run the dashboard test's browser driver)"
    apt_install nodejs npm
  fi
  if [ ! -d "$repo/crates/node/tests/dashboard/node_modules/playwright-core" ]; then
    echo "setup: installing playwright-core for the dashboard test"
    (cd "$repo/crates/node/tests/dashboard" && npm ci --no-audit --no-fund --silent)
  fi
fi
if ! command -v pip >/dev/null 2>&1 && ! command -v pip3 >/dev/null 2>&1; then
  echo "setup: installing pip (models are fetched from PyPI)"
  apt_install python3-pip
fi

command -v cmake >/dev/null && cmake --version | head -1
have_libclang && echo "setup: libclang found"

if [ "$with_models" = 1 ]; then
  cd "$repo"
  if [ "$with_tests" = 1 ]; then
    # The tests' build resolves features over the whole workspace, so a `hibana` built here
    # would not be reused by it (llama.cpp compiled twice: 12 minutes of a clean CI run). The
    # installer example needs the catalog only and builds without the engines in under a minute.
    echo "setup: installing models (hibana-ai example install_models)"
    cargo run --quiet -p hibana-ai --no-default-features --example install_models
  else
    # `hibana models install` builds the very binary `cargo hibana devnet` runs next, so a first
    # run compiles nothing twice (the installer example shares only part of its crates' features).
    echo "setup: building hibana and installing models (hibana models install)"
    cargo run --quiet --bin hibana -- models install
  fi
fi
echo "setup: done"
