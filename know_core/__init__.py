"""KNOW Explorer's engine: data, models, training, structured forgetting, predictors and the run store; and, for
notebooks, ``import know_core as know``: ``know.Film``, ``know.open_run``, ``know.record_forgetting``
(:mod:`know_core.api.library`).

This package never imports streamlit; the dashboard in ``app.py``/``screens/`` reads runs through it.

Every module of the package imports this file first (the CLI, the job worker, ``know_core.common.errors``), while the
library pulls in torch, the predictors and the api (about 4 s on this machine). So the library's names are looked up
here on first use (PEP 562 ``__getattr__``) and its module imported *by name* with ``importlib.import_module``, as an
executor's worker imports a task kind's module: ``import know_core.common.errors`` stays at ~0.06 s, and
``know_core.Film`` costs what importing :mod:`know_core.api` costs, once. (An ``import`` statement inside the function
would be the same thing, but tests/test_structure.py keeps those for optional heavy dependencies.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from know_core.common.version import __version__

if TYPE_CHECKING:  # for type checkers and editors; at run time the names come from __getattr__ below
    from know_core.api.filmparts import Backtest, FilmError, FilmPCA
    from know_core.api.library import Film, KnowError, StateDict, open_run, record_forgetting

LIBRARY = "know_core.api.library"
_LIBRARY_NAMES = ("Backtest", "Film", "FilmError", "FilmPCA", "KnowError", "StateDict", "open_run", "record_forgetting")

__all__ = ["Backtest", "Film", "FilmError", "FilmPCA", "KnowError", "StateDict", "__version__", "open_run",
           "record_forgetting"]


def __getattr__(name: str) -> Any:
    """``know_core.Film`` and the library's other names, importing :mod:`know_core.api.library` on first use."""
    if name in _LIBRARY_NAMES:
        value = getattr(importlib.import_module(LIBRARY), name)
        globals()[name] = value  # later reads find it without coming here again
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LIBRARY_NAMES})
