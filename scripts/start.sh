#!/usr/bin/env bash
# Quickstart command 1: set up (idempotent), then serve the dashboard on http://127.0.0.1:8501 at once (set PORT to
# change it; KNOW_RUNS_DIR for another runs directory). When the runs directory has no finished run and no running
# experiment, the quick demo is launched first as a background job, exactly as the Experiments page launches one:
# the dashboard shows it running, live, and every page fills in when it ends (its log, one line per phase:
# RUNS/RUN_ID/.worker.log). Starting again never launches a second demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KNOW_RUNS_DIR=${KNOW_RUNS_DIR:-runs}
echo "start: serving http://127.0.0.1:${PORT:-8501} (runs directory: $KNOW_RUNS_DIR)" >&2
.venv/bin/python -m know_core demo --preset quick --runs-dir "$KNOW_RUNS_DIR" --name "quick demo" \
    --background --if-empty >&2 || echo "start: the quick demo was not launched (see above); serving anyway" >&2
exec .venv/bin/python -m streamlit run app.py --server.address 127.0.0.1 --server.port "${PORT:-8501}" \
    --client.showErrorDetails none
