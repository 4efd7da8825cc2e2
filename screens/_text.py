"""How names, messages and runs are written on a page: Markdown-safe, one label per run."""

from __future__ import annotations

import re
from typing import Any

from know_core.api import RunInfo

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md(text: Any) -> str:
    """``text`` escaped for Streamlit Markdown: a run name like ``![x](http://…)`` shows as those characters and
    never becomes an image, a link or a colour directive. Use it for every name or message inside Markdown."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def run_label(info: RunInfo) -> str:
    cfg = info.config
    src = cfg.get("source", cfg)  # an experiment's film settings sit under "source"; a forget run's at the top
    r = src.get("r")
    bits = [cfg.get("preset"), src.get("dataset"), src.get("model"),
            f"r={r:g}" if isinstance(r, float | int) and r else None]
    return f"{info.name} ({', '.join(str(b) for b in bits if b)})"
