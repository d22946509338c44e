"""Views of an emulated Xen host: topology graph, trace plots, a VM manager, magics.

This is the only xenlab package that imports matplotlib, ipywidgets, IPython
or networkx's drawing; it reads trace records and live host state and never
changes the host except through the xl command table.

=====================  ===================================================
module                 what
=====================  ===================================================
``topology``           ``build_topology``/``draw_topology``/``save_topology``
``traceviews``         hypercall counts, swimlanes, split-driver sequence,
                       VM exits, PV versus HVM
``dashboard``          ``Dashboard(lab)``: the "Virtual Machine Manager"
``magics``             ``%xl``, ``%xenstore``, ``%%xlcfg``
                       (``%load_ext xenlab.views.magics``)
``progress``           ``run_with_progress``: long runs with a progress bar
``stepper``            ``Stepper(lab, name)``/``StepperView``: step a guest,
                       run it to an event at full speed, panels, Back to
                       any earlier instruction (``replay``: checkpoints)
``pagetables``         ``explain_mmu_update``/``check_l1e``: a PV guest's
                       page-table update as Xen validates it
``display``            ``draw_vga``: an HVM guest's screen, text or mode 13h
=====================  ===================================================

The submodules are imported lazily (``xenlab.views.Dashboard`` imports
ipywidgets only when first used).

Real Xen: virt-manager, xentop, and xentrace's xenalyze
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Dashboard", "Stepper", "StepperView", "build_topology", "check_l1e", "compare_pv_hvm",
    "draw_topology", "draw_vga", "explain_mmu_update",
    "format_conversation", "handshake_conversation", "hypercall_counts",
    "load_ipython_extension", "plot_hypercall_counts", "plot_sequence", "run_with_progress",
    "running_intervals", "save_topology", "split_driver_sequence", "swimlanes",
    "vmexit_summary",
]

_WHERE = {
    "Dashboard": "dashboard", "Stepper": "stepper", "StepperView": "stepper",
    "build_topology": "topology", "draw_topology": "topology", "save_topology": "topology",
    "compare_pv_hvm": "traceviews", "hypercall_counts": "traceviews",
    "plot_hypercall_counts": "traceviews", "plot_sequence": "traceviews",
    "split_driver_sequence": "traceviews", "swimlanes": "traceviews",
    "vmexit_summary": "traceviews", "handshake_conversation": "traceviews",
    "format_conversation": "traceviews", "running_intervals": "traceviews",
    "load_ipython_extension": "magics",
    "run_with_progress": "progress",
    "explain_mmu_update": "pagetables", "check_l1e": "pagetables",
    "draw_vga": "display",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'xenlab.views' has no attribute {name!r}")
    return getattr(importlib.import_module(f"xenlab.views.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
