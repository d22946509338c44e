"""Dom0's hypercalls, as the trace records them.

xenlab's Dom0 is Python: its toolstack, daemons, backends and device model call
the hypervisor's functions directly instead of executing ``syscall`` in a
hypercall stub. On a real host each of those calls is a hypercall Dom0's kernel
makes (in-kernel for the backends' grant maps and event channels, through
``/dev/xen/privcmd`` for the toolstack's domctls and the device model's dm_ops),
and xentrace shows it like any guest's. So every such call emits one record
shaped like a guest's (``xenlab/xen/hypercall.py:do_hypercall``): kind
``hypercall``, ``dom`` 0, vCPU 0, the hypercall's name, ``args`` starting with
its number ``nr`` and the same decoding a guest's gets (``cmd`` by name, the
operation's fields, ``count`` for a batch), and the return value. Where Dom0 on
real Xen batches (one ``GNTTABOP_map_grant_ref`` for every segment of a blkif
request), the record is one hypercall with ``count`` N. Dom0's hypercall
counter (``Domain.hypercall_count``) counts them, as it does a guest's.

Real Xen: Linux drivers/xen/privcmd.c (IOCTL_PRIVCMD_HYPERCALL), the hypercalls
of drivers/xen/events/events_base.c, drivers/xen/grant-table.c and
arch/x86/xen/mmu_pv.c (xen_remap_pfn); tools/libs/ctrl (xc_domain_*)
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from xenlab.public.xen import Hypercall
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.setup import XenHost

__all__ = ["dom0_hypercall", "dom0_hypercall_deferred", "op_name"]

_KIND_HYPERCALL = Kind.HYPERCALL
_NAMES: dict[tuple[type[enum.IntEnum], int], str] = {}


def op_name(enum_cls: type[enum.IntEnum], value: int) -> str:
    """A command's name (memoised; every caller passes a member of ``enum_cls``)."""
    key = (enum_cls, value)
    name = _NAMES.get(key)
    if name is None:
        name = _NAMES[key] = enum_cls(value).name
    return name


def dom0_hypercall(host: XenHost, nr: Hypercall, args: dict[str, Any], ret: int) -> None:
    """Record one hypercall Dom0 made: ``args`` as a guest's record decodes them."""
    dom0 = host.domains.get(0)
    if dom0 is not None:
        dom0.hypercall_count += 1
    trace = host.trace
    if trace.enabled:
        trace.emit(host.now(), 0, 0, _KIND_HYPERCALL, nr.name, {"nr": int(nr), **args}, ret)


def dom0_hypercall_deferred(host: XenHost, name: str, render: Any, values: tuple[Any, ...],
                            ret: int) -> None:
    """``dom0_hypercall`` for the hot paths (an ioreq's notification): ``render(*values)``
    makes the args (``nr`` first) when the record is first read."""
    dom0 = host.domains.get(0)
    if dom0 is not None:
        dom0.hypercall_count += 1
    trace = host.trace
    if trace.enabled:
        trace.emit_deferred(host.now(), 0, 0, _KIND_HYPERCALL, name, render, values, ret)
