"""Routing without Streamlit internals: the pages live in ``screens/`` (not ``pages/``, which would start Streamlit's
legacy multipage mode), so a deep link on a fresh server is routed by ``st.navigation`` in app.py, not run alone;
the sidebar is built from each page file's ``PAGE`` entry (screens/_routing.py)."""

import sys

import pytest
from conftest import REPO
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

SIDEBAR = "KNOW Explorer — structured forgetting"  # written by app.py only


def test_no_pages_folder_beside_app_so_streamlit_never_enters_its_legacy_mode():
    assert not (REPO / "pages").exists(), "a pages/ folder beside app.py starts Streamlit's legacy multipage mode"


def test_every_page_file_is_in_the_navigation_and_a_bad_entry_is_refused(tmp_path):
    from know_core.api import ConfigError
    from screens._routing import PAGES, SCREENS, page_meta

    assert sorted(PAGES) == sorted(p.stem for p in (REPO / "screens").glob("[!_]*.py"))
    assert SCREENS.names()[0] == "experiments"  # the default page comes first
    assert [SCREENS.get(n).title for n in ("known", "runs")] == ["KNOWN", "Runs"]
    bad = tmp_path / "broken.py"
    bad.write_text('PAGE = {"title": "Broken", "order": 1}\n')
    with pytest.raises(ConfigError, match="page broken.py must declare PAGE"):
        page_meta(bad)


def test_a_deep_link_on_a_fresh_server_opens_through_st_navigation(monkeypatch, tmp_path):
    monkeypatch.setenv("KNOW_RUNS_DIR", str(tmp_path))
    monkeypatch.delitem(sys.modules, "screens._common", raising=False)  # a fresh server has imported no page yet
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page("screens/scaling.py")  # the first run of a fresh server (AppTest resets the flag) is a deep link
    at.run()
    assert not at.exception
    assert PagesManager.uses_pages_directory is False  # st.navigation took over
    assert any(SIDEBAR in c.value for c in at.sidebar.caption)  # app.py ran: its router, sidebar and error guard
    assert at.title[0].value == "Scaling"
