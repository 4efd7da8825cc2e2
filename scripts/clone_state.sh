#!/usr/bin/env bash
# Print one line per file of the current git work tree that differs from HEAD (tracked and changed or deleted, or
# untracked and not ignored): its content hash (or "deleted") and its path. scripts/test.sh compares this before and
# after the tests: a difference is a file the run wrote into the clone. Prints nothing outside a git work tree.
set -euo pipefail
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
git ls-files -z --modified --deleted --others --exclude-standard | sort -zu | while IFS= read -r -d '' f; do
    if [ -e "$f" ]; then printf '%s %s\n' "$(git hash-object -- "$f")" "$f"; else printf 'deleted %s\n' "$f"; fi
done
