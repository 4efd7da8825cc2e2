"""The one surface the dashboard (and, where natural, the CLI) calls: start, watch, cancel, resume, rename, delete and
list runs (:mod:`.control`); launch, watch and read sweeps (:mod:`.sweeps`); read a run as typed objects
(:mod:`.results`); record a forgetting film on your own model and data (:mod:`.record`); compute what a page draws
(:mod:`.views`) and draw it (:mod:`.figures`); list what a run can be made of (:mod:`.catalog`); store a film's
predictions from a background job (:mod:`.predictjobs`). ``screens/`` imports
nothing else from know_core (``tests/test_facade.py`` enforces it). The notebook library (``import know_core as
know``, :mod:`.library`) is built on the same parts."""

from know_core.common.errors import ConfigError, KnowError, RunStoreError
from know_core.common.registry import Entry, Registry
from know_core.experiment.methods import BASELINE, missing_checkpoints
from know_core.store.runstore import DEFAULT_RUNS_DIR

from .catalog import *  # noqa: F401,F403 — the façade re-exports its parts
from .catalog import __all__ as _catalog
from .control import *  # noqa: F401,F403
from .control import __all__ as _control
from .cost import *  # noqa: F401,F403
from .cost import __all__ as _cost
from .figures import *  # noqa: F401,F403
from .figures import __all__ as _figures
from .headline import *  # noqa: F401,F403
from .headline import __all__ as _headline
from .imports import *  # noqa: F401,F403
from .imports import __all__ as _imports
from .predictjobs import *  # noqa: F401,F403
from .predictjobs import __all__ as _predictjobs
from .record import *  # noqa: F401,F403
from .record import __all__ as _record
from .results import *  # noqa: F401,F403
from .results import __all__ as _results
from .sweeps import *  # noqa: F401,F403
from .sweeps import __all__ as _sweeps
from .verdicts import *  # noqa: F401,F403
from .verdicts import __all__ as _verdicts
from .views import *  # noqa: F401,F403
from .views import __all__ as _views

__all__ = [
    "BASELINE",
    "ConfigError",
    "DEFAULT_RUNS_DIR",
    "Entry",
    "KnowError",
    "Registry",
    "RunStoreError",
    "missing_checkpoints",
    *_catalog,
    *_control,
    *_cost,
    *_figures,
    *_headline,
    *_record,
    *_imports,
    *_predictjobs,
    *_results,
    *_sweeps,
    *_verdicts,
    *_views,
]
