"""Real-browser helpers shared by tests and scripts: start Streamlit on 127.0.0.1, drive Debian's Chromium.

The server is started as a child process and stopped by its PID; Chromium comes from the system
(``apt-get install -y chromium``), never from a Playwright download.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_ENV = "KNOW_SCREENSHOT"


def screenshot_path() -> Path:
    """Where the browser test saves its view of the trajectory page: ``build/screenshot.png`` (ignored by git, so a
    test run leaves the clone clean), or the file ``$KNOW_SCREENSHOT`` names: ``scripts/screenshot.sh`` sets it to the
    README's ``docs/screenshot.png`` to refresh that image on purpose."""
    path = Path(os.environ.get(SCREENSHOT_ENV) or REPO / "build" / "screenshot.png").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(runs_dir: Path, timeout: float = 60) -> Iterator[str]:
    """Run ``streamlit run app.py`` on a free loopback port; yield its URL; stop it by PID."""
    port = free_port()
    env = {**os.environ, "KNOW_RUNS_DIR": str(runs_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start on {url} (exit code {proc.poll()})")
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless system Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def wait_for_app(page, timeout_ms: int = 30_000) -> None:
    """Wait until the Streamlit script has finished its run."""
    page.wait_for_timeout(500)
    page.locator("[data-testid=stApp][data-test-script-state=notRunning]").wait_for(timeout=timeout_ms)
