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


LEGEND_NAME = 24  # characters of a run's name in a legend entry: "method · name" must fit a projector's 1024 px
_MADE_ID = re.compile(r"^\d{8}-\d{6}-[a-z]+-(.+)$")  # DATE-TIME-KIND-TAG-HEX, the id of a run nobody named


def legend_name(info: RunInfo, limit: int = LEGEND_NAME) -> str:
    """The run's name for a legend entry. An unnamed run is called by its id
    (``20261207-131509-forget-user_TensorDataset_user_Tiny-2061f5``), which a legend cut in presentation mode: the
    date, time and kind go (the page says them), and past ``limit`` characters the middle is elided, keeping the
    id's random end so that two runs stay apart (``user_Tensor…r_Tiny-2061f5``)."""
    name = info.name
    made = _MADE_ID.match(name) if name == info.id else None
    name = made.group(1) if made else name
    if len(name) <= limit:
        return name
    head = (limit - 1) // 2
    return f"{name[:head]}…{name[-(limit - 1 - head):]}"


def run_label(info: RunInfo) -> str:
    cfg = info.config
    src = cfg.get("source", cfg)  # an experiment's film settings sit under "source"; a forget run's at the top
    r = src.get("r")
    bits = [cfg.get("preset"), src.get("dataset"), src.get("model"),
            f"r={r:g}" if isinstance(r, float | int) and r else None]
    return f"{info.name} ({', '.join(str(b) for b in bits if b)})"
