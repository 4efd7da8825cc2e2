"""The transfer report: how KNOWN, meta-trained on other architectures' films, fares on ViT and MLP films.

``benchmarks/bench_transfer.py`` measures it and writes ``docs/transfer-results.json``; this module reads that file
(checked, so a damaged one is one clear error) and lays it out for ``report --transfer`` and the KNOWN page. The
figures are medians over held-out films (grid ``transfer``), per architecture, per subset (all films / films that
forgot), per method and group:

- ``backtest``: Θ0 hidden and predicted back from the older stages, ‖θ̂0 − θ0‖ / ‖θ1 − θ0‖ (keeping Θ1 = 1.0);
- ``warm``: Θ̂_{−1} against the warm oracle (the film really continued on 1/r× the data), ‖Θ̂_{−1} − Θ_{−1}‖ /
  ‖Θ0 − Θ_{−1}‖ (keeping Θ0 = 1.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from know_core.common.errors import KnowError
from know_core.experiment.methods import BASELINE
from know_core.experiment.methods import label as method_label
from know_core.models import GROUPS

TRANSFER_RESULTS = Path(__file__).resolve().parents[2] / "docs" / "transfer-results.json"
FIGURES = ("backtest", "warm")
LABELS = {BASELINE: "keep Θ", "taskvector": "TaskVector", "expfit": "ExpFit",
          "known_default": "KNOWN (shipped default)", "known_cnn": "KNOWN (CNN films)",
          "known_vit": "KNOWN (CNN + ViT films)"}  # any other method: its registry label (nino_mlp: NiNo WNN+)


def transfer_label(method: str) -> str:
    return LABELS.get(method) or method_label(method)


def load_transfer(path: str | Path | None = None) -> dict[str, Any]:
    """The transfer figures; a missing or malformed file is a :class:`KnowError` that says how to make it."""
    path = Path(path) if path else TRANSFER_RESULTS
    if not path.is_file():
        raise KnowError(f"no transfer results at {path}; measure them with `python benchmarks/bench_transfer.py`")
    try:
        data = json.loads(path.read_text())
        for model, block in data["table"].items():
            for subset in ("all", "forgot"):
                for method, groups in block[subset].items():
                    for group, figs in groups.items():
                        for fig in FIGURES:
                            value = figs[fig]
                            if value is not None and not isinstance(value, (int, float)):
                                raise ValueError(f"{model}.{subset}.{method}.{group}.{fig} is {value!r}")
        data["methods"] = list(data["methods"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KnowError(f"{path} is not a readable transfer report ({str(exc)[:120]})") from None
    return data


def transfer_rows(data: dict[str, Any], subset: str = "all") -> list[dict[str, Any]]:
    """One row per architecture, method and group: the median backtest and warm-oracle errors, for a table."""
    rows = []
    for model, block in data["table"].items():
        for method in data["methods"]:
            by_group = block[subset].get(method, {})
            for group, figs in sorted(by_group.items(), key=lambda kv: GROUPS.index(kv[0]) if kv[0] in GROUPS else 99):
                if all(figs.get(f) is None for f in FIGURES):
                    continue  # no film of this architecture has the group (a ViT has no conv)
                rows.append({"model": model, "films": block["n_runs"] if subset == "all" else block["n_forgot"],
                             "method": transfer_label(method), "group": group,
                             **{f: figs.get(f) for f in FIGURES}})
    return rows


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_transfer(data: dict[str, Any], markdown: bool = False) -> str:
    """The report as plain text or Markdown: per architecture and subset, methods × groups (backtest | warm)."""
    lines = [f"Transfer of KNOWN to other architectures ({data.get('measured', '?')}; {data.get('command', '')})"]
    lines += [f"- {note}" for note in data.get("setup", [])]
    for subset in ("all", "forgot"):
        for model, block in data["table"].items():
            n = block["n_runs"] if subset == "all" else block["n_forgot"]
            rows = [r for r in transfer_rows(data, subset) if r["model"] == model]
            groups = [g for g in GROUPS if any(r["group"] == g for r in rows)]
            title = f"{model}: {n} held-out films" + (" that forgot" if subset == "forgot" else "") + \
                " — median backtest | warm-oracle rel. error (keep Θ = 1.000, lower is better)"
            lines += ["", f"### {title}" if markdown else title]
            if not rows:
                lines.append("(no films)")
                continue
            if markdown:
                lines += ["| method | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
            else:
                lines.append(f"  {'method':<32}" + "".join(f"{g:>20}" for g in groups))
            for method in dict.fromkeys(r["method"] for r in rows):
                cells = [next((f"{_cell(r['backtest'])} | {_cell(r['warm'])}" for r in rows
                               if r["method"] == method and r["group"] == g), "-") for g in groups]
                lines.append(f"| {method} | " + " | ".join(cells) + " |" if markdown else
                             f"  {method:<32}" + "".join(f"{c:>20}" for c in cells))
    for model, acc in data.get("source_acc", {}).items():
        order = ["true Θ0", "keep Θ1", *(m for m in data["methods"] if m != BASELINE)]  # naive is keep Θ1
        listed = ", ".join(f"{transfer_label(m)} {acc[m]:.4f}" for m in order if isinstance(acc.get(m), (int, float)))
        lines += ["", f"{model}: source test accuracy of the recovered Θ̂0, mean over films — {listed}"]
    if data.get("notes"):
        lines += [""] + [f"- {note}" for note in data["notes"]]
    return "\n".join(lines)
