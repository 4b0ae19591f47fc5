#!/usr/bin/env bash
# Installs sentence-transformers for the side-by-side benchmark
# `cargo run --release -p hibana-ai --example bench_embed`.
# Not needed by the build, the tests or CI. Idempotent and non-interactive.
#
# Everything goes into a throwaway virtualenv at ${HIBANA_SBERT_VENV:-$HOME/.cache/hibana/sbert-venv}.
# PyPI's torch wheel for Linux is built against CUDA and will not even import without the NVIDIA
# libraries it links (the CPU-only wheels live on download.pytorch.org, which this machine cannot
# reach), so pip installs them too: about 3 GB on disk that the CPU benchmark never uses.
set -euo pipefail

TORCH_VERSION=2.15.0
SBERT_VERSION=6.2.0

venv="${HIBANA_SBERT_VENV:-$HOME/.cache/hibana/sbert-venv}"

command -v python3 >/dev/null 2>&1 || { echo "error: python3 is required" >&2; exit 1; }

works() {
  [ "$("$venv/bin/python" -c 'import torch, sentence_transformers as s; print(torch.__version__.split("+")[0], s.__version__)' 2>/dev/null)" \
    = "$TORCH_VERSION $SBERT_VERSION" ]
}

if ! works; then
  [ -x "$venv/bin/python" ] || { mkdir -p "$(dirname "$venv")" && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "torch==$TORCH_VERSION" "sentence-transformers==$SBERT_VERSION"
fi

"$venv/bin/python" -c 'import torch, sentence_transformers as s; print("sentence-transformers", s.__version__, "torch", torch.__version__)'
