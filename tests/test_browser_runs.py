"""The Runs page's delete dialog in a real browser (its button reruns only the dialog, which AppTest cannot do): a
confirmation that survives the full rerun the deletion triggers."""

import shutil

import pytest
from browser import CHROMIUM, browser_page, streamlit_server, wait_for_app
from conftest import tiny_config

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="Debian chromium not installed (scripts/setup.sh installs it as root)")


def test_delete_is_confirmed_after_the_rerun(tmp_path):
    from playwright.sync_api import expect

    from know_core.jobs.lifecycle import record_forgetting
    from know_core.store.runstore import RunStore

    keep = record_forgetting(tiny_config(), RunStore(tmp_path), name="kept")
    doomed = record_forgetting(tiny_config(seed=1), RunStore(tmp_path), name="doomed")
    with streamlit_server(tmp_path) as url, browser_page() as page:
        page.goto(f"{url}/runs?run={doomed}")
        wait_for_app(page)
        page.get_by_role("button", name="Delete…").click()
        page.get_by_role("button", name="Delete for good").click()
        expect(page.get_by_text(f"Deleted doomed ({doomed}) and its files.")).to_be_visible(timeout=20_000)
    assert [r.id for r in RunStore(tmp_path).list_runs()] == [keep]
