"""Dashboard speed in a real browser: first chart after navigation, page switches, server memory with five runs.

With the server warm and one ``standard`` run stored, each page is reached by clicking its sidebar link (the way a
user switches pages) and timed until its first Plotly chart has drawn (``first_chart_s``) and until the script run
has finished (``switch_s``). Then five copies of the run are overlaid and browsed, and the server's resident memory
is read from /proc. Goals: first chart ≤ 1.5 s, switch ≤ 1 s, server < 2 GB.

    python benchmarks/bench_app.py [--runs-dir DIR]   # DIR holding a finished standard run; made if absent (~30 min)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from _common import emit

REPO = Path(__file__).resolve().parents[1]
PAGES = {"experiments": "Experiments", "trajectory": "Trajectory", "compare": "Compare", "scaling": "Scaling",
         "known": "KNOWN", "runs": "Runs"}
CHART_PAGES = ("trajectory", "compare", "scaling", "known")


def standard_run(root: Path, name: str = "standard") -> str:
    from know_core.experiment.spec import preset
    from know_core.jobs.lifecycle import record_experiment
    from know_core.store.runstore import RunStore

    store = RunStore(root)
    done = [r for r in store.list_runs(status="done", kind="experiment") if r.config.get("preset") == name]
    if done:
        return done[0].id
    print(f"recording a {name} run (standard: tens of minutes on 2 CPU cores)…", file=sys.stderr)
    return record_experiment(preset(name), store, name=name)


def copy_run(root: Path, run_id: str, name: str) -> str:
    """A byte-identical copy of a finished experiment under a new id (to load several runs at once)."""
    from know_core.store.runstore import RunStore

    store = RunStore(root)
    info = store.info(run_id)
    path = store.create_in_place("experiment", info.config, name)
    for item in (root / run_id).iterdir():
        if item.name not in ("config.json", "manifest.json") and not item.name.startswith("."):
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, path / item.name)
    store.finish(path.name, info.summary)
    return path.name


def server_rss_mb(port: str) -> float:
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"streamlit" in b" ".join(cmd) and port.encode() in cmd:
                status = (proc / "status").read_text()
                return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024
        except (OSError, StopIteration):
            continue
    return float("nan")


def browser_helpers() -> ModuleType:
    """tests/browser.py (start Streamlit, drive Chromium), loaded from its file: tests/ is not an installed package."""
    spec = importlib.util.spec_from_file_location("browser", REPO / "tests" / "browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def visit(page, name: str, title: str) -> tuple[float, float]:
    """Click the sidebar link; seconds until the first chart has drawn (or the title, on chartless pages) and until
    the script has finished."""
    nav = page.get_by_test_id("stSidebarNav")
    t0 = time.perf_counter()
    nav.get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=30_000)
    if name in CHART_PAGES:
        page.locator(".js-plotly-plot .main-svg >> visible=true").first.wait_for(timeout=30_000)
    first = time.perf_counter() - t0
    page.wait_for_timeout(50)
    page.locator("[data-testid=stApp][data-test-script-state=notRunning]").wait_for(timeout=30_000)
    return first, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--preset", default="standard", help="the stored run's preset (quick: a smoke test)")
    args = parser.parse_args()
    root = Path(args.runs_dir or tempfile.mkdtemp(prefix="bench-app-"))
    run_id = standard_run(root, args.preset)
    work = Path(tempfile.mkdtemp(prefix="bench-app-work-"))
    shutil.copytree(root, work / "runs", ignore=shutil.ignore_patterns(".staging"))
    root = work / "runs"
    browser = browser_helpers()

    figures: dict[str, float | str | int] = {}
    with browser.streamlit_server(root) as url, browser.browser_page() as page:
        page.goto(url)
        browser.wait_for_app(page)
        for name, title in PAGES.items():  # warm: every page once (imports, caches)
            visit(page, name, title)
        firsts, switches = {}, {}
        for name, title in PAGES.items():
            away = ("runs", "Runs") if name != "runs" else ("experiments", "Experiments")
            times = []
            for _ in range(3):  # from another page each time; the best of three
                visit(page, *away)
                times.append(visit(page, name, title))
            firsts[name], switches[name] = min(times, key=lambda t: t[0])
        for name in PAGES:
            figures[f"first_chart_s_{name}"] = firsts[name]
            figures[f"switch_s_{name}"] = switches[name]
        figures["first_chart_s_max"] = max(firsts[n] for n in CHART_PAGES)
        figures["switch_s_max"] = max(switches.values())
        copies = [run_id] + [copy_run(root, run_id, f"standard copy {i}") for i in range(1, 5)]
        for rid in copies:
            page.goto(f"{url}/trajectory?run={rid}")
            browser.wait_for_app(page)
        for name in ("compare", "scaling"):
            page.goto(f"{url}/{name}?runs={','.join(copies)}")
            browser.wait_for_app(page)
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        figures["server_rss_mb_five_runs"] = server_rss_mb(url.rsplit(":", 1)[1])
    figures["preset"] = args.preset
    figures.update(goal_first_chart_s=1.5, goal_switch_s=1.0, goal_rss_mb=2048,
                   ok=bool(figures["first_chart_s_max"] <= 1.5 and figures["switch_s_max"] <= 1.0
                           and figures["server_rss_mb_five_runs"] < 2048))
    shutil.rmtree(work, ignore_errors=True)
    emit(figures)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
