"""Where the pages live: a registry of the dashboard's pages, filled from the files of this folder.

Every module here whose name does not start with ``_`` is a page and declares, as a module-level literal,
``PAGE = {"title": ..., "icon": ..., "order": ...}``. The literal is read from the file's syntax tree, without running
the page, and becomes an :class:`~know_core.common.registry.Entry` (``order`` sorts the sidebar; the first page is the
default one); ``app.py`` builds ``st.navigation`` from the entries. A new page is one new file here.

The folder is not called ``pages/``: beside the main script, that name switches Streamlit into its legacy multipage
mode, where a first visitor's deep link runs a page alone, without ``app.py``'s router.
"""

from __future__ import annotations

import ast
from pathlib import Path

import streamlit as st

from know_core.api import ConfigError, Entry, Registry

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KEYS = {"title": str, "icon": str, "order": int}


def page_meta(path: Path) -> dict:
    """The ``PAGE`` literal of a page file, checked; a missing or malformed one is refused naming the file."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["PAGE"]:
            try:
                meta = ast.literal_eval(node.value)
            except ValueError:
                break
            if not isinstance(meta, dict) or set(meta) != set(KEYS) or any(
                    not isinstance(meta[k], kind) or isinstance(meta[k], bool) for k, kind in KEYS.items()):
                break
            return meta
    raise ConfigError(f"page {path.name} must declare PAGE = {{'title': str, 'icon': str, 'order': int}} as a "
                      "literal at module level")


def _entry(path: Path) -> Entry:
    meta, rel = page_meta(path), f"{HERE.name}/{path.name}"
    return Entry(path.stem, lambda default=False: st.Page(rel, title=meta["title"], icon=meta["icon"],
                                                          default=default),
                 label=meta["title"], order=meta["order"], extra={"icon": meta["icon"], "path": rel})


SCREENS = Registry("page", ConfigError)
for _path in sorted(HERE.glob("[!_]*.py")):
    SCREENS.add(_entry(_path))
PAGES = {e.name: e.trait("path") for e in SCREENS.entries()}  # page name -> the path st.switch_page takes


def navigation() -> list:
    """The ``st.Page`` of every registered page in sidebar order, the first one the default."""
    return [e.factory(default=i == 0) for i, e in enumerate(SCREENS.entries())]
