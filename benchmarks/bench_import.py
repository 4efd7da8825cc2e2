"""A 124 M-parameter film imported, predicted with KNOWN and exported, one tensor at a time (issue 19 point 5).

Builds a 7-checkpoint film of a GPT-2-small-shaped network (``GPT2Config(n_layer=12, n_embd=768, n_head=12,
vocab_size=50257)``, random init, one SGD step on random tokens between ``save_pretrained`` calls; no download) in a
temporary folder under /tmp (about 9 GB with the run; removed at the end), syncs it to disk (outside any timing: the
import's own writes are disk-bound, ~0.45 GB/s here, and would otherwise queue behind the film's), then runs, each
phase in its own child process so that each peak RSS (VmHWM) is its own (``predict_threads``: the threads the predict
command chose from the free cores):

- ``import``: ``python -m know_core import FOLDER --kind training``;
- ``predict``: ``predict --method known --steps 3`` (×2, ×4, ×8 at r = 0.5) with the default KNOWN checkpoint;
- ``export``: ``export --scale ×8 --format hf``, loaded back with ``from_pretrained`` (outside the timing);
- ``fast``: ``bench_known``'s measure, KNOWN's fast path (``predict`` of the same predictor, 3 rolled steps) on random
  windows of the same number of weights per group as the film predicts, in chunks of 8 M rows, timing only the
  predictions.

Goals (2 cores): import + predict + export within 1.5× the fast path's time; every phase's peak RSS within 2.5× one
checkpoint's size. Ends with one JSON line, kept in ``benchmarks/results/bench_import.json``.

    python benchmarks/bench_import.py [--stages 7] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit

from know_core.store.runstore import RunStore

REPO = Path(__file__).resolve().parents[1]
CHUNK = 8_000_000


def vm_hwm_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return 0.0


def phase_build(work: Path, stages: int) -> dict:
    import torch  # the phases import their libraries themselves, so the parent stays small
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    film = work / "film"
    for i in range(stages):
        if i:
            tokens = torch.randint(0, 50257, (2, 32))
            loss = model(input_ids=tokens, labels=tokens).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.save_pretrained(film / f"checkpoint-{i + 1}")
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "checkpoint_bytes": (film / "checkpoint-1" / "model.safetensors").stat().st_size}


def phase_cli(argv: list[str]) -> dict:
    import torch

    from know_core.cli import main

    code = main(argv)
    if code:
        raise SystemExit(code)
    return {"threads": torch.get_num_threads()}  # what the command chose from the free cores


def phase_fast(groups_json: str) -> dict:
    import torch
    from bench_known import random_windows

    from know_core.predictors import get_predictor

    sizes = json.loads(groups_json)
    known = get_predictor("known")
    seconds = 0.0
    for group, n in sizes.items():
        for start in range(0, n, CHUNK):
            window = random_windows(min(CHUNK, n - start), seed=start)
            t0 = time.perf_counter()
            out = known.predict(window, steps=3, group=group)
            seconds += time.perf_counter() - t0
            assert bool(torch.isfinite(out).all())
            del window, out
    return {"fast_s": seconds, "threads": torch.get_num_threads()}


def child(name: str, work: Path, *args: str) -> dict:
    """Run one phase in a fresh process; its wall time, CPU time and own peak RSS."""
    out = work / f"phase-{name}.json"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--phase", name, "--work", str(work), *args], check=True,
                   cwd=REPO)
    result = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - t0
    return result


def run_phase(args: argparse.Namespace) -> None:
    work = Path(args.work)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if args.phase == "build":
        result = phase_build(work, args.stages)
    elif args.phase == "fast":
        result = phase_fast(args.extra[0])
    else:
        result = phase_cli(list(args.extra))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    result.update({"inner_s": time.perf_counter() - t0, "peak_rss_gb": vm_hwm_gb(),
                   "cpu_s": cpu.ru_utime + cpu.ru_stime - cpu0.ru_utime - cpu0.ru_stime})
    (work / f"phase-{args.phase}.json").write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return

    work = Path(tempfile.mkdtemp(prefix="bench_import-", dir="/tmp"))
    load0 = os.getloadavg()[0]
    try:
        build = child("build", work, "--stages", str(args.stages))
        os.sync()  # the film's 3.5 GB on disk first: its writeback would otherwise slow the import's own writing
        print(f"film: {args.stages} checkpoints of {build['parameters']:,} parameters, "
              f"{build['checkpoint_bytes'] / 1e9:.3f} GB each, built in {build['wall_s']:.0f} s")
        runs = work / "runs"
        imp = child("import", work, "--", "import", str(work / "film"), "--kind", "training", "--quiet",
                    "--runs-dir", str(runs))
        run_id = RunStore(runs, create=False).list_runs()[0].id
        table = json.loads(json.dumps(RunStore(runs, create=False).open(run_id).read_csv("groups.csv")))
        sizes = {row["group"]: int(row["scalars"]) for row in table if row["group"] in ("conv", "fc", "bias")}
        pred = child("predict", work, "--", "predict", "--run", run_id, "--method", "known", "--steps", "3",
                     "--quiet", "--runs-dir", str(runs))
        exp = child("export", work, "--", "export", "--run", run_id, "--method", "known", "--scale", "x8",
                    "--format", "hf", "--out", str(work / "export"), "--runs-dir", str(runs))
        fast = child("fast", work, "--", json.dumps(sizes))
        from transformers import GPT2LMHeadModel

        loaded = GPT2LMHeadModel.from_pretrained(work / "export")  # the export loads back
        assert sum(p.numel() for p in loaded.parameters()) == build["parameters"]
        del loaded
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    ckpt_gb = build["checkpoint_bytes"] / 1e9
    total = imp["wall_s"] + pred["wall_s"] + exp["wall_s"]
    peak = max(imp["peak_rss_gb"], pred["peak_rss_gb"], exp["peak_rss_gb"])
    fig = {
        "parameters": build["parameters"], "stages": args.stages, "checkpoint_gb": ckpt_gb,
        "predicted_weights": sum(sizes.values()),
        "import_s": imp["wall_s"], "predict_known_x8_s": pred["wall_s"], "export_s": exp["wall_s"],
        "total_s": total, "fast_path_s": fast["fast_s"], "fast_phase_wall_s": fast["wall_s"],
        "time_ratio": total / fast["fast_s"], "time_goal_met": total <= 1.5 * fast["fast_s"],
        "import_rss_gb": imp["peak_rss_gb"], "predict_rss_gb": pred["peak_rss_gb"],
        "export_rss_gb": exp["peak_rss_gb"], "fast_rss_gb": fast["peak_rss_gb"],
        "peak_rss_gb": peak, "rss_ratio": peak / ckpt_gb, "rss_goal_met": peak <= 2.5 * ckpt_gb,
        "threads": fast["threads"], "predict_threads": pred["threads"],
        "load_average_start": load0, "load_average_end": os.getloadavg()[0],
    }
    print(f"import {imp['wall_s']:.1f} s ({imp['peak_rss_gb']:.2f} GB peak), predict KNOWN ×2/×4/×8 "
          f"{pred['wall_s']:.1f} s ({pred['peak_rss_gb']:.2f} GB), export ×8 {exp['wall_s']:.1f} s "
          f"({exp['peak_rss_gb']:.2f} GB): {total:.1f} s = {fig['time_ratio']:.2f}× the fast path's "
          f"{fast['fast_s']:.1f} s on {fig['predicted_weights']:,} weights (goal ≤ 1.5×); peak RSS "
          f"{peak:.2f} GB = {fig['rss_ratio']:.2f}× one checkpoint (goal ≤ 2.5×)")
    emit(fig)


if __name__ == "__main__":
    main()
