"""Photograph every page as a person would see it: full-page screenshots at a desk width (1400 px) and a projector
width (1024 px), with one run chosen and with several, in headless Chromium against a real server.

    .venv/bin/python scripts/tour.py --runs-dir runs --out build/tour [--runs ID1,ID2,ID3] [--present]

The pictures land in ``--out`` (under ``build/`` by default, which git ignores) as ``WIDTH-PAGE-one.png`` and
``WIDTH-PAGE-several.png``; a line per picture gives its height in pixels. Look at them before resolving anything that
shows on screen. Nothing here trains: the runs must exist (``demo --preset quick`` makes one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from screens._routing import PAGES  # noqa: E402  (every page of screens/, in sidebar order)
from tests.browser import browser_page, streamlit_server, wait_for_app  # noqa: E402

HEIGHT = "() => document.querySelector('[data-testid=stMainBlockContainer]').getBoundingClientRect().height"
MULTI = {"compare", "scaling"}  # the pages that overlay several runs (?runs=ID1,ID2)


def finished_experiments(runs_dir: Path) -> list[str]:
    from know_core.api import RunStore, list_runs

    return [r.id for r in list_runs(RunStore(runs_dir)) if r.kind == "experiment" and r.status == "done"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "tour")
    ap.add_argument("--runs", help="comma-separated run ids for the several-runs pictures (default: the newest 3)")
    ap.add_argument("--widths", default="1400,1024")
    ap.add_argument("--present", action="store_true", help="also photograph each page in presentation mode")
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--query", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra URL parameter for every picture, e.g. step=4 for one Present step (repeatable)")
    args = ap.parse_args(argv)
    extra_query = dict(q.split("=", 1) for q in args.query)

    ids = args.runs.split(",") if args.runs else finished_experiments(args.runs_dir)[:3]
    if not ids:
        print(f"tour: no finished experiment in {args.runs_dir}; run `demo --preset quick` first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    views = [("one", {"run": ids[0], "runs": ids[0]})]
    if len(ids) > 1:
        views.append(("several", {"run": ids[0], "runs": ",".join(ids)}))
    modes = [("", {})] + ([("present-", {"present": "1"})] if args.present else [])
    with streamlit_server(args.runs_dir) as url:
        for width in (int(w) for w in args.widths.split(",")):
            with browser_page(width=width, height=900) as page:
                for name in args.pages.split(","):
                    for label, params in views:
                        if label == "several" and name not in MULTI:
                            continue
                        for prefix, extra in modes:
                            query = {**({"runs": params["runs"]} if name in MULTI else {"run": params["run"]}),
                                     **extra, **extra_query}
                            where = "" if name == next(iter(PAGES)) else name  # the default page lives at /
                            page.goto(f"{url}/{where}?" + "&".join(f"{k}={v}" for k, v in query.items()))
                            wait_for_app(page, timeout_ms=120_000)
                            page.wait_for_timeout(1500)  # plotly draws after the script run ends
                            tag = "".join(f"-{k}{v}" for k, v in extra_query.items())
                            path = args.out / f"{width}-{prefix}{name}{tag}-{label}.png"
                            # Streamlit scrolls inside its main block, so a "full page" is the viewport grown to it
                            height = int(page.evaluate(HEIGHT))
                            page.set_viewport_size({"width": width, "height": max(900, height + 120)})
                            page.wait_for_timeout(800)
                            page.screenshot(path=str(path), full_page=True)
                            page.set_viewport_size({"width": width, "height": 900})
                            print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {height} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
