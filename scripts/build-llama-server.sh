#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` for the side-by-side benchmark of the provider
# (`cargo run --release -p hibana-roles --example bench_provider`). No machine here reaches
# GitHub, so the llama.cpp sources come from the pinned llama-cpp-python sdist on PyPI, which
# vendors the whole llama.cpp tree including tools/server. Built like our bindings build it:
# no -march=native (AMX trap), explicit AVX2/FMA/F16C flags on x86_64, no curl.
#
# Usage: scripts/build-llama-server.sh [OUT_DIR]   (default ~/.cache/hibana/llama-server)
# Prints the path of the built binary on its last line.
set -euo pipefail
VERSION=0.3.36
OUT=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/hibana/llama-server}
BIN="$OUT/build/bin/llama-server"
if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi
command -v cmake >/dev/null || { echo "cmake is missing: run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$OUT"
SDIST="$OUT/llama_cpp_python-$VERSION.tar.gz"
if [[ ! -f "$SDIST" ]]; then
  # The sdist file itself, from PyPI's JSON API, checked against the sha256 PyPI lists.
  # (`pip download --no-binary :all:` would first build the sdist's build requirements from
  # source to read its metadata, which takes many minutes on a fresh machine.)
  python3 - "$VERSION" "$SDIST" <<'PY'
import hashlib, json, sys, urllib.parse, urllib.request
version, dest = sys.argv[1], sys.argv[2]
index = "https://pypi.org/pypi/llama-cpp-python/json"
with urllib.request.urlopen(index) as r:
    files = json.load(r)["releases"][version]
sdist = next(f for f in files if f["packagetype"] == "sdist")
# A mirror may answer with URLs relative to the JSON document.
data = urllib.request.urlopen(urllib.parse.urljoin(index, sdist["url"])).read()
if hashlib.sha256(data).hexdigest() != sdist["digests"]["sha256"]:
    sys.exit(f"sha256 mismatch for {sdist['filename']}")
with open(dest + ".part", "wb") as f:
    f.write(data)
import os
os.replace(dest + ".part", dest)
PY
fi
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
tar xzf "$SDIST" -C "$OUT/src" --strip-components=3 "llama_cpp_python-$VERSION/vendor/llama.cpp"
FLAGS=(-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF
       -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_OPENMP=OFF -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release)
if [[ "$(uname -m)" == x86_64 ]]; then
  FLAGS+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_SSE42=ON)
fi
cmake -S "$OUT/src" -B "$OUT/build" "${FLAGS[@]}" >/dev/null
cmake --build "$OUT/build" --target llama-server -j "$(nproc)" >/dev/null
echo "$BIN"
