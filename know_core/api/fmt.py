"""How a number is written wherever a person reads it (pages, headlines, reports): one helper per kind of number.

Every page, table and headline formats through these, so the same figure reads the same everywhere: three
significant digits, a scale as ``×k``, ``—`` for a missing value, and no ``± std`` where only one seed exists.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import pandas as pd

MISSING = "—"

# Raw column names → what a person reads. Pages pass their tables through :func:`labelled`.
LABELS: dict[str, str] = {
    "source_acc": "source accuracy", "target_acc": "target accuracy", "acc": "accuracy", "loss": "loss",
    "test_acc": "test accuracy", "test_loss": "test loss", "removed_acc": "removed-sample accuracy",
    "rel_error": "rel. error", "warm_mean": "warm-oracle error", "vs_naive": "vs naive", "vs_shrink": "vs shrinkage",
    "scale": "scale", "k": "steps k", "n_seeds": "seeds", "seeds": "seeds", "created": "created", "status": "status",
    "kind": "kind", "name": "name", "method": "method", "group": "group", "stage": "stage", "size": "|D|",
    "p_value": "p", "strength": "strength", "smoothness": "smoothness", "cosine": "cosine", "std": "± std",
    "mean": "mean",
}


def missing(x: Any) -> bool:
    """None, NaN, pandas' NA: nothing to show."""
    if x is None:
        return True
    try:
        return bool(x != x) or (isinstance(x, float) and math.isnan(x))  # NaN is the only value unequal to itself
    except (TypeError, ValueError):
        return False


def num(x: Any, sig: int = 3) -> str:
    """``x`` to ``sig`` significant digits without trailing zeros (0.8172 → ``0.817``, 0.005587 → ``0.00559``,
    0.840 → ``0.84``, 1.2e-86 → ``1.2e-86``); whole numbers as they are; ``—`` when missing."""
    if missing(x):
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 1e6:
        digits = max(sig - 1 - math.floor(math.log10(abs(v))), 0)
        text = f"{round(v, digits):.{digits}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text  # 0.840 → 0.84, 0.500 → 0.5, as %g does
    else:
        text = f"{v:.{max(sig - 1, 0)}e}"
        mantissa, exp = text.split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        text = f"{mantissa}e{int(exp)}"
    return text.replace("-", "−") if text.startswith("-") else text


def signed(x: Any, sig: int = 3) -> str:
    """A difference: always with its sign (``+0.0071``, ``−0.011``)."""
    text = num(x, sig)
    return text if text == MISSING or text.startswith(("−", "-")) or text == "0" else "+" + text


def scale(k: Any) -> str:
    """A scaling factor as ``×k``: 2, 2.0, ``"2"`` and ``"×2"`` all read ``×2``; ``—`` when missing."""
    if missing(k):
        return MISSING
    text = str(k).lstrip("×x").strip()
    try:
        v = float(text)
    except ValueError:
        return str(k)
    return f"×{v:g}"


def pvalue(p: Any) -> str:
    """``p = 1e-86``, ``p = 0.0031``, ``p < 1e-300`` (a p-value that underflowed)."""
    if missing(p):
        return f"p = {MISSING}"
    v = float(p)
    if v <= 0:
        return "p < 1e-300"
    if v < 1e-3:
        mantissa, exp = f"{v:.0e}".split("e")  # one significant digit: 3e-05 → 3e-5, 1e-86 stays
        return f"p = {mantissa}e{int(exp)}"
    return f"p = {num(v, 2)}"


def mean_std(mean: Any, std: Any = None, n: int | None = None, sig: int = 3) -> str:
    """``0.817 ± 0.012`` over several seeds; just ``0.817`` for one seed (a std of one value means nothing)."""
    if missing(mean):
        return MISSING
    if n is not None and n <= 1 or missing(std):
        return num(mean, sig)
    return f"{num(mean, sig)} ± {num(std, 2)}"


def interval(lo: Any, hi: Any, sig: int = 2) -> str:
    """A 95 % interval of a difference: ``[+0.005, +0.0092]``; ``—`` when either end is missing."""
    if missing(lo) or missing(hi):
        return MISSING
    return f"[{signed(lo, sig)}, {signed(hi, sig)}]"


def setting(x: Any) -> str:
    """A configured value as it was set, not a measurement: ``0.001``, ``1024``, ``1e-5``, ``raw, range`` (no
    padding to significant digits; lists joined)."""
    if isinstance(x, (list, tuple)):
        return ", ".join(setting(v) for v in x)
    if missing(x) or isinstance(x, (bool, int, str)):
        return num(x) if not isinstance(x, str) else x
    text = f"{float(x):.6g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text.replace("-", "−", 1) if text.startswith("-") else text


_SUB = str.maketrans("0123456789+-−=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")


def subscript(x: Any) -> str:
    """``x`` as Unicode subscript (4 → ``₄``, −1 → ``₋₁``, "s-1" → ``ₛ₋₁``), so ``"Θ" + subscript(S - 1)`` reads Θ₄
    in plain text, where Markdown and chart labels would show ``Θ_{S−1}`` raw."""
    return str(x).replace(" ", "").translate(_SUB)


def label(column: str) -> str:
    """What a person reads for a raw column name."""
    return LABELS.get(column, column.replace("_", " "))


def _whole(column: Any) -> bool:
    """A float column holding only whole numbers and gaps (stages, seeds, counts), not a measurement."""
    values = [v for v in column if not missing(v)]
    return column.dtype.kind == "f" and column.isna().any() and bool(values) and all(float(v).is_integer()
                                                                                     for v in values)


def labelled(rows: Iterable[Mapping[str, Any]] | Any, *, sig: int = 3, scale_columns: Iterable[str] = ("scale",),
             keep: Iterable[str] = ()) -> Any:
    """A table (a DataFrame or rows of dicts) ready to show: numbers through :func:`num`, scale columns as ``×k``,
    missing values as ``—`` and column names through :func:`label`. Columns in ``keep`` are left as they are."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    scales, kept = set(scale_columns), set(keep)
    for col in frame.columns:
        if col in kept:
            continue
        fn = scale if col in scales else (lambda v: num(v, sig))
        if _whole(frame[col]):  # counts with a gap (pandas makes them float): 4, not 4.00
            fn = lambda v: MISSING if missing(v) else str(int(v))  # noqa: E731
        frame[col] = [fn(v) if not isinstance(v, str) or col in scales else v for v in frame[col]]
    return frame.rename(columns={c: label(c) for c in frame.columns if c not in kept})


__all__ = ["LABELS", "MISSING", "interval", "label", "labelled", "mean_std", "missing", "num", "pvalue", "scale",
           "setting", "signed", "subscript"]
