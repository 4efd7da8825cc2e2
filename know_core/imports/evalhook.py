"""``import --eval module:function``: the user's own loss and accuracy for every snapshot of an imported film.

The function takes a state dict (the snapshot's tensors, key names as in the source files) and returns
``{"loss": float, "acc": float}`` (acc a fraction in [0, 1]). It runs in a child process
(``python -m know_core.imports.evalhook``), never in the caller's: the snapshots reach it as safetensors files in a
private temporary folder, its answers come back as one JSON line each, and every snapshot has ``timeout`` seconds.
A function that cannot be imported, raises, runs past its time or returns anything else stops the import with one
line naming the problem (:class:`~know_core.imports.checkpoints.ImportFailed`); the child is killed, the folder removed.
Whatever the function prints goes to stderr, so it cannot be mistaken for an answer. The module is imported in the
child as ``python -m`` does: from the current folder or from what is installed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from know_core.common.hooks import Hooks
from know_core.imports.checkpoints import ImportFailed

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
STARTUP_S = 120.0  # importing torch and the user's module, before the first snapshot's clock starts
READY = "ready"
MAX_LINE = 1 << 16


def check_spec(spec: str) -> str:
    """``pkg.mod:function`` or a one-line refusal."""
    if not isinstance(spec, str) or not SPEC.match(spec.strip()):
        raise ImportFailed(f"--eval {spec!r}: expected module:function, e.g. mypkg.evaluate:score")
    return spec.strip()


def check_result(value: Any, spec: str, stage: int) -> dict[str, float]:
    """``{"loss": finite float, "acc": fraction in [0, 1]}`` from what the hook returned, or a one-line refusal."""
    where = f"--eval {spec} on Θ{stage}"
    if not isinstance(value, dict) or set(value) - {"loss", "acc"} or not {"loss", "acc"} <= set(value):
        shown = repr(value)[:80]
        raise ImportFailed(f"{where} returned {shown}; expected a dict {{'loss': float, 'acc': float}}")
    out = {}
    for key in ("loss", "acc"):
        v = value[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ImportFailed(f"{where} returned {key}={v!r}; expected a finite number")
        out[key] = float(v)
    if not 0.0 <= out["acc"] <= 1.0:
        raise ImportFailed(f"{where} returned acc={out['acc']!r}; expected a fraction in [0, 1]")
    return out


def _read_line(proc: subprocess.Popen, buffer: bytearray, deadline: float) -> str | None:
    """One line from the child's stdout before ``deadline``; None when time ran out; '' when the child closed it."""
    fd = proc.stdout.fileno()
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return ""
        buffer.extend(chunk)
        if len(buffer) > MAX_LINE and b"\n" not in buffer:
            return "x" * MAX_LINE  # a runaway line: garbage
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode("utf-8", "replace")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def evaluate_film(states: list[dict[str, torch.Tensor]], spec: str, timeout: float = 60.0,
                  hooks: Hooks | None = None) -> list[dict[str, float]]:
    """``[{"loss", "acc"}, …]`` for Θ0 … Θ_{S−1} from the hook ``spec``, each snapshot within ``timeout`` seconds."""
    hooks = hooks or Hooks()
    spec = check_spec(spec)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 86400:
        raise ImportFailed(f"--eval-timeout {timeout!r}: give seconds per snapshot, above 0 and at most a day")
    folder = Path(tempfile.mkdtemp(prefix="know-eval-"))
    proc = None
    try:
        for i, state in enumerate(states):
            hooks.check()
            save_file({k: v.contiguous() for k, v in state.items()}, str(folder / f"{i}.safetensors"))
        proc = subprocess.Popen([sys.executable, "-m", __name__, spec, str(folder), str(len(states))],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)  # in this folder: the hook's module is found from here
        buffer = bytearray()
        line = _read_line(proc, buffer, time.monotonic() + STARTUP_S + timeout)
        if line != READY:
            _stop(proc)
            raise ImportFailed(f"--eval {spec}: {_child_error(line, proc, 'did not start')}")
        out = []
        for i in range(len(states)):
            hooks.check()
            hooks.report("evaluate snapshots", i, len(states))
            line = _read_line(proc, buffer, time.monotonic() + timeout)
            if line is None:
                _stop(proc)
                raise ImportFailed(f"--eval {spec} on Θ{i} ran past its time limit of {timeout:g} s "
                                   "(--eval-timeout)")
            try:
                answer = json.loads(line) if line else None
            except ValueError:
                answer = None
            if not isinstance(answer, dict) or ("error" not in answer and "value" not in answer):
                _stop(proc)
                raise ImportFailed(f"--eval {spec} on Θ{i}: {_child_error(line, proc, 'stopped without an answer')}")
            if "error" in answer:
                _stop(proc)
                raise ImportFailed(f"--eval {spec} raised on Θ{i}: {str(answer['error'])[:200]}")
            out.append(check_result(answer["value"], spec, i))
        hooks.report("evaluate snapshots", len(states), len(states))
        return out
    finally:
        if proc is not None:
            _stop(proc)
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()
        shutil.rmtree(folder, ignore_errors=True)


def _child_error(line: str | None, proc: subprocess.Popen, fallback: str) -> str:
    """The child's own one-line reason where it gave one, else the last line of its stderr, else ``fallback``."""
    if line:
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and "error" in answer:
            return str(answer["error"])[:200]
    _stop(proc)
    tail = [t for t in proc.stderr.read(1 << 16).decode("utf-8", "replace").splitlines() if t.strip()]
    return tail[-1][:200] if tail else fallback


def _child(spec: str, folder: str, count: int) -> int:
    """The child's side: import the hook, say ``ready``, then one JSON line per snapshot (``{"value": …}`` or
    ``{"error": "…"}``). The user's prints go to stderr; stdout carries only these lines."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    module_name, _, fn_name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), fn_name)
        if not callable(fn):
            raise TypeError(f"{spec} is not a function")
    except Exception as exc:  # noqa: BLE001 — the user's module: any failure is its one-line reason
        out.write(json.dumps({"error": f"cannot load {spec}: {type(exc).__name__}: {exc}"}) + "\n")
        return 2
    out.write(READY + "\n")
    for i in range(count):
        state = load_file(str(Path(folder) / f"{i}.safetensors"))
        try:
            value = fn(state)
            value = {k: (v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v) for k, v in value.items()} \
                if isinstance(value, dict) else value
            line = json.dumps({"value": value}, allow_nan=True, default=repr)
        except Exception as exc:  # noqa: BLE001 — the user's function: its error is the refusal's reason
            line = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        out.write(line.replace("\n", " ") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2], int(sys.argv[3])))
