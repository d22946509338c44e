"""Notebooks survive misuse: interrupting a long run, running a chapter twice, cells out
of order. The host stays consistent and usable."""

from __future__ import annotations

import os
import signal

import pytest

from xenlab.lab import Lab
from xenlab.xen.trace import TraceRecord


def test_interrupting_a_run_leaves_the_host_usable() -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('pv-spin.cfg')}")
    seen = {"n": 0}

    def ctrl_c(rec: TraceRecord) -> None:  # what Jupyter's "interrupt kernel" sends
        seen["n"] += 1
        if seen["n"] == 20:
            os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of a hypercall

    lab.trace.listeners.append(ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        lab.run()
    lab.trace.listeners.clear()
    lab.host.check_invariants()
    assert lab.host._current is None
    lab.run()  # carry on where it stopped
    assert "pv-spin: done, powering off." in lab.console("pv-spin")
    lab.host.check_invariants()


def test_running_a_chapter_twice_and_cells_out_of_order() -> None:
    for _ in range(2):  # "Run All" twice: a fresh Lab each time, same output
        lab = Lab(memory_mib=256, dom0_mem_mib=64)
        lab.xl(f"create {Lab.image('pv-hello.cfg')}")
        lab.run()
        first = lab.console("pv-hello")
        lab.run()  # running the run cell again does nothing more
        assert lab.console("pv-hello") == first
        lab.xl(f"create {Lab.image('pv-hello.cfg')}")  # the create cell again: refused
        lab.xl("destroy pv-hello")
        lab.xl("destroy pv-hello")                    # and destroy twice: refused
        lab.host.check_invariants()
        assert list(lab.host.domains) == [0]
