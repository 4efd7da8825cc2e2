"""Every page on a store full of hostile runs (issue 11, classes 1, 2, 3 and 9): each damaged run is shown as damaged
or failed with its reason, the healthy runs stay listed and drawable, no page raises, and no run name or message
becomes Markdown (an image or link a browser would fetch)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import REPO
from hostile_helpers import build_store, clone, sql
from streamlit.testing.v1 import AppTest
from test_hostile import BOUNDS_CASES, FILES_CASES

PAGES = ["experiments", "trajectory", "compare", "scaling", "sweeps", "known", "runs", "present"]
EVIL = "![px](http://127.0.0.1:1/x.png) [link](http://127.0.0.1:1/) :red[x] <img src=x>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    fid, eid = build_store(root)
    sql(root, "UPDATE runs SET name = ? WHERE id = ?", (EVIL, eid))
    damaged = {}
    for i, (case, kind, damage, _) in enumerate(FILES_CASES + BOUNDS_CASES):
        run_id = clone(root, fid if kind == "forget" else eid, f"bad-{i:02d}-{case}", name=f"{EVIL} {case}")
        damage(root / run_id, root, run_id, tmp_path_factory.mktemp(case))
        damaged[run_id] = kind
    now = time.time() - 3600  # a zombie: listed as running, its process long gone, no owner record
    sql(root, "INSERT INTO runs VALUES ('zombie', 'experiment', ?, 'running', NULL, ?, ?, '{}', NULL)",
        (EVIL, now, now))
    return root, fid, eid, damaged


def run_page(monkeypatch, root: Path, page: str, **params) -> AppTest:
    monkeypatch.setenv("KNOW_RUNS_DIR", str(root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(f"screens/{page}.py")
    return at.run()


UNESCAPED = re.compile(r"(?<!\\)!(?<!\\)\[|(?<!\\)\]\((?<!\\)|(?<!\\):red(?<!\\)\[")


def texts(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader", "expander"):
        for el in at.get(kind):
            value = getattr(el, "value", None) or getattr(el, "label", None) or ""
            out.append(str(value))
    return out


def assert_no_markdown_from_names(at: AppTest) -> int:
    """No text that carries the hostile name renders it as Markdown; returns how many such texts were seen."""
    seen = 0
    for text in texts(at):
        if "127.0.0.1:1" in text.replace("\\", ""):
            seen += 1
            assert not UNESCAPED.search(text), text
    return seen


@pytest.mark.parametrize("page", PAGES)
def test_every_page_survives_a_hostile_store(monkeypatch, hostile, page):
    root, fid, eid, damaged = hostile
    at = run_page(monkeypatch, root, page)
    assert not at.exception, at.exception
    seen = assert_no_markdown_from_names(at)
    if page == "experiments":
        assert seen >= 1  # the job cards name the runs, as text
    if page == "runs":
        table = at.dataframe[0]
        status = dict(zip(table.value["id"], table.value["status"]))
        assert status[fid] == "done" and status[eid] == "done"
        assert status["zombie"] == "failed"
        notes = dict(zip(table.value["id"], table.value["note"]))
        for run_id in damaged:
            if status[run_id] != "done":
                assert status[run_id] in ("damaged", "failed") and notes[run_id], run_id
        assert sum(s == "damaged" for s in status.values()) >= len(damaged) - 8


@pytest.mark.parametrize("page", ["trajectory", "compare", "scaling", "runs"])
def test_opening_each_damaged_run_by_url_shows_the_reason(monkeypatch, hostile, page):
    root, fid, eid, damaged = hostile
    ids = [i for i, kind in damaged.items() if page == "runs" or kind == "experiment"]  # only they are offered
    for run_id in [*ids, "zombie", eid, fid]:
        at = run_page(monkeypatch, root, page, run=run_id, runs=run_id)
        assert not at.exception, (run_id, at.exception)
        assert_no_markdown_from_names(at)


def test_the_delete_dialog_and_job_cards_escape_names(monkeypatch, hostile):
    root, _, eid, _ = hostile
    at = run_page(monkeypatch, root, "runs", run=eid)
    at.button(key="runs-delete").click().run()
    assert not at.exception
    assert assert_no_markdown_from_names(at) >= 1  # the dialog names the run, as text


def test_the_quickstart_server_hides_tracebacks():
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert "--client.showErrorDetails none" in (REPO / "scripts" / "start.sh").read_text()


def test_an_unexpected_page_error_is_our_message_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.delenv("KNOW_RAISE_PAGE_ERRORS", raising=False)
    monkeypatch.setenv("KNOW_RUNS_DIR", str(tmp_path))
    (tmp_path / "index.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 200)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page("screens/runs.py")
    at.run()
    assert not at.exception
    assert at.error and all("Traceback" not in e.value for e in at.error)
