"""A "Virtual Machine Manager" for notebooks: the domains, their consoles, and buttons.

``Dashboard(lab)`` is an ``ipywidgets.VBox``. Every action is an ``xl``
command line run through the xl command table (``lab.xl_output``), so a click
does exactly what typing the command in Dom0's shell does, and the command and
its output appear in the log. The model is testable without a browser:
``button.click()`` runs the handler, ``refresh()`` re-reads the host.

===================  ===================================================
widget               xl command
===================  ===================================================
``create_button``    ``xl create <config_path.value>``
``pause_button``     ``xl pause <selected domid>``
``unpause_button``   ``xl unpause <selected domid>``
``shutdown_button``  ``xl shutdown -F <selected domid>``
``destroy_button``   ``xl destroy <selected domid>``
``run_button``       (none: the host runs ``budget.value`` instructions)
===================  ===================================================

Real Xen: virt-manager's main window (and ``xl list`` / ``xl console``)
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as W

if TYPE_CHECKING:
    from xenlab.lab import Lab

__all__ = ["COLUMNS", "Dashboard"]

#: The domain table's columns, as ``xl list`` names them.
COLUMNS = ("Name", "ID", "State", "Mem (MiB)", "VCPUs", "Time (s)")


class Dashboard(W.VBox):
    """Domains table, Create, per-domain Pause/Unpause/Shutdown/Destroy, console, Run."""

    def __init__(self, lab: Lab, *, budget: int = 50_000_000) -> None:
        self.lab = lab
        self.table = W.HTML()
        self.selector = W.Dropdown(description="Domain", options=[])
        self.config_path = W.Text(description="Config", placeholder="images/pv-hello.cfg",
                                  layout=W.Layout(width="420px"))
        self.create_button = W.Button(description="Create", icon="plus")
        self.pause_button = W.Button(description="Pause", icon="pause")
        self.unpause_button = W.Button(description="Unpause", icon="play")
        self.shutdown_button = W.Button(description="Shutdown (-F)", icon="power-off")
        self.destroy_button = W.Button(description="Destroy", icon="trash",
                                       button_style="danger")
        self.budget = W.IntText(value=budget, description="Budget")
        self.run_button = W.Button(description="Run", icon="forward", button_style="success")
        self.refresh_button = W.Button(description="Refresh", icon="refresh")
        self.console = W.Textarea(disabled=True, layout=W.Layout(width="100%", height="180px"))
        self.xl_log = W.Textarea(disabled=True, layout=W.Layout(width="100%", height="90px"))
        self.status = W.Label()

        self.create_button.on_click(lambda _b: self.create())
        self.pause_button.on_click(self._on_selected("pause"))
        self.unpause_button.on_click(self._on_selected("unpause"))
        self.shutdown_button.on_click(self._on_selected("shutdown -F"))
        self.destroy_button.on_click(self._on_selected("destroy"))
        self.run_button.on_click(lambda _b: self.run())
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.selector.observe(lambda _c: self._show_console(), names="value")

        super().__init__([
            W.HTML("<b>Virtual Machine Manager</b> (xenlab)"),
            self.table,
            W.HBox([self.config_path, self.create_button]),
            W.HBox([self.selector, self.pause_button, self.unpause_button,
                    self.shutdown_button, self.destroy_button]),
            W.HBox([self.budget, self.run_button, self.refresh_button, self.status]),
            W.Label("Console"), self.console,
            W.Label("xl log"), self.xl_log,
        ])
        self.refresh()

    # -- model -------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, int, str, int, int, float]]:
        """The table's rows, from the host's live state (``COLUMNS`` order)."""
        host = self.lab.host
        running = host.running_vcpus()
        return [(d.name, d.domid, d.state_flags(running), d.tot_pages * 4 // 1024,
                 len(d.vcpus), round(d.cpu_time / 1e9, 6))
                for d in sorted(host.domains.values(), key=lambda d: d.domid)]

    @property
    def selected(self) -> int | None:
        """The selected domain's id (None when nothing or Domain-0 is selected)."""
        value = self.selector.value
        return value if isinstance(value, int) and value in self.lab.host.domains else None

    def xl(self, command: str) -> str:
        """Run one xl command line as the shell would, log it, refresh the view."""
        output = self.lab.xl_output(command)
        self.xl_log.value = (self.xl_log.value + f"# xl {command}\n{output}")[-20_000:]
        self.refresh()
        return output

    def create(self) -> str:
        path = self.config_path.value.strip()
        if not path:
            self.status.value = "type a config path first"
            return ""
        output = self.xl(f"create {shlex.quote(path)}")
        # the outcome in one line beside the buttons, not only in the log below
        lines = output.splitlines()
        error = next((line for line in lines if line.startswith("xl: error:")), None)
        created = next((line for line in lines if line.startswith("Created domain")), None)
        self.status.value = (f"Create failed: {error.removeprefix('xl: error: ')}" if error
                             else created or (lines[-1] if lines else ""))
        return output

    def act(self, verb: str) -> str:
        """``xl <verb> <selected domid>`` (verb: pause, unpause, shutdown -F, destroy)."""
        domid = self.selected
        if domid is None:
            self.status.value = "select a domain first"
            return ""
        return self.xl(f"{verb} {domid}")

    def run(self) -> str:
        status = self.lab.run(max_instructions=int(self.budget.value))
        self.status.value = f"run: {status.value}, {self.lab.host.instructions:,} instructions"
        self.refresh()
        return status.value

    def refresh(self) -> None:
        rows = self.rows()
        cells = "".join(f"<th style='padding:0 8px'>{c}</th>" for c in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td style='padding:0 8px'>{html.escape(str(v))}</td>"
                                        for v in row) + "</tr>" for row in rows)
        self.table.value = f"<table><tr>{cells}</tr>{body}</table>"
        options = [(f"{name} ({domid})", domid) for name, domid, *_ in rows if domid != 0]
        current = self.selector.value
        self.selector.options = options
        ids = [o[1] for o in options]
        if current in ids:
            self.selector.value = current
        elif ids:
            self.selector.value = ids[-1]
        else:
            self.selector.value = None
        self._show_console()

    # -- helpers -------------------------------------------------------------------------
    def _on_selected(self, verb: str) -> Callable[[W.Button], None]:
        def handler(_button: W.Button) -> None:
            self.act(verb)

        return handler

    def _show_console(self) -> None:
        domid = self.selected
        self.console.value = self.lab.console(domid)[-50_000:] if domid is not None else ""
