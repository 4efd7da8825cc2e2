"""A run's verdict lines (one per method, scale and held-out domain) merged into one line per kind, for the report,
Compare and Runs: fifteen "X ×2 vs naive (…; one seed: no interval …)" lines become one listing the methods."""

from __future__ import annotations

import re
from typing import Iterable

from .fmt import num, scale, signed
from .headline import _and

_VS = re.compile(r"^(?P<prefix>.*?)(?P<method>\S+) ×(?P<scale>\S+) (?P<word>beats|is WORSE than|does not beat|"
                 r"is not distinguishable from|vs) naive \((?P<diff>[+\-−]?[\d.]+)(?P<rest>.*)$")
_RETRO = re.compile(r"^(?P<prefix>.*?)Against the warm oracle, (?P<who>.+) is closer than keeping Θ0 in 0 of "
                    r"(?P<cells>\d+) \(scale, group\) cells; best (?P<best>[\d.]+)")
_KINDS = {"beats": "beat naive", "is WORSE than": "are WORSE than naive", "does not beat": "do not beat naive",
          "is not distinguishable from": "are not distinguishable from naive"}


def collapse_verdicts(verdicts: Iterable[str]) -> list[str]:
    """Repeated verdicts merged into one line per kind (and held-out domain): "X ×2 vs naive (…; one seed: no
    interval …)" ×15 becomes one line listing the methods and scales; "closer than keeping Θ0 in 0 of n cells" for
    several methods becomes one. Every other verdict is kept as it is, in order."""
    out: list[str] = []
    groups: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for line in verdicts:
        m, r = _VS.match(line), _RETRO.match(line)
        if m:
            kind = "one seed" if "one seed" in m["rest"] else m["word"]
            key = (m["prefix"], kind)
            item = (m["method"], m["scale"], m["diff"])
        elif r:
            key, item = (r["prefix"], "retro-none"), (r["who"], r["cells"], r["best"])
        else:
            out.append(line)
            continue
        if key not in groups:
            groups[key] = []
            out.append(key)  # type: ignore[arg-type] — replaced below by the merged line
        groups[key].append(item)
    return [line if isinstance(line, str) else _merged(line, groups[line]) for line in out]


def _merged(key: tuple[str, str], items: list[tuple[str, str, str]]) -> str:
    prefix, kind = key
    if kind == "retro-none":
        who = _and([f"{w} (best {num(float(b))})" for w, _, b in items])
        return f"{prefix}Against the warm oracle, none of {who} is closer than keeping Θ0 in any (scale, group) cell."
    by: dict[str, list[str]] = {}
    for method, k, diff in items:
        by.setdefault(method, []).append(f"{scale(k)} ({signed(float(diff.replace('−', '-')))})")
    listed = "; ".join(f"{m} {', '.join(v)}" for m, v in by.items())
    if kind == "one seed":
        return (f"{prefix}One seed, so no interval: no evidence either way whether these beat naive — {listed}.")
    if kind == "vs":
        return f"{prefix}Compared with naive, without an interval: {listed}."
    verb = _KINDS[kind] if len(items) > 1 else kind + " naive"
    return f"{prefix}{listed} {verb} (95 % CI)."


__all__ = ["collapse_verdicts"]
