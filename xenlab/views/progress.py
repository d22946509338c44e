"""Progress for long runs: run the host in chunks and show how far the budget is used.

``run_with_progress(lab_or_host, max_instructions, chunk=...)`` calls
``XenHost.run`` chunk by chunk. In a notebook (an IPython kernel with display)
it updates an ``ipywidgets.IntProgress``; elsewhere it rewrites one line on the
terminal (``\\r``). When the budget ends with guests still runnable it says so
and names them; when every guest is done or asleep it stops early.

==========  =================================================================
outcome     message
==========  =================================================================
``idle``    ``xenlab: idle after N instructions (nothing left to run)``
``budget``  ``xenlab: budget of N instructions used up; still running: ...``
``until``   ``xenlab: stopped after N instructions: what it waited for happened``
==========  =================================================================

Real Xen: ``xl top`` / xentop refreshing while guests run
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Literal

from xenlab.xen.setup import RunStatus, XenHost

if TYPE_CHECKING:
    from xenlab.lab import Lab

__all__ = ["budget_message", "run_with_progress", "still_running"]

Mode = Literal["auto", "widget", "text", "quiet"]


def _host(lab_or_host: Lab | XenHost) -> XenHost:
    return lab_or_host if isinstance(lab_or_host, XenHost) else lab_or_host.host


def still_running(host: XenHost) -> list[str]:
    """Guests that could still run: not shut down, crashed or dying, a vCPU online."""
    return [f"{d.name} (dom {d.domid})" for d in sorted(host.domains.values(),
                                                          key=lambda d: d.domid)
            if d.domid != 0 and not (d.is_shut_down or d.is_crashed or d.is_dying)
            and any(v.online for v in d.vcpus)]


def budget_message(host: XenHost, status: RunStatus, spent: int, budget: int) -> str:
    if status is RunStatus.BUDGET:
        names = ", ".join(still_running(host)) or "none"
        return (f"xenlab: budget of {budget:,} instructions used up; "
                f"still running: {names}")
    if status is RunStatus.UNTIL:
        return f"xenlab: stopped after {spent:,} instructions: what it waited for happened"
    return f"xenlab: {status.value} after {spent:,} instructions (nothing left to run)"


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def run_with_progress(lab_or_host: Lab | XenHost, max_instructions: int, *,
                      chunk: int = 5_000_000, mode: Mode = "auto",
                      out: IO[str] | None = None,
                      until: Callable[[], bool] | None = None) -> RunStatus:
    """Run up to ``max_instructions`` guest instructions in chunks, showing progress.

    ``mode``: ``auto`` (widget in a notebook, text otherwise), ``widget``, ``text``,
    ``quiet`` (only the final message). Text goes to ``out`` (default ``sys.stderr``).
    ``until``: stop as soon as it returns true (a prompt on a console, say), checked as
    ``XenHost.run`` checks it. Returns the last ``RunStatus`` (``BUDGET`` if the budget
    ended the run).
    """
    host = _host(lab_or_host)
    stream = out if out is not None else sys.stderr
    if mode == "auto":
        mode = "widget" if _in_notebook() else "text"
    bar = None
    if mode == "widget":
        import ipywidgets as W
        from IPython.display import display

        bar = W.IntProgress(value=0, min=0, max=max(1, max_instructions),
                            description="xenlab run")
        display(bar)
    start = host.instructions
    status = RunStatus.BUDGET
    while True:
        spent = host.instructions - start
        left = max_instructions - spent
        if left <= 0:
            status = RunStatus.BUDGET
            break
        before = host.instructions
        status = host.run(max_instructions=min(chunk, left), until=until)
        spent = host.instructions - start
        if status is RunStatus.BUDGET and host.instructions == before:
            spent = max_instructions  # no instruction counted: do not spin
        if bar is not None:
            bar.value = min(spent, bar.max)
        elif mode == "text":
            done = min(1.0, spent / max(1, max_instructions))
            filled = int(done * 30)
            stream.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {done:4.0%} "
                         f"{spent:,} / {max_instructions:,} instructions")
            stream.flush()
        if status is not RunStatus.BUDGET:
            break
    spent = host.instructions - start
    if mode == "text":
        stream.write("\n")
    message = budget_message(host, status, spent, max_instructions)
    if bar is not None:
        bar.description = status.value
        bar.bar_style = "warning" if status is RunStatus.BUDGET else "success"
    print(message, file=stream)
    return status
