#!/usr/bin/env bash
# Creates .ci/.venv with the pinned packages of .ci/python-requirements.txt (TensorBoard's event
# reader and the safetensors package, for the tests that use them) and prints the venv's python
# on stdout, for REGIMEN_PYTHON.
#
# Idempotent and quick once done: the venv is created only when missing, and pip runs only when
# the requirements file changed since the last successful install (its hash is kept in the venv).
# The interpreter that creates the venv is $PYTHON, default python3.
set -euo pipefail

ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$ci/.venv"
requirements="$ci/python-requirements.txt"
stamp="$venv/.requirements.sha256"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-python: creating $venv with ${PYTHON:-python3}" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]]; then
    echo "setup-python: installing $requirements" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv -r "$requirements" >&2
    "$venv/bin/python" -c "import tensorboard.backend.event_processing.event_accumulator, safetensors.numpy, moto.server, kubernetes_validate" >&2
    echo "$wanted" >"$stamp"
fi

echo "$venv/bin/python"
