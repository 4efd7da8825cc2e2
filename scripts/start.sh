#!/usr/bin/env bash
# Quickstart command 1: set up (idempotent), run the quick demo if the runs directory is empty, start the
# dashboard on http://127.0.0.1:8501 (set PORT to change it; KNOW_RUNS_DIR for another runs directory).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KNOW_RUNS_DIR=${KNOW_RUNS_DIR:-runs}
if [ -z "$(.venv/bin/python -m know_core runs list --status done --json | tr -d '[:space:][]')" ]; then
    echo "start: no runs yet; running the quick demo (Fashion-MNIST, about a minute) so every page has something to show" >&2
    .venv/bin/python -m know_core demo --preset quick --runs-dir "$KNOW_RUNS_DIR" --name "quick demo"
fi
exec .venv/bin/python -m streamlit run app.py --server.address 127.0.0.1 --server.port "${PORT:-8501}" \
    --client.showErrorDetails none

