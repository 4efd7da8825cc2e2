#!/usr/bin/env bash
# Quickstart command 2: set up (idempotent) and run the whole test suite. Extra arguments go to pytest.
# Tests run in $KNOW_TEST_WORKERS (default 2) pytest-xdist processes, a test file's tests all in one of them
# (--dist loadfile: the Ray tests start and join Ray instances and must not meet another worker's; xdist_group marks
# do not work with pytest 9.2, whose nodeid xdist can no longer suffix); KNOW_TEST_WORKERS=0 runs them in this one.
# Tests write under their temporary folders or build/, never into the clone: the run fails when a file git tracks, or
# a new file git does not ignore, changed while it ran (edits made before it started do not count).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

before=$(bash scripts/clone_state.sh)
rc=0
.venv/bin/python -m pytest -n "${KNOW_TEST_WORKERS:-2}" --dist loadfile "$@" || rc=$?
after=$(bash scripts/clone_state.sh)
if [ "$before" != "$after" ]; then
    echo "test.sh: FAILED: these files in the clone changed while the tests ran (tests must write under tmp_path or" \
         "build/; or did you edit them meanwhile?):" >&2
    diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed -n 's/^[<>] [^ ]* /  /p' | sort -u >&2
    [ "$rc" = 0 ] && rc=1
fi
exit "$rc"
