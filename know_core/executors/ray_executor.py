"""The Ray executor: each unit is a Ray Core task (one CPU, one thread), on a cluster or a local Ray instance.

Ray is imported here only, so the rest of the project never needs it. ``address`` is ``auto`` (the cluster this
machine belongs to), ``HOST:PORT`` (checked to answer within :data:`CONNECT_TIMEOUT_S` before Ray is asked) or None:
an already initialised Ray (tests with ``ray.cluster_utils.Cluster``) or else a local instance with ``workers`` CPUs,
shut down again by :meth:`close`. Ray retries a task once when its worker or node dies (``max_retries=1``); a task's
own error is not retried. Workers write their artifacts to the paths in the unit, so the output folder must be
shared by the nodes (one machine, or a shared filesystem).
"""

from __future__ import annotations

import socket
from typing import Any, Callable

import torch

from know_core.common.errors import ConfigError
from know_core.common.registry import Entry, Option

from .base import EXECUTORS, Executor, Listener, Outcome, failure
from .tasks import Unit, portable, request_cancel, run_unit

CONNECT_TIMEOUT_S = 8.0
RETRIES = 1


def _run_remote(data: dict[str, Any]) -> dict[str, Any]:
    """A unit inside a Ray worker: one thread, then :func:`run_unit`."""
    torch.set_num_threads(1)
    return run_unit(Unit(**data))


def check_address(address: str) -> None:
    """Refuse, within :data:`CONNECT_TIMEOUT_S`, a ``HOST:PORT`` where nothing answers."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address must be auto or HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc})") from None


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None, workers: int):
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray executor needs Ray: pip install -r requirements.txt") from None
        self.ray, self.address, self.workers, self._owned = ray, address, workers, False
        if address not in (None, "auto"):
            check_address(address)
        if not ray.is_initialized():
            try:
                if address is None:
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                             configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot connect to Ray at {address or 'a new local instance'} "
                                  f"({str(exc).splitlines()[0][:200]})") from None
            self._owned = True
        self.workers = int(ray.cluster_resources().get("CPU", workers))
        self._remote = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(_run_remote)

    def describe(self) -> str:
        where = "local instance" if self._owned and self.address is None else (self.address or "connected cluster")
        return f"ray ({where}, {self.workers} CPUs)"

    def _run(self, units: list[Unit], notify: Listener, should_stop: Callable[[], bool]) -> list[Outcome]:
        ray = self.ray
        refs = {self._remote.remote(portable(u).to_dict()): u for u in units}
        for u in units:
            notify(u.key, "running", None)  # Ray schedules them; the cluster decides which run at once
        pending, out, cancelled = list(refs), [], False
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in ready:
                    unit = refs[ref]
                    try:
                        outcome = Outcome(unit.key, "done", attempts=1, record=ray.get(ref))
                    except BaseException as exc:  # noqa: BLE001 — the unit's error (or Ray's) is its outcome
                        outcome = failure(unit.key, _cause(exc, ray), 1)
                        if cancelled and outcome.status == "failed" and _is_cancel(exc, ray):
                            outcome = Outcome(unit.key, "cancelled", "cancelled on request", 1)
                    notify(unit.key, outcome.status, outcome)
                    out.append(outcome)
                if not cancelled and should_stop():
                    cancelled = True
                    request_cancel(units)
                    for ref in pending:
                        ray.cancel(ref, force=False)
        except KeyboardInterrupt:
            request_cancel(units)
            for ref in pending:
                ray.cancel(ref, force=False)
            raise
        return out

    def close(self) -> None:
        if self._owned and self.ray.is_initialized():
            self.ray.shutdown()
            self._owned = False


def _cause(exc: BaseException, ray: Any) -> BaseException:
    """The task's own exception inside Ray's wrapper, where there is one."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return exc


def _is_cancel(exc: BaseException, ray: Any) -> bool:
    return isinstance(exc, ray.exceptions.TaskCancelledError)


EXECUTORS.add(Entry("ray", lambda workers, ray_address: RayExecutor(ray_address, workers), order=2,
                    help="Ray Core tasks on a Ray cluster (--ray-address auto|HOST:PORT) or a local Ray instance",
                    options=(Option("ray_address", "str", None, "auto or HOST:PORT: the cluster to join"),)))
