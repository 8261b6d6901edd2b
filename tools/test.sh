#!/usr/bin/env bash
# One command for a fresh machine: makes/uses .venv (tools/venv.sh; torch==2.13.0 first where no torch is
# present, so that no later requirement pulls another torch build), installs what the tests need, runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/venv.sh
"$PY" -m pip install -q -r requirements.txt -r requirements-test.txt
set +e
"$PY" -m pytest -q "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test; that is not a failure of the code under test.
if [ "$rc" -eq 5 ]; then rc=0; fi
exit "$rc"
