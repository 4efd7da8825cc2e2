#!/usr/bin/env bash
# Refresh the README's image, docs/screenshot.png, on purpose: run the browser test (tests/test_browser.py: it launches
# the quick demo in headless Chromium and photographs the Trajectory page) with $KNOW_SCREENSHOT naming where to save
# it. The test suite saves the same view to build/screenshot.png instead, so running the tests leaves the clone clean.
# The image replaces docs/screenshot.png only when the test passed; then look at it and commit it. Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
shot=build/screenshot-readme.png
mkdir -p build
rm -f "$shot"
KNOW_SCREENSHOT="$PWD/$shot" .venv/bin/python -m pytest -q -p no:cacheprovider \
    "tests/test_browser.py::test_launch_watch_explore_and_cancel" "$@"
if [ ! -s "$shot" ]; then
    echo "screenshot: the browser test took no screenshot (skipped? it needs Debian's chromium: run" \
         "scripts/setup.sh as root); docs/screenshot.png is unchanged" >&2
    exit 1
fi
mv -f "$shot" docs/screenshot.png  # one rename: the README never shows half an image
echo "screenshot: docs/screenshot.png refreshed; look at it, then commit it" >&2
