"""KNOWN inference speed and memory, next to the closed-form predictors, in one run (~1 minute on 2 CPU cores).

Measures, on the same random-walk windows:
- the eager reference (``KNOWN.forward`` in batches of 65,536 rows — a plain port — and at its best batch size),
  against the fast path (``predict_fast``), with their largest difference;
- an 11.2M-weight (ResNet-18-sized) 3-step rollout through ``get_predictor("known")``: time and peak memory;
- TaskVector and ExpFit throughput;
- NiNo's WNN+ (``nino_mlp``, one tensor of ``--nino-rows`` windows) and NiNo's GNN (``nino``, a whole
  ``simple_cnn_wide`` film on 28×28 inputs: its neural graph built once, then timed) in the same interleaved race,
  in weights predicted per second (one step).
Uses the official Conv network when ``--official-known`` (default ``$KNOW_OFFICIAL_KNOWN``) names a folder holding
it, else a seeded random KNOWN (same cost). Ends with one JSON line of the figures, also kept in
``benchmarks/results/bench_known.json``.

    python benchmarks/bench_known.py [--rows 2000000] [--nino-rows 200000] [--rollout-rows 11200000]
                                     [--official-known DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path
from typing import Callable

import torch
from _common import emit

from know_core.models import create_model, param_groups, predicted_groups
from know_core.predictors import KNOWN, get_predictor, load_keras_h5, predict_fast
from know_core.predictors.keras_import import OFFICIAL_ENV, OFFICIAL_FILES, official_known_folder

PLAIN_BATCH = 65_536


def rss_gb(field: str) -> float:
    """VmRSS / VmHWM of this process from /proc, in GB (0 where /proc is unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return 0.0


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds used by the whole machine, by this process) so far: the difference is other processes' load,
    which on a shared 2-core machine is the main source of noise in these figures."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF)
    return busy, own.ru_utime + own.ru_stime


def reset_peak_rss() -> bool:
    """Restart VmHWM from the current RSS (Linux ≥ 4.0), so a phase's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def race(contenders: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Best wall time of each contender over ``rounds`` interleaved rounds, so that another process's burst of
    load hurts them alike instead of whichever happened to run during it."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def random_windows(rows: int, seed: int) -> torch.Tensor:
    """Trajectories shaped like real ones: θ0 ~ N(0, 0.05²), per-stage steps ~ N(0, 0.003²) with a common drift."""
    gen = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(rows, 1, generator=gen) * 0.05
    drift = torch.randn(rows, 1, generator=gen) * 0.002
    steps = torch.randn(rows, 4, generator=gen) * 0.003 + drift
    back = torch.cat([torch.zeros(rows, 1), steps.cumsum(dim=1)], dim=1)  # Θ0, Θ1, … going forward in forgetting
    return (theta0 + back).flip(dims=[1]).contiguous()  # most-forgotten first, Θ0 last


def random_film(model: str, seed: int, stages: int = 5) -> tuple[list[dict[str, torch.Tensor]], dict[str, str]]:
    """A forgetting film of a real architecture (28×28 inputs, 10 classes) for the whole-network predictor: Θ0 at its
    seeded initialisation, each stage a small random step from the one before, Θ0 first; and its predicted groups."""
    torch.manual_seed(seed)
    net = create_model(model, (1, 28, 28), 10)
    groups = predicted_groups(param_groups(net))
    gen = torch.Generator().manual_seed(seed)
    state = {k: v.detach().clone() for k, v in net.state_dict().items() if k in groups}
    film = [state]
    for _ in range(stages - 1):
        film.append({k: v + 0.003 * torch.randn(v.shape, generator=gen) for k, v in film[-1].items()})
    return film, groups


def eager(net: KNOWN, window: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([net(window[i:i + batch]) for i in range(0, window.shape[0], batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--nino-rows", type=int, default=200_000, help="windows for nino_mlp (default 200,000)")
    parser.add_argument("--nino-model", default="simple_cnn_wide", help="architecture of nino's film")
    parser.add_argument("--rollout-rows", type=int, default=11_200_000)
    parser.add_argument("--official-known", type=Path, default=official_known_folder(),
                        help=f"folder with the official {OFFICIAL_FILES['conv']} (default ${OFFICIAL_ENV})")
    args = parser.parse_args()

    official_conv = args.official_known / OFFICIAL_FILES["conv"] if args.official_known else None
    if official_conv is not None and official_conv.is_file():
        net, source = load_keras_h5(official_conv), "official Conv"
    else:
        torch.manual_seed(0)
        net, source = KNOWN().eval(), "random init"
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    window = random_windows(args.rows, seed=0)
    n = window.shape[0]
    print(f"KNOWN benchmark: {source} weights, {n:,} windows, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f} at start")

    max_diff = float((predict_fast(net, window) - eager(net, window, PLAIN_BATCH)).abs().max())  # also a warm-up
    tv, ef = get_predictor("taskvector"), get_predictor("expfit")
    nino_mlp, nino = get_predictor("nino_mlp"), get_predictor("nino")
    nino_window = window[:args.nino_rows]
    film, groups = random_film(args.nino_model, seed=2)
    film_weights = sum(v.numel() for v in film[0].values())
    start = time.perf_counter()
    nino.predict_film(film, groups, 1)  # builds and caches the neural graph (once per architecture)
    t_graph = time.perf_counter() - start
    times = race({
        "plain": lambda: eager(net, window, PLAIN_BATCH), "eager 4096": lambda: eager(net, window, 4096),
        "eager 16384": lambda: eager(net, window, 16384), "fast": lambda: predict_fast(net, window),
        "taskvector": lambda: tv.predict(window), "expfit": lambda: ef.predict(window),
        "nino_mlp": lambda: nino_mlp.predict(nino_window, 1, "conv"),
        "nino": lambda: nino.predict_film(film, groups, 1),
    })
    t_plain, t_fast, t_tv, t_ef = times["plain"], times["fast"], times["taskvector"], times["expfit"]
    eager_best = max((n / times[f"eager {b}"], b) for b in (4096, 16384))

    big = random_windows(args.rollout_rows, seed=1)
    known = get_predictor("known", weights={"conv": net, "fc": net, "bias": net})
    rss_before = rss_gb("VmRSS")
    exact_peak = reset_peak_rss()
    start = time.perf_counter()
    rolled = known.predict(big, steps=3, group="conv")
    t_roll = time.perf_counter() - start
    peak = rss_gb("VmHWM")
    assert rolled.shape == (big.shape[0], 3) and bool(torch.isfinite(rolled).all())

    (busy, own), wall = cpu_seconds(), time.perf_counter() - wall_start
    others = max(0.0, (busy - cpu_start[0]) - (own - cpu_start[1])) / wall
    fig = {
        "eager_wps": n / t_plain, "eager_best_wps": eager_best[0], "fast_wps": n / t_fast,
        "speedup": t_plain / t_fast, "speedup_vs_best_eager": (n / t_fast) / eager_best[0],
        "max_abs_diff": max_diff, "rollout_11m_3steps_s": t_roll, "rollout_wps": 3 * big.shape[0] / t_roll,
        "peak_rss_gb": peak, "rollout_rss_increase_gb": peak - rss_before,
        "taskvector_wps": n / t_tv, "expfit_wps": n / t_ef,
        "nino_mlp_wps": nino_window.shape[0] / times["nino_mlp"], "nino_wps": film_weights / times["nino"],
        "nino_mlp_rows": nino_window.shape[0], "nino_model": args.nino_model, "nino_film_weights": film_weights,
        "nino_first_call_s": t_graph,
        "threads": torch.get_num_threads(), "other_load_cores": others,
        "rows": n, "rollout_rows": big.shape[0], "weights": source,
    }
    rows = [
        (f"eager forward, batches of {PLAIN_BATCH:,}", fig["eager_wps"], "1.00×"),
        (f"eager forward, best batch ({eager_best[1]:,})", fig["eager_best_wps"],
         f"{fig['eager_best_wps'] / fig['eager_wps']:.2f}×"),
        ("fast path (predict_fast)", fig["fast_wps"], f"{fig['speedup']:.2f}×"),
        ("taskvector", fig["taskvector_wps"], ""),
        ("expfit", fig["expfit_wps"], ""),
        (f"nino_mlp (WNN+, {nino_window.shape[0]:,} windows)", fig["nino_mlp_wps"], ""),
        (f"nino (GNN, {args.nino_model} film, {film_weights:,} weights)", fig["nino_wps"], ""),
    ]
    print(f"\n{'method':44s} {'M weights/s':>12s} {'vs plain':>9s}")
    for label, wps, ratio in rows:
        print(f"{label:44s} {wps / 1e6:12.2f} {ratio:>9s}")
    print(f"\nfast vs eager max |difference|: {max_diff:.2e}")
    print(f"fast vs best eager batch: {fig['speedup_vs_best_eager']:.2f}×")
    print(f"{big.shape[0]:,}-weight 3-step rollout: {t_roll:.2f} s ({fig['rollout_wps'] / 1e6:.2f} M weight-steps/s), "
          f"peak RSS {peak:.2f} GB ({'phase peak' if exact_peak else 'process peak'}), "
          f"+{fig['rollout_rss_increase_gb']:.2f} GB over the {rss_before:.2f} GB before it")
    print(f"other processes used {others:.2f} of {os.cpu_count()} cores on average during this run")
    emit(fig)


if __name__ == "__main__":
    main()
