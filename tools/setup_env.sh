#!/usr/bin/env bash
# Create or update .venv from requirements.txt. Safe to run repeatedly: a stamp holding the hash of
# requirements.txt skips pip when nothing changed, so the common case takes about a second.
#
# Usage: bash tools/setup_env.sh   (run_all.sh and run_tests.sh call it first)
# Environment: PYTHON picks the interpreter (default python3); VENV_DIR the folder (default .venv).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python_bin="${PYTHON:-python3}"
venv_dir="${VENV_DIR:-$repo_root/.venv}"
requirements="$repo_root/requirements.txt"
stamp="$venv_dir/.requirements.sha256"

if ! command -v "$python_bin" >/dev/null 2>&1; then
    echo "error: $python_bin not found; install Python 3.10 or newer, or set PYTHON=/path/to/python3" >&2
    exit 1
fi
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    found="$("$python_bin" -c 'import platform; print(platform.python_version())')"
    echo "error: Python $found is too old; this project needs 3.10 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

wanted_hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x "$venv_dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted_hash" ]; then
    exit 0
fi

if [ ! -x "$venv_dir/bin/python" ]; then
    echo "setup: creating $venv_dir with $("$python_bin" --version)"
    if ! "$python_bin" -m venv "$venv_dir"; then
        echo "error: python -m venv failed; on Debian or Ubuntu install the python3-venv package" >&2
        exit 1
    fi
fi

echo "setup: installing requirements.txt into $venv_dir (first run takes a few minutes)"
if ! "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"; then
    echo "error: pip could not install requirements.txt into $venv_dir." >&2
    echo "       Check the network or the package index, then rerun; delete $venv_dir to start over." >&2
    exit 1
fi
echo "$wanted_hash" > "$stamp"
echo "setup: done"
