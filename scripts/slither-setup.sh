#!/usr/bin/env bash
# Installs Slither for the side-by-side benchmark `cargo bench -p hibana-audit --bench slither`.
# Not needed by the build, the tests or CI. Idempotent and non-interactive.
#
# Everything goes under ${HIBANA_SLITHER_HOME:-$HOME/.cache/hibana-slither}:
#   venv/          Python virtualenv with slither-analyzer (PyPI)
#   solcjs/        solc-js compilers from npm, one per Solidity minor version used by the corpus,
#                  and @openzeppelin/contracts for files that import it
#   solcjs-cli.js  a `solc` command line on top of solc-js (see below)
#   bin/solc-X.Y.Z one wrapper per compiler version, to pass to `slither --solc`
#
# Native solc binaries are downloaded by solc-select from a host this machine cannot reach, so
# Slither is given wrappers instead. crytic-compile runs `solc --version`, then
# `solc [remappings] FILE --combined-json abi,ast,bin,... --allow-paths ...` (or `--standard-json`
# with the input on stdin); solcjs-cli.js answers both by compiling with solc-js's standard-JSON
# interface (emscripten build of the same compiler) and reshaping the output like the native CLI.
set -euo pipefail

SLITHER_VERSION=0.11.6
SOLC_VERSIONS=(0.4.26 0.5.17 0.6.12 0.7.6 0.8.28)
OPENZEPPELIN_VERSION=5.0.2

home="${HIBANA_SLITHER_HOME:-$HOME/.cache/hibana-slither}"
mkdir -p "$home/bin" "$home/solcjs"

export DEBIAN_FRONTEND=noninteractive
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing $2 with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$2"
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is required (Debian package $2)" >&2; exit 1; }
}
need python3 python3
need node nodejs
need npm npm
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' ||
  { echo "error: Slither needs Python >= 3.10 with the venv module" >&2; exit 1; }

# 1. Slither in a virtualenv.
if [ "$("$home/venv/bin/slither" --version 2>/dev/null || true)" != "$SLITHER_VERSION" ]; then
  [ -x "$home/venv/bin/python" ] || python3 -m venv "$home/venv"
  "$home/venv/bin/pip" install --quiet --disable-pip-version-check "slither-analyzer==$SLITHER_VERSION"
fi

# 2. The compilers, installed side by side under npm aliases (solc-0.4.26 is solc@0.4.26, ...).
cd "$home/solcjs"
[ -f package.json ] || printf '{\n  "name": "hibana-solcjs",\n  "private": true\n}\n' > package.json
installed_version() {
  node -e 'try { console.log(require(process.argv[1] + "/package.json").version) } catch (e) {}' "$1"
}
missing=()
for v in "${SOLC_VERSIONS[@]}"; do
  [ "$(installed_version "$PWD/node_modules/solc-$v")" = "$v" ] || missing+=("solc-$v@npm:solc@$v")
done
[ "$(installed_version "$PWD/node_modules/@openzeppelin/contracts")" = "$OPENZEPPELIN_VERSION" ] ||
  missing+=("@openzeppelin/contracts@$OPENZEPPELIN_VERSION")
if [ ${#missing[@]} -gt 0 ]; then
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error "${missing[@]}"
fi

# 3. The `solc` command line on top of solc-js.
cat > "$home/solcjs-cli.js" <<'EOF'
// A stand-in for the native `solc` command line, enough for crytic-compile (Slither):
//   --version
//   --standard-json                      (input on stdin, output on stdout)
//   [remap=target ...] FILE... --combined-json LIST [--optimize] [--allow-paths P] ...
// Usage: node solcjs-cli.js SOLC_JS_PACKAGE_DIR ARGS...
// Written by scripts/slither-setup.sh of the hibana repository.
'use strict';
const fs = require('fs');
const path = require('path');

const [packageDir, ...args] = process.argv.slice(2);
const solc = require(packageDir);
const fullVersion = solc.version();
const minor = Number(fullVersion.split('.')[1]);
const basePaths = [];

function die(message) {
  process.stderr.write(message + '\n');
  process.exit(1);
}

// Import callback: source unit names are paths relative to the working directory, a base path
// or absolute (remappings are applied by the compiler before it asks).
function readImport(name) {
  const candidates = path.isAbsolute(name)
    ? [name]
    : [path.resolve(name), ...basePaths.map((b) => path.resolve(b, name))];
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    } catch (e) {
      // try the next one
    }
  }
  return { error: 'File not found: ' + name };
}

function compileStandard(input) {
  const text = JSON.stringify(input);
  // solc-js 0.4.x takes a bare callback; 0.5 and later an object of callbacks.
  const output = minor < 5
    ? solc.compileStandardWrapper(text, readImport)
    : solc.compile(text, { import: readImport });
  return JSON.parse(output);
}

function readStdin() {
  return fs.readFileSync(0, 'utf8');
}

function standardJson() {
  const input = JSON.parse(readStdin());
  for (const source of Object.values(input.sources || {})) {
    if (source.content === undefined && Array.isArray(source.urls)) {
      for (const url of source.urls) {
        const found = readImport(url);
        if (found.contents !== undefined) {
          source.content = found.contents;
          delete source.urls;
          break;
        }
      }
    }
  }
  process.stdout.write(JSON.stringify(compileStandard(input)) + '\n');
}

const SELECTORS = {
  abi: 'abi',
  bin: 'evm.bytecode.object',
  'bin-runtime': 'evm.deployedBytecode.object',
  srcmap: 'evm.bytecode.sourceMap',
  'srcmap-runtime': 'evm.deployedBytecode.sourceMap',
  userdoc: 'userdoc',
  devdoc: 'devdoc',
  hashes: 'evm.methodIdentifiers',
  metadata: 'metadata',
};

function combinedJson(files, fields, settings) {
  const wanted = fields.split(',').filter((f) => f && f !== 'compact-format');
  settings.outputSelection = {
    '*': {
      '*': wanted.filter((f) => SELECTORS[f]).map((f) => SELECTORS[f]),
      '': wanted.includes('ast') ? ['ast'] : [],
    },
  };
  const input = { language: 'Solidity', sources: {}, settings };
  for (const file of files) {
    try {
      input.sources[file] = { content: fs.readFileSync(file, 'utf8') };
    } catch (e) {
      die('Error: cannot read ' + file + ': ' + e.message);
    }
  }
  const output = compileStandard(input);
  let failed = false;
  for (const error of output.errors || []) {
    process.stderr.write((error.formattedMessage || error.message) + '\n');
    if (error.severity === 'error') failed = true;
  }
  if (failed) process.exit(1);
  // Before 0.8.0 the native CLI printed abi, userdoc and devdoc as JSON strings.
  const legacy = minor < 8;
  const asCli = (value) => (legacy ? JSON.stringify(value) : value);
  const result = { contracts: {}, sourceList: [], sources: {}, version: fullVersion };
  for (const [file, contracts] of Object.entries(output.contracts || {})) {
    for (const [name, c] of Object.entries(contracts)) {
      const evm = c.evm || {};
      const bytecode = evm.bytecode || {};
      const deployed = evm.deployedBytecode || {};
      const entry = {};
      for (const field of wanted) {
        if (field === 'abi') entry.abi = asCli(c.abi || []);
        else if (field === 'bin') entry.bin = bytecode.object || '';
        else if (field === 'bin-runtime') entry['bin-runtime'] = deployed.object || '';
        else if (field === 'srcmap') entry.srcmap = bytecode.sourceMap || '';
        else if (field === 'srcmap-runtime') entry['srcmap-runtime'] = deployed.sourceMap || '';
        else if (field === 'userdoc') entry.userdoc = asCli(c.userdoc || {});
        else if (field === 'devdoc') entry.devdoc = asCli(c.devdoc || {});
        else if (field === 'hashes') entry.hashes = evm.methodIdentifiers || {};
        else if (field === 'metadata') entry.metadata = c.metadata || '';
      }
      result.contracts[file + ':' + name] = entry;
    }
  }
  const sources = Object.entries(output.sources || {}).sort((a, b) => a[1].id - b[1].id);
  for (const [file, source] of sources) {
    result.sourceList.push(file);
    result.sources[file] = wanted.includes('ast') ? { AST: source.ast, id: source.id } : { id: source.id };
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

function main() {
  const files = [];
  const remappings = [];
  const settings = { optimizer: { enabled: false, runs: 200 } };
  let mode = null;
  let fields = null;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      if (i + 1 >= args.length) die('Error: ' + arg + ' needs a value');
      return args[++i];
    };
    if (arg === '--version') mode = 'version';
    else if (arg === '--standard-json') mode = 'standard-json';
    else if (arg === '--combined-json') { mode = 'combined-json'; fields = value(); }
    else if (arg === '--optimize') settings.optimizer.enabled = true;
    else if (arg === '--optimize-runs') settings.optimizer.runs = Number(value());
    else if (arg === '--evm-version') settings.evmVersion = value();
    else if (arg === '--via-ir' || arg === '--experimental-via-ir') settings.viaIR = true;
    else if (arg === '--base-path' || arg === '--include-path') basePaths.push(value());
    else if (arg === '--allow-paths') value(); // solc-js reads files only through readImport
    else if (arg.startsWith('--')) process.stderr.write('warning: ignoring ' + arg + '\n');
    else if (arg.includes('=')) remappings.push(arg);
    else files.push(arg);
  }
  if (mode === 'version') {
    process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + fullVersion + '\n');
  } else if (mode === 'standard-json') {
    standardJson();
  } else if (mode === 'combined-json') {
    if (files.length === 0) die('Error: no input files');
    settings.remappings = remappings;
    combinedJson(files, fields, settings);
  } else {
    die('usage: solc --version | --standard-json | FILE... --combined-json LIST');
  }
}

main();
EOF

# 4. One wrapper per version; `--version` is answered without loading the compiler.
node_bin="$(command -v node)"
for v in "${SOLC_VERSIONS[@]}"; do
  dir="$home/solcjs/node_modules/solc-$v"
  full="$("$node_bin" -e 'console.log(require(process.argv[1]).version())' "$dir")"
  cat > "$home/bin/solc-$v" <<EOF
#!/bin/sh
# solc $v for crytic-compile/Slither, on top of solc-js (written by scripts/slither-setup.sh)
if [ "\$#" -eq 1 ] && [ "\$1" = "--version" ]; then
  printf 'solc, the solidity compiler commandline interface\nVersion: %s\n' '$full'
  exit 0
fi
exec '$node_bin' '$home/solcjs-cli.js' '$dir' "\$@"
EOF
  chmod +x "$home/bin/solc-$v"
done

# 5. Smoke test: every wrapper compiles a small contract, and Slither analyses one.
check_dir="$(mktemp -d)"
trap 'rm -rf "$check_dir"' EXIT
for v in "${SOLC_VERSIONS[@]}"; do
  printf 'pragma solidity ^%s;\ncontract C { uint x; function set(uint v) public { x = v; } }\n' "$v" \
    > "$check_dir/c.sol"
  (cd "$check_dir" && "$home/bin/solc-$v" c.sol --combined-json abi,ast,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes > out.json 2> err.log) ||
    { echo "error: solc-$v wrapper failed:" >&2; cat "$check_dir/err.log" >&2; exit 1; }
  grep -q '"c.sol:C"' "$check_dir/out.json" || { echo "error: solc-$v wrapper printed no contract" >&2; exit 1; }
done
(cd "$check_dir" && "$home/venv/bin/slither" c.sol --solc "$home/bin/solc-${SOLC_VERSIONS[-1]}" \
  --disable-color --json - > slither.json 2> slither.log) || true
grep -q '"success": true' "$check_dir/slither.json" ||
  { echo "error: Slither did not run; its log:" >&2; cat "$check_dir/slither.log" >&2; exit 1; }

echo "slither: $home/venv/bin/slither ($SLITHER_VERSION)"
echo "solc wrappers: $home/bin/solc-{$(IFS=,; echo "${SOLC_VERSIONS[*]}")}"
echo "run: cargo bench -p hibana-audit --bench slither"
