#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system data packages where missing, then .venv from requirements-dev.txt
# and the project itself as an editable package (`know` command, `import know_core` from anywhere).
# Re-running it is cheap: pip runs only when the requirements files or pyproject.toml changed since the last
# successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {  # apt_install PACKAGE CHECK_PATH — install a Debian package when CHECK_PATH is absent
    [ -e "$2" ] && return 0
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian package $1" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1"; } >/dev/null \
            || echo "setup: warning: could not install $1; features that need it will say so" >&2
    else
        echo "setup: warning: $1 is missing and cannot be installed here (needs root + apt-get)" >&2
    fi
}
apt_install dataset-fashion-mnist /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
apt_install chromium /usr/bin/chromium  # browser tests drive the system Chromium through Playwright

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # torch and its companions take about 7 GB in .venv; say so up front rather than fail half-way with ENOSPC.
    need_kb=$((7 * 1024 * 1024))
    for where in . "${TMPDIR:-/tmp}"; do
        free_kb=$(df -Pk "$where" | awk 'NR == 2 {print $4}')
        if [ -n "$free_kb" ] && [ "$free_kb" -lt "$need_kb" ] && [ ! -f .venv/.requirements.sha256 ]; then
            echo "setup: FAILED: $((free_kb / 1024)) MB free on the disk holding $(cd "$where" && pwd);" \
                 "installing the Python packages needs about $((need_kb / 1024)) MB. Free space and run this again." >&2
            exit 1
        fi
    done
    echo "setup: installing Python packages into .venv (first time: a few minutes)" >&2
    # This machine's pip config lists local package folders that do not exist; hide that noise, keep real errors.
    .venv/bin/pip install -q -r requirements-dev.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    .venv/bin/pip install -q -e . --no-deps 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    echo "$want" > "$stamp"
fi
