"""Run one dashboard page by itself in AppTest (no router), and read what it drew: chart specs, texts, element order."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO
from streamlit.testing.v1 import AppTest


def page(monkeypatch, root: Path, name: str, **params) -> AppTest:
    """``screens/<name>.py`` run on the runs in ``root`` with ``params`` in the URL."""
    monkeypatch.setenv("KNOW_RUNS_DIR", str(root))
    at = AppTest.from_file(str(REPO / "screens" / f"{name}.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart(at: AppTest, title: str) -> dict:
    """The one chart whose title contains ``title``."""
    (spec,) = [s for s in charts(at) if title in s["layout"].get("title", {}).get("text", "")]
    return spec


def texts(at: AppTest) -> list[str]:
    """Every piece of prose on the page: Markdown, captions, notes, metric help, chart titles and legend names."""
    out = []
    for kind in ("markdown", "caption", "info", "success", "warning", "error", "subheader", "title"):
        out += [str(el.value) for el in at.get(kind)]
    out += [el.proto.help for el in at.get("metric")]
    for spec in charts(at):
        out.append(spec["layout"].get("title", {}).get("text", ""))
        out += [t.get("name") or "" for t in spec["data"]]
    return out


def order(at: AppTest) -> list[tuple[str, str]]:
    """(element type, its label or text) for every element of the main area, in the order a reader meets them."""
    out: list[tuple[str, str]] = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        kind = getattr(node, "type", "")
        text = ""
        for attr in ("label", "value"):
            try:
                value = getattr(node, attr, None)
            except Exception:  # noqa: BLE001 — some elements compute their value and have none to give here
                value = None
            if isinstance(value, str) and value:
                text = value
                break
        out.append((kind, text))
        if children:
            for key in sorted(children):
                walk(children[key])

    walk(at.main)
    return out
