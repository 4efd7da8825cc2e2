"""The executors' self-check task kind ``probe`` (tests and the Ray overhead benchmark use it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from know_core.common.errors import KnowError
from know_core.common.fsio import write_json
from know_core.common.hooks import Hooks
from know_core.executors.tasks import task


def _probe_done(payload: dict, out: str) -> bool:
    return (Path(out) / f"probe-{payload['name']}.json").is_file()


@task("probe", done=_probe_done)
def probe(payload: dict, out: str, hooks: Hooks) -> dict:
    """The executors' self-check (tests, the Ray overhead benchmark): wait ``sleep`` seconds in 50 ms steps (honouring
    cancel), crash the worker process on the first attempt when ``crash_once`` names a marker file that does not
    exist yet (every attempt with ``crash``), raise ``fail``, else write ``out/probe-NAME.json`` with ``value`` and
    this process's id."""
    deadline = time.monotonic() + float(payload.get("sleep", 0.0))
    while time.monotonic() < deadline:
        hooks.check()
        time.sleep(0.05)
    marker = payload.get("crash_once")
    if payload.get("crash") or (marker and not Path(marker).exists()):
        if marker:
            Path(marker).touch()
        os._exit(3)  # a dying worker, as the OOM killer would leave it
    if payload.get("fail"):
        raise KnowError(str(payload["fail"]))
    record = {"name": payload["name"], "value": payload.get("value"), "pid": os.getpid()}
    write_json(Path(out) / f"probe-{payload['name']}.json", record)
    return record
