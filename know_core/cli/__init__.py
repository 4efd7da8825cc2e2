"""The command line: ``python -m know_core COMMAND``, or ``know COMMAND`` once the package is installed. User
mistakes print one line and exit with status 2.

Each command is a small function over the engine; progress goes to a tqdm bar on stderr, Ctrl-C cancels cleanly
(the run is marked cancelled, nothing half-written remains).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Callable

from tqdm import tqdm

from know_core.common.errors import Cancelled, KnowError
from know_core.common.fsio import write_failure
from know_core.common.registry import Entry, Registry, discover
from know_core.common.threads import apply_threads
from know_core.engine.train import Hooks, ProgressEvent
from know_core.executors import EXECUTORS, make_executor
from know_core.store.runstore import DEFAULT_RUNS_DIR

COMMANDS = Registry("command", KnowError)  # filled by this package's modules on import (discover, in build_parser)


def command(name: str, help_text: str, order: int = 100, threaded: bool = False) -> Callable[[Callable], Callable]:
    """Register ``fn(parser)``, which adds the arguments of command ``name`` to its parser and sets its ``func``.
    ``threaded``: it trains or predicts in this process, so the free cores are claimed before it runs."""

    def wrap(fn: Callable[[argparse.ArgumentParser], None]) -> Callable:
        COMMANDS.add(Entry(name, fn, name, help_text, order=order, extra={"threaded": threaded}))
        return fn

    return wrap


class TqdmHooks(Hooks):
    """Hooks that draw one tqdm bar per phase on stderr; where stderr is not a terminal (a log file, a pipe), one
    line per phase instead of bars."""

    def __init__(self, quiet: bool = False):
        super().__init__(progress=None if quiet else self._on_progress)
        self._bar = None
        self._phase = None
        self._lines = not sys.stderr.isatty()

    def _on_progress(self, event: ProgressEvent) -> None:
        if self._lines:
            if event.phase != self._phase:
                self._phase = event.phase
                print(f"{event.phase}" + (f" ({event.total} steps)" if event.total else ""), file=sys.stderr,
                      flush=True)
            return
        if event.phase != self._phase:
            self.close()
            self._phase = event.phase
            self._bar = tqdm(total=event.total or None, desc=event.phase, unit="step", file=sys.stderr,
                             leave=True, dynamic_ncols=True)
        if event.metrics:
            self._bar.set_postfix({k: round(v, 4) if isinstance(v, float) else v for k, v in event.metrics.items()},
                                  refresh=False)
        self._bar.update(event.done - self._bar.n)  # tqdm throttles the redraws itself

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def runs_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", default=os.environ.get("KNOW_RUNS_DIR", DEFAULT_RUNS_DIR),
                        help="runs directory (default ./runs or $KNOW_RUNS_DIR)")


def executor_args(parser: argparse.ArgumentParser, default: str = "local", workers: int | None = None) -> None:
    """``--executor``, ``--workers`` and ``--ray-address``: where units of work run (see know_core.executors)."""
    parser.add_argument("--executor", default=default, choices=EXECUTORS.names(),
                        help="; ".join(f"{k}: {v}" for k, v in EXECUTORS.helps().items()) + f" (default {default})")
    parser.add_argument("--workers", type=int, default=workers,
                        help=f"worker processes / Ray CPUs (default {workers or 'the cores'})")
    parser.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                        help="with --executor ray: the cluster to join (default: a local Ray instance)")


def make_executor_from(args: argparse.Namespace, hooks: Hooks | None = None):
    """The executor ``args`` ask for; one that runs in this process (``inline``: its ``in_process`` trait) keeps
    ``hooks`` (progress bars, Ctrl-C) and lets the first error through as it is."""
    in_process = EXECUTORS.get(args.executor).trait("in_process")
    if in_process is not None:
        return in_process(hooks)
    return make_executor(args.executor, args.workers, args.ray_address)


def build_parser() -> argparse.ArgumentParser:
    discover(__name__, __path__)  # each module of this package registers its commands with @command: one file each
    prog = "know" if os.path.basename(sys.argv[0]) == "know" else "python -m know_core"  # as the user typed it
    parser = argparse.ArgumentParser(prog=prog,
                                     description="KNOW Explorer: structured forgetting and weight retrodiction.")
    sub = parser.add_subparsers(dest="command", required=True)
    for entry in COMMANDS.entries():
        entry.factory(sub.add_parser(entry.name, help=entry.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if COMMANDS.get(args.command).trait("threaded"):
        try:
            apply_threads()  # the cores free now (KNOW_THREADS or OMP_NUM_THREADS fix it): know_core.common.threads
        except KnowError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit a write fails with EFBIG instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return args.func(args)
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("cancelled (Ctrl-C); the run is marked cancelled and nothing half-written was kept", file=sys.stderr)
        return 130
    except KnowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "error: not enough memory for this request; use fewer steps, a smaller model or a smaller dataset",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        failed = write_failure(exc, getattr(exc, "filename", None) or "a file")
        if failed is None:
            raise
        print(f"error: {failed}", file=sys.stderr)
        return 2
