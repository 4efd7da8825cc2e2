"""The executor seam: independent units of work run inline, in a local process pool, or on Ray — same results.

A :class:`Unit` is (task kind, validated config, output location); running it leaves a finished artifact
there (a seed's record in an experiment run, a trajectory file of the meta-dataset). Every executor skips units whose
artifact is already there (resume), drops pending units and stops running ones on cancel, retries a unit once when
its worker process crashes and otherwise reports each unit's error. ``ray`` is imported only when that executor is
chosen. Each executor is one module here that registers itself (see :mod:`.base`).
"""

from . import probe  # noqa: F401,E402  (registers the executors' own self-check task kind)
from .base import EXECUTORS, Executor, Outcome, make_executor, raise_first_failure
from .inline import InlineExecutor
from .tasks import TASKS, Unit, run_unit, task

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "Outcome", "TASKS", "Unit", "make_executor",
           "raise_first_failure", "run_unit", "task"]

from know_core.common.registry import discover  # noqa: E402

discover(__name__, __path__)  # each executor module registers itself in EXECUTORS
