"""multicall: many hypercalls for the price of one entry into Xen.

A PV kernel batches work (a page-table update, a TLB flush, a stack switch) into
an array of ``struct multicall_entry {op; result; args[6]}`` and calls
``HYPERVISOR_multicall(call_list, nr_calls)`` once; Xen runs each entry as the
hypercall ``op`` with those arguments and writes its return value into
``result``. A multicall cannot contain another multicall or ``iret`` (their
results are ``-ENOSYS``). Each entry is traced as its own hypercall record
(``via: multicall``), so counts by kind stay right.

Real Xen: xen/common/multicall.c (do_multicall), xen/include/hypercall-defs.c
(the "mcall" column)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from xenlab.public.errno import Errno
from xenlab.public.xen import Hypercall
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["do_multicall"]

ENTRY = struct.Struct("<QQ6Q")  # op, result, args[6]
NOT_IN_MULTICALL = frozenset({Hypercall.multicall, Hypercall.iret})


def do_multicall(ctx: HypercallContext, call_list: int, nr_calls: int) -> int:
    """``long do_multicall(XEN_GUEST_HANDLE_PARAM(multicall_entry_t) call_list, uint32_t
    nr_calls)``"""
    from xenlab.xen.hypercall import HypercallContext, hypercall_name, pv_hypercall_table

    nr_calls &= 0xFFFFFFFF
    ctx.decode(nr_calls=nr_calls)
    if not ctx.domain.is_pv:
        return -Errno.ENOSYS
    if nr_calls > 4096:
        return -Errno.EINVAL
    host = ctx.host
    for i in range(nr_calls):
        at = call_list + ENTRY.size * i
        raw = ctx.copy_from_guest(at, ENTRY.size)
        if raw is None:
            return -Errno.EFAULT
        op, _result, *args = ENTRY.unpack(raw)
        entry = None if op in NOT_IN_MULTICALL else pv_hypercall_table.get(op)
        sub = HypercallContext(host, ctx.domain, ctx.vcpu, ctx.cpu, op)
        sub.decoded["via"] = "multicall"
        if entry is None:
            ret = -Errno.ENOSYS
        else:
            ret = entry.handler(sub, *args[: entry.nargs])
        if host.trace.enabled:
            host.trace.emit(host.now(), ctx.domain.domid, ctx.vcpu.vcpu_id, Kind.HYPERCALL,
                            hypercall_name(op), sub.decoded, int(ret))
        if not ctx.copy_to_guest(at + 8, struct.pack("<q", ret)):
            return -Errno.EFAULT
        if ctx.domain.is_shutting_down:
            break
    return 0
