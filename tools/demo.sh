#!/usr/bin/env bash
# One command for a fresh machine: installs what the demo needs (torch==2.13.0 first where no torch is
# present), then runs the whole editing path on the built-in sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import torch" >/dev/null 2>&1; then
  python3 -m pip install -q torch==2.13.0
fi
python3 -m pip install -q -r requirements.txt
python3 -m facedit demo "$@"
