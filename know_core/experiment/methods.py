"""Every method name a results row can carry, and how to show it: one place to look up a label and a colour.

Predictors carry theirs in their registry entry (:mod:`know_core.predictors`). The rows that are not a predictor's —
the cold and warm oracles, training from scratch, the control film, the forgetting film itself — and
``known-official`` (KNOWN with the official Keras weights of ``ExperimentConfig.official_known``) have the small table
:data:`ROWS`. Names also come in variants: ``shrink:<m>`` (the norm-matched shrinkage control of ``<m>``) and
``<m>+dc`` (``<m>`` on the drift-corrected film); :func:`style` looks those up by their base name.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from know_core.predictors import (
    Predictor,
    available_predictors,
    get_predictor,
    predictor_entries,
    predictor_entry,
    predictor_trait,
)

OFFICIAL = "known-official"
SHRINK_PREFIX = "shrink:"
DC_SUFFIX = "+dc"
BASELINE = "naive"  # Θ0 itself: the ×1 row every other method is compared against


@dataclass(frozen=True)
class Style:
    label: str
    colour: str
    short: str | None = None  # the label without its explanation, for an axis category ("control film ×4")


ROWS = {
    OFFICIAL: Style("KNOWN (official weights)", "#d62728"),
    "oracle": Style("oracle (really trained on more data)", "#9467bd", "oracle"),
    "oracle-warm": Style("warm oracle (the film continued on more data)", "#4b0082", "warm oracle"),
    "scratch": Style("trained from scratch", "#8c564b", "from scratch"),
    "control": Style("control film (trained further on D0)", "#bcbd22", "control film"),
    "trajectory": Style("forgetting film", "#17becf"),
}
_SPARE_COLOURS = ("#e377c2", "#17a589", "#a04000", "#5b2c6f", "#1a5276", "#b7950b", "#641e16", "#0e6655")


def base_name(method: str) -> str:
    """``shrink:expfit+dc`` → ``expfit``: the predictor or row a variant belongs to."""
    return method.removeprefix(SHRINK_PREFIX).removesuffix(DC_SUFFIX)


def style(method: str) -> Style:
    """Label and colour of any method name; a name nobody registered still gets a stable colour (never a KeyError)."""
    base = base_name(method)
    if base in ROWS:
        found = ROWS[base]
    elif base in available_predictors():
        entry = predictor_entry(base)
        found = Style(entry.title, entry.colour or _spare_colour(base))
    else:
        found = Style(base, _spare_colour(base))

    def variant(text: str) -> str:
        text += " + drift correction" if method.endswith(DC_SUFFIX) else ""
        return f"shrinkage control of {text}" if method.startswith(SHRINK_PREFIX) else text

    return Style(variant(found.label), found.colour, variant(found.short or found.label))


def colour(method: str) -> str:
    return style(method).colour


def label(method: str) -> str:
    return style(method).label


def short_label(method: str) -> str:
    """The label without the explanation a legend or table gives (``control`` → "control film"), for an axis
    category beside a scale; the label itself where it has none."""
    return style(method).short


def _spare_colour(name: str) -> str:
    return _SPARE_COLOURS[zlib.crc32(name.encode()) % len(_SPARE_COLOURS)]


def predicted_methods() -> list[str]:
    """The methods that predict Θ̂_{−k} (every registered predictor but the baseline, then ``known-official``)."""
    return [m for m in available_predictors() if m != BASELINE] + [OFFICIAL]


def method_order(method: str) -> tuple[int, str]:
    """Sort key: predictors in registry order, then ``known-official``, the control, anything else by name."""
    order = [*predicted_methods(), "control"]
    base = method.removesuffix(DC_SUFFIX)
    return (order.index(base) if base in order else len(order), method)


def min_stages(method: str) -> int:
    """Stages of the forgetting film a method's predictor needs (KNOWN: its 5-stage window)."""
    base = base_name(method)
    return predictor_entry(official_predictor() if base == OFFICIAL else base).min_stages


def official_predictor() -> str:
    """The predictor behind ``known-official`` (with ``weights=official_known``): the one whose entry says so."""
    return next(e.name for e in predictor_entries() if e.trait("official_weights"))


def missing_checkpoints(methods) -> list[str]:
    """The chosen predictors whose default checkpoint file is not there yet (their rows will be invalid)."""
    return [m for m in methods if predictor_trait(m, "checkpoint") is not None
            and not predictor_trait(m, "checkpoint")().is_file()]


def make_predictor(method: str, official_known: str | None = None) -> Predictor:
    """The predictor behind a method name (without variant suffix); ``known-official`` reads ``official_known``."""
    if method == OFFICIAL:
        return get_predictor(official_predictor(), weights=official_known)
    return get_predictor(method)
