"""scripts/clone_state.sh, the guard scripts/test.sh runs before and after the tests: what a test run wrote into the
clone shows as a changed line, a developer's earlier edits do not, ignored files never do."""

import shutil
import subprocess

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def state(repo):
    out = subprocess.run(["bash", str(REPO / "scripts" / "clone_state.sh")], cwd=repo, check=True,
                         capture_output=True, text=True).stdout
    return dict(reversed(line.split(" ", 1)) for line in out.splitlines())


def test_the_state_names_what_changed_since_it_was_taken(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("/build/\n")
    (tmp_path / "tracked.txt").write_text("a")
    (tmp_path / "edited.txt").write_text("a")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "start")
    assert state(tmp_path) == {}  # a clean clone
    (tmp_path / "edited.txt").write_text("a developer's edit")
    before = state(tmp_path)
    assert set(before) == {"edited.txt"}
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "screenshot.png").write_bytes(b"png")  # ignored: allowed
    assert state(tmp_path) == before
    (tmp_path / "tracked.txt").write_text("written by a test")
    (tmp_path / "edited.txt").write_text("a developer's edit, then a test's")
    (tmp_path / "new.txt").write_text("left behind")
    after = state(tmp_path)
    assert set(after) == {"edited.txt", "tracked.txt", "new.txt"}
    assert after["edited.txt"] != before["edited.txt"]  # a test rewriting an edited file is seen too
    (tmp_path / "tracked.txt").unlink()
    assert state(tmp_path)["tracked.txt"] == "deleted"


def test_outside_a_git_clone_it_says_nothing(tmp_path):
    assert state(tmp_path) == {}
