"""AppTest runs the dashboard script in-process: widgets, state and chart specs (not the browser's rendering)."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO


@pytest.fixture
def app(monkeypatch):
    def make(runs_dir):
        monkeypatch.setenv("KNOW_RUNS_DIR", str(runs_dir))
        return AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    return make


def test_empty_store_explains_itself(app, tmp_path):
    at = app(tmp_path)
    assert not at.exception
    assert any("No runs" in i.value for i in at.info)


def test_a_stored_run_shows_its_accuracy_along_the_stages(app, stored_run):
    root, run_id = stored_run
    at = app(root)
    assert not at.exception
    assert at.selectbox[0].value == run_id
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert (len(at.success) + len(at.warning)) == 1  # the forgetting verdict


def test_a_damaged_run_is_reported_not_crashed(app, tmp_path, tiny_cfg):
    from know_core.runs import forget_run
    from know_core.store import RunStore

    run_id = forget_run(tiny_cfg, RunStore(tmp_path))
    (tmp_path / run_id / "trajectory.safetensors").write_bytes(b"xx")
    at = app(tmp_path)
    assert not at.exception
    assert any("damaged" in e.value for e in at.error)
