#!/usr/bin/env bash
# Makes `--features cuda` build from the package registries alone.
#
# Burn's CUDA backend (cubecl-cuda 0.11) always links LLVM through cubecl-llvm, whose build
# dependency tracel-llvm-bundler downloads an LLVM 23 bundle from GitHub in its build script, unless
# `<data dir>/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed` exists. PyPI has a relocatable
# static LLVM 23 SDK with the NVPTX target (mlc-llvm-static, its `extra-targets` part): this script
# installs it into a virtual environment and puts it where the bundler looks, so that
# `cargo build --release -p regimen-cli --features cuda` runs offline afterwards.
#
#   bash .ci/cuda-llvm.sh [VENV]      VENV defaults to .ci/.venv-llvm; prints the SDK's path
#
# An LLVM bundle already installed there by the bundler itself is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
SDK_VERSION="23.1.1.post0"
BUNDLE="tracel-llvm-23.1.0-4"
VENV="${1:-.ci/.venv-llvm}"
PYTHON="$VENV/bin/python"

if [[ ! -x "$PYTHON" ]]; then
    python3 -m venv "$VENV" >&2
fi
if ! "$PYTHON" -c "import sys, importlib.metadata as m; sys.exit(m.version('mlc-llvm-static') != '$SDK_VERSION')" 2>/dev/null; then
    echo "installing mlc-llvm-static[all]==$SDK_VERSION from PyPI into $VENV (about 90 MB)" >&2
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "mlc-llvm-static[all]==$SDK_VERSION" >&2
fi
SDK="$("$PYTHON" -c "import mlc_llvm_static, pathlib; print(pathlib.Path(mlc_llvm_static.__file__).parent / 'static')")"
chmod +x "$SDK/bin/llvm-config"
"$SDK/bin/llvm-config" --version >/dev/null

DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}"
TARGET="$DATA_DIR/tracel/$BUNDLE"
mkdir -p "$DATA_DIR/tracel"
if [[ -d "$TARGET" && ! -L "$TARGET" ]]; then
    echo "$TARGET is a bundle the bundler installed; leaving it" >&2
else
    ln -sfn "$(cd "$SDK" && pwd)" "$TARGET"
    touch "$TARGET/.tracel-llvm-installed"
fi
echo "$TARGET"
