#!/usr/bin/env bash
# One command for a fresh machine: makes/uses .venv (tools/venv.sh; torch==2.13.0 first where no torch is
# present, never a second torch), installs what the demo needs, then runs the whole editing path on the
# shipped sample clip.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/venv.sh
"$PY" -m pip install -q -r requirements.txt
"$PY" -m facedit demo "$@"
