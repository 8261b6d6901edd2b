# Sourced by tools/demo.sh and tools/test.sh: make (once) and use the project-local virtual environment .venv
# (FACEDIT_VENV overrides the folder). Debian / Ubuntu system Python refuses `pip install` (PEP 668); a venv
# does not. The venv sees the system's site-packages, so a torch already installed there (a CUDA build, say)
# is used as it is; torch==2.13.0 is installed first only where no torch imports at all.
VENV="${FACEDIT_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv --system-site-packages "$VENV"; then
    echo "could not create the virtual environment $VENV; on Debian / Ubuntu: apt-get install python3-venv" >&2
    exit 1
  fi
fi
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q torch==2.13.0
fi
