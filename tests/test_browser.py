"""The lab's widgets in a real browser: JupyterLab + headless Chromium (Python playwright).

``test_views.py`` checks the views' models without a browser; this test checks that the
widgets render in JupyterLab and that a click in the page reaches the kernel and comes back:

1. serve a temporary copy of ``labs/`` (JupyterLab autosaves into what it serves) with a
   fixture notebook ``_build/browser_notebook.ipynb`` written at test time (it holds the
   absolute path of this checkout's ``images/``, so it is never stored in the repository,
   where ``make test``'s nbval run over ``labs/*/*.ipynb`` would pick it up);
2. open it in headless Debian Chromium, run all cells;
3. Dashboard: select pv-hello, click Unpause, then Run, and read the domain table:
   ``--p---`` (paused) -> ``---s--`` (shut down);
4. Stepper (only when ``xenlab.views.stepper`` exists): click Step and Run-to-next-event
   on a paused hvm-hello and check that the register panel's text changes.

Needs ``/usr/bin/chromium`` (Debian package ``chromium``), ``playwright`` (pip; its own
browser download is not used) and ``jupyterlab``; skipped with the reason otherwise.
About 10-20 s; every wait is bounded so the whole test stays under 90 s.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
IMAGES = ROOT / "images"
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = "_build/browser_notebook.ipynb"

HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
HAVE_JUPYTERLAB = importlib.util.find_spec("jupyterlab") is not None
HAVE_STEPPER = (ROOT / "xenlab" / "views" / "stepper.py").exists()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} missing: apt-get install chromium"),
    pytest.mark.skipif(not HAVE_PLAYWRIGHT,
                       reason="playwright missing: pip install playwright "
                              "(no `playwright install`: the test uses /usr/bin/chromium)"),
    pytest.mark.skipif(not HAVE_JUPYTERLAB,
                       reason="jupyterlab missing: pip install -e '.[lab]'"),
]

#: The whole test's budget (server start, page load, kernel, clicks).
BUDGET_S = 85.0
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
TOKEN = "xenlab-browser-test-" + os.urandom(8).hex()


class Deadline:
    """One budget for the whole test: each wait gets what is left (capped)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the test's {BUDGET_S:.0f} s budget is spent")
        return min(cap, left)

    def ms(self, cap: float) -> float:
        return self.left(cap) * 1000


# -- the fixture notebook ----------------------------------------------------------------
def _code(cell_id: str, source: str) -> dict[str, Any]:
    return {"cell_type": "code", "id": cell_id, "metadata": {}, "execution_count": None,
            "outputs": [], "source": source.strip("\n").splitlines(keepends=True)}


def fixture_notebook(images: Path, with_stepper: bool) -> dict[str, Any]:
    """The notebook the browser opens; cells are found in the page by their first line."""
    cells = [
        {"cell_type": "markdown", "id": "intro", "metadata": {},
         "source": ["Fixture for tests/test_browser.py (written at test time)."]},
        _code("setup", f"""
# browser-test: setup
from xenlab.lab import Lab
from xenlab.views import Dashboard
IMAGES = {str(images)!r}
lab = Lab(memory_mib=256, dom0_mem_mib=64)
lab.xl(f"create -p {{IMAGES}}/pv-hello.cfg")
"""),
        _code("dashboard", """
# browser-test: dashboard
dash = Dashboard(lab)
dash
"""),
    ]
    if with_stepper:
        cells.append(_code("stepper", """
# browser-test: stepper
try:
    from xenlab.views.stepper import Stepper
except ModuleNotFoundError as err:
    if err.name != "xenlab.views.stepper":
        raise
    Stepper = None
    print("no xenlab.views.stepper")
if Stepper is not None:
    import ipywidgets
    lab.xl(f"create -p {IMAGES}/hvm-hello.cfg")
    stepper = Stepper(lab, "hvm-hello")
    # the model, or already its widget (StepperView)
    view = stepper if isinstance(stepper, ipywidgets.Widget) else stepper.widget()
    display(view)
"""))
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


# -- the JupyterLab server ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp: Path, deadline: Deadline) -> None:
        self.root = tmp / "labs"
        shutil.copytree(LABS, self.root,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        (self.root / NOTEBOOK).parent.mkdir(exist_ok=True)
        (self.root / NOTEBOOK).write_text(json.dumps(fixture_notebook(IMAGES, HAVE_STEPPER),
                                                     indent=1))
        env = dict(os.environ)
        for name in ("config", "data", "runtime"):
            d = tmp / f"jupyter-{name}"
            d.mkdir()
            env[f"JUPYTER_{name.upper()}_DIR"] = str(d)
        env["IPYTHONDIR"] = str(tmp / "ipython")
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("JUPYTER_PATH", None)
        # = `jupyter labextension disable --level=user ...announcements` (the news toast)
        labconfig = tmp / "jupyter-config" / "labconfig"
        labconfig.mkdir()
        (labconfig / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "jupyterlab.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.root}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class="
             "jupyterlab.NeverCheckForUpdate"],
            cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_up(deadline)

    def _wait_up(self, deadline: Deadline) -> None:
        end = time.monotonic() + deadline.left(40)
        url = f"{self.base}/api/status?token={TOKEN}"
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode}\n"
                                     + self.log_tail())
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise AssertionError("JupyterLab did not answer /api/status\n" + self.log_tail())

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- JupyterLab log tail ({self.log_path}) ---\n" + "\n".join(text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        # the server's own process group: kernels it left behind, if any
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, Deadline(BUDGET_S))
    try:
        yield srv
    finally:
        srv.stop()


# -- page helpers ------------------------------------------------------------------------
#: Synchronous (Playwright would take a returned Promise as true): the notebook is the
#: current widget, its kernel session exists and is idle, and Run All is enabled.
KERNEL_READY_JS = """() => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return false;
  const w = app.shell.currentWidget;
  if (!w || !w.sessionContext || !w.context || !w.context.path.endsWith('NOTEBOOK')) return false;
  const s = w.sessionContext;
  const k = s.session && s.session.kernel;
  return s.isReady && !!k && k.status === 'idle'
      && app.commands.isEnabled('notebook:run-all-cells');
}""".replace("NOTEBOOK", NOTEBOOK)

#: All code cells have run (a number in their prompt) and the kernel is idle again.
ALL_RUN_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  if (!k || k.status !== 'idle') return false;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return cells.length > 0 && cells.every(c => typeof c.model.executionCount === 'number');
}"""

#: The Stepper's register panel: the box under its "Registers" label; if there is no such
#: label, all the text the cell's outputs show (with what form fields hold, which is not
#: in innerText).
REGISTERS_JS = """(cell) => {
  const out = cell.querySelector('.jp-Cell-outputArea') || cell;
  const label = [...out.querySelectorAll('.widget-label')]
      .find(e => e.innerText.trim() === 'Registers');
  if (label) return label.parentElement.innerText;
  const fields = [...out.querySelectorAll('textarea, input, select')].map(e => e.value);
  return out.innerText + '\\n' + fields.join('\\n');
}"""


def _poll(fn: Any, until: Any, seconds: float, interval: float = 0.2) -> Any:
    """fn() until until(value) or the time is up; returns the last value."""
    end = time.monotonic() + seconds
    value = fn()
    while not until(value) and time.monotonic() < end:
        time.sleep(interval)
        value = fn()
    return value


def test_dashboard_and_stepper_in_jupyterlab(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    deadline = Deadline(BUDGET_S - 5)
    shot = tmp_path / "browser.png"
    console: list[str] = []
    t0 = time.monotonic()

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1600})
        page = context.pages[0] if context.pages else context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

        def fail(what: str) -> AssertionError:
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=str(shot), full_page=True)
            return AssertionError(
                f"{what}\nscreenshot: {shot}\n--- browser console (last 15) ---\n"
                + "\n".join(console[-15:]) + "\n" + server.log_tail())

        try:
            page.goto(f"{server.base}/lab/tree/{NOTEBOOK}?token={TOKEN}",
                      timeout=deadline.ms(30), wait_until="domcontentloaded")
            try:
                page.wait_for_function(KERNEL_READY_JS, timeout=deadline.ms(40), polling=200)
            except PlaywrightError as err:
                raise fail(f"the notebook's kernel never became ready: {err}") from None

            page.evaluate("() => { window.jupyterapp.commands.execute("
                          "'notebook:run-all-cells'); }")
            try:
                page.wait_for_function(ALL_RUN_JS, timeout=deadline.ms(30), polling=200)
            except PlaywrightError as err:
                raise fail(f"Run All did not finish: {err}") from None
            errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                  "'application/vnd.jupyter.stderr'], "
                                  ".jp-RenderedText[data-mime-type="
                                  "'application/vnd.jupyter.error']")
            if errors.count():
                raise fail("a cell failed:\n" + "\n".join(errors.all_inner_texts()))

            def cell(marker: str) -> Any:
                return page.locator(".jp-CodeCell", has_text=f"# browser-test: {marker}")

            # -- Stepper first (the dashboard's Run runs every guest): Step, Run to next event
            if HAVE_STEPPER:
                step_cell = cell("stepper")
                handle = step_cell.element_handle(timeout=deadline.ms(5))

                def registers() -> str:
                    return str(page.evaluate(REGISTERS_JS, handle))

                if "no xenlab.views.stepper" in registers():
                    raise fail("xenlab/views/stepper.py exists but the kernel could not "
                               "import xenlab.views.stepper")
                buttons = step_cell.locator("button")
                try:
                    expect(buttons.first).to_be_visible(timeout=deadline.ms(15))
                except AssertionError:
                    raise fail("the Stepper shows no buttons") from None
                for name, pattern in (("Step", r"^\s*Step\s*$"),
                                      ("Run to next event", r"next\s*event")):
                    button = step_cell.locator(
                        "button", has_text=re.compile(pattern, re.IGNORECASE))
                    if button.count() == 0:
                        raise fail(f"no {name!r} button in the Stepper; its buttons: "
                                   f"{buttons.all_inner_texts()}")
                    before = registers()
                    button.first.click(timeout=deadline.ms(10))
                    after = _poll(registers, lambda v, b=before: v != b, deadline.left(20))
                    if after == before:
                        raise fail(f"the Stepper's register panel did not change after "
                                   f"{name!r}:\n{before[-1500:]}")

            # -- Dashboard: pv-hello paused -> Unpause -> Run -> shut down ------------------
            dash = cell("dashboard")
            state = dash.locator("table tr", has=page.locator(
                "td", has_text=re.compile(r"^pv-hello$"))).locator("td").nth(2)
            try:
                expect(state).to_have_text("--p---", timeout=deadline.ms(20))
            except AssertionError as err:
                raise fail(f"the dashboard's table does not show pv-hello paused: {err}"
                           ) from None
            selector = dash.locator("select").first
            label = next(t for t in selector.locator("option").all_inner_texts()
                         if t.startswith("pv-hello"))
            selector.select_option(label=label)
            dash.locator("button", has_text=re.compile(r"^\s*Unpause\s*$")).click(
                timeout=deadline.ms(10))
            try:
                expect(state).not_to_contain_text("p", timeout=deadline.ms(15))
            except AssertionError as err:
                raise fail(f"Unpause did not unpause pv-hello: {err}") from None
            dash.locator("button", has_text=re.compile(r"^\s*Run\s*$")).click(
                timeout=deadline.ms(10))
            try:
                expect(state).to_have_text("---s--", timeout=deadline.ms(20))
            except AssertionError as err:
                raise fail(f"after Run, pv-hello is not shut down ('s'): {err}") from None

            page.screenshot(path=str(shot), full_page=True)
        except (PlaywrightError, TimeoutError, StopIteration) as err:
            raise fail(f"{type(err).__name__}: {err}") from err
        finally:
            context.close()
    print(f"\nbrowser test: {time.monotonic() - t0:.1f} s in the browser; screenshot {shot}")
