#!/usr/bin/env bash
# Installs EZKL for the side-by-side benchmark `cargo bench -p hibana-zkml --bench zkml`.
# Not needed by the build, the tests or CI. Idempotent and non-interactive.
#
# Everything goes into a throwaway virtualenv at ${HIBANA_EZKL_VENV:-$HOME/.cache/hibana/ezkl-venv}
# with the `ezkl` wheel from PyPI (its Python API drives settings, calibration, keys, proving and
# verifying) and `onnx` (the benchmark runner reads the model's input shape from the file).
# The structured reference string is generated locally by the runner with `ezkl.gen_srs`:
# `ezkl.get_srs` would download it, and this machine reaches only the package registries.
set -euo pipefail

EZKL_VERSION=23.0.5

venv="${HIBANA_EZKL_VENV:-$HOME/.cache/hibana/ezkl-venv}"

command -v python3 >/dev/null 2>&1 || { echo "error: python3 is required" >&2; exit 1; }
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' ||
  { echo "error: EZKL needs Python >= 3.9 with the venv module" >&2; exit 1; }

installed() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ezkl"))' 2>/dev/null || true
}

if [ "$(installed)" != "$EZKL_VERSION" ] || ! "$venv/bin/python" -c 'import onnx' 2>/dev/null; then
  [ -x "$venv/bin/python" ] || { mkdir -p "$(dirname "$venv")" && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ezkl==$EZKL_VERSION" onnx
fi

# Smoke test: the module imports and reports the pinned version.
[ "$(installed)" = "$EZKL_VERSION" ] || { echo "error: ezkl $EZKL_VERSION did not install" >&2; exit 1; }
"$venv/bin/python" -c 'import ezkl, onnx' ||
  { echo "error: the ezkl module does not import" >&2; exit 1; }

echo "ezkl $EZKL_VERSION: $venv/bin/python"
echo "run: cargo bench -p hibana-zkml --bench zkml"
