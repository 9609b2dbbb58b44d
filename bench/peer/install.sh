#!/usr/bin/env bash
# Installs the pinned PyTorch peer (bench/peer/requirements.txt) into .tools/peer/, once: a few GB, never part of
# .ci/run. Re-running it is a no-op while the requirements file is the one installed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.tools/peer"
REQ="$ROOT/bench/peer/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "[bench/peer] installing the PyTorch peer into .tools/peer/ (first use only; a few GB)" >&2
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
"$VENV/bin/python" -c 'import torch; print("[bench/peer] torch", torch.__version__, "threads", torch.get_num_threads())' >&2
echo "$want" > "$STAMP"
