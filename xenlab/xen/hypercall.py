"""Hypercall entry and the dispatch table: one row per hypercall, Xen's numbers.

A 64-bit PV guest calls ``hypercall_page + nr*32``; the stub Xen wrote there
executes ``syscall`` with the number in RAX and arguments in RDI, RSI, RDX,
R10, R8. The CPU layer traps the ``syscall`` and calls ``do_hypercall``,
which looks the number up in ``pv_hypercall_table`` (an unknown or unused
number returns ``-ENOSYS``), runs the handler, writes the result to RAX and
emits one ``hypercall`` trace record with the decoded arguments.

Real Xen: xen/include/hypercall-defs.c, xen/arch/x86/pv/hypercall.c
(pv_hypercall, pv_ring3_init_hypercall_page), xen/arch/x86/hvm/hypercall.c
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xenlab.public.errno import Errno
from xenlab.public.xen import Hypercall
from xenlab.xen import (
    console,
    event_channel,
    grant_table,
    memory,
    mm,
    multicall,
    physdev,
    pv_callback,
    pv_descriptor_tables,
    pv_misc_hypercalls,
    pv_traps,
    schedule,
    version,
    x86_compat,
    xsm_dummy,
)
from xenlab.xen.guest_access import GuestFault, HvmPaging, copy_from_guest, copy_to_guest
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.cpu.x86 import X86Vcpu
    from xenlab.xen.domain import Domain, Vcpu
    from xenlab.xen.setup import XenHost

__all__ = ["PV_HYPERCALL_COST_NS", "HypercallContext", "HypercallEntry", "do_hypercall",
           "pv_hypercall_table"]

Handler = Callable[..., int]


@dataclass(frozen=True)
class HypercallEntry:
    handler: Handler
    nargs: int


#: The PV hypercall table (hypercall-defs.c, the "pv64" column). Numbers not
#: listed here return -ENOSYS, as Xen does for hypercalls a build leaves out.
pv_hypercall_table: dict[int, HypercallEntry] = {
    Hypercall.memory_op: HypercallEntry(memory.do_memory_op, 2),
    Hypercall.set_callbacks: HypercallEntry(pv_callback.do_set_callbacks, 3),
    Hypercall.update_va_mapping: HypercallEntry(mm.do_update_va_mapping, 3),
    Hypercall.mmu_update: HypercallEntry(mm.do_mmu_update, 4),
    Hypercall.mmuext_op: HypercallEntry(mm.do_mmuext_op, 4),
    Hypercall.multicall: HypercallEntry(multicall.do_multicall, 2),
    Hypercall.update_va_mapping_otherdomain: HypercallEntry(
        mm.do_update_va_mapping_otherdomain, 4),
    Hypercall.mca: HypercallEntry(xsm_dummy.do_mca, 1),
    Hypercall.iret: HypercallEntry(pv_callback.do_iret, 0),
    Hypercall.set_gdt: HypercallEntry(pv_descriptor_tables.do_set_gdt, 2),
    Hypercall.stack_switch: HypercallEntry(pv_misc_hypercalls.do_stack_switch, 2),
    Hypercall.fpu_taskswitch: HypercallEntry(pv_misc_hypercalls.do_fpu_taskswitch, 1),
    Hypercall.sched_op_compat: HypercallEntry(schedule.do_sched_op_compat, 2),
    Hypercall.platform_op: HypercallEntry(xsm_dummy.do_platform_op, 1),
    Hypercall.set_debugreg: HypercallEntry(pv_misc_hypercalls.do_set_debugreg, 2),
    Hypercall.get_debugreg: HypercallEntry(pv_misc_hypercalls.do_get_debugreg, 1),
    Hypercall.update_descriptor: HypercallEntry(pv_descriptor_tables.do_update_descriptor, 2),
    Hypercall.event_channel_op_compat: HypercallEntry(x86_compat.do_event_channel_op_compat, 1),
    Hypercall.physdev_op_compat: HypercallEntry(x86_compat.do_physdev_op_compat, 1),
    Hypercall.vm_assist: HypercallEntry(pv_misc_hypercalls.do_vm_assist, 2),
    Hypercall.set_segment_base: HypercallEntry(pv_misc_hypercalls.do_set_segment_base, 2),
    Hypercall.nmi_op: HypercallEntry(pv_callback.do_nmi_op, 2),
    Hypercall.physdev_op: HypercallEntry(physdev.do_physdev_op, 2),
    Hypercall.sysctl: HypercallEntry(xsm_dummy.do_sysctl, 1),
    Hypercall.domctl: HypercallEntry(xsm_dummy.do_domctl, 1),
    Hypercall.kexec_op: HypercallEntry(xsm_dummy.do_kexec_op, 2),
    Hypercall.xenpmu_op: HypercallEntry(xsm_dummy.do_xenpmu_op, 2),
    Hypercall.dm_op: HypercallEntry(xsm_dummy.do_dm_op, 3),
    Hypercall.hypfs_op: HypercallEntry(xsm_dummy.do_hypfs_op, 5),
    Hypercall.set_trap_table: HypercallEntry(pv_traps.do_set_trap_table, 1),
    Hypercall.callback_op: HypercallEntry(pv_callback.do_callback_op, 2),
    Hypercall.set_timer_op: HypercallEntry(schedule.do_set_timer_op, 1),
    Hypercall.xen_version: HypercallEntry(version.do_xen_version, 2),
    Hypercall.console_io: HypercallEntry(console.do_console_io, 3),
    Hypercall.grant_table_op: HypercallEntry(grant_table.do_grant_table_op, 3),
    Hypercall.vcpu_op: HypercallEntry(schedule.do_vcpu_op, 3),
    Hypercall.sched_op: HypercallEntry(schedule.do_sched_op, 2),
    Hypercall.event_channel_op: HypercallEntry(event_channel.do_event_channel_op, 2),
}


# Memoised names for the trace (enum lookups by value are slow; results never change).
_HYPERCALL_NAMES: dict[int, str] = {}
_ENUM_NAMES: dict[tuple[type[enum.IntEnum], int], str] = {}


def _hvm_table() -> dict[int, HypercallEntry]:
    from xenlab.xen.hvm.hvm import do_hvm_op

    return {
        Hypercall.memory_op: HypercallEntry(memory.do_memory_op, 2),
        Hypercall.xen_version: HypercallEntry(version.do_xen_version, 2),
        Hypercall.console_io: HypercallEntry(console.do_console_io, 3),
        Hypercall.grant_table_op: HypercallEntry(grant_table.do_grant_table_op, 3),
        Hypercall.vcpu_op: HypercallEntry(schedule.do_vcpu_op, 3),
        Hypercall.sched_op: HypercallEntry(schedule.do_sched_op, 2),
        Hypercall.set_timer_op: HypercallEntry(schedule.do_set_timer_op, 1),
        Hypercall.event_channel_op: HypercallEntry(event_channel.do_event_channel_op, 2),
        Hypercall.hvm_op: HypercallEntry(do_hvm_op, 2),
    }


#: The HVM hypercall table (hypercall-defs.c, the "hvm64"/"hvm32" columns).
hvm_hypercall_table: dict[int, HypercallEntry] = _hvm_table()


class HypercallContext:
    """What a handler sees: the calling domain and vCPU, guest access, and the decoder."""

    __slots__ = ("cpu", "decoded", "domain", "host", "nr", "vcpu")

    def __init__(self, host: XenHost, domain: Domain, vcpu: Vcpu, cpu: X86Vcpu, nr: int) -> None:
        self.host = host
        self.domain = domain
        self.vcpu = vcpu
        self.cpu = cpu
        self.nr = nr
        self.decoded: dict[str, Any] = {"nr": nr}

    @property
    def now(self) -> int:
        return self.host.now()

    @property
    def compat(self) -> bool:
        """A 32-bit caller: guest handles, longs and xen_pfn_t are 4 bytes (Xen's compat
        layer, xen/common/compat/); an HVM guest when the call came from 32-bit code."""
        return not self.cpu.hypercall_64

    def decode(self, **fields: Any) -> None:
        self.decoded.update(fields)

    @staticmethod
    def enum_name(enum_cls: type[enum.IntEnum], value: int) -> str | int:
        key = (enum_cls, value)
        name = _ENUM_NAMES.get(key)
        if name is not None:
            return name
        try:
            name = enum_cls(value).name
        except ValueError:
            return value
        _ENUM_NAMES[key] = name  # only valid members: bounded by the enums' sizes
        return name

    def _cr3(self) -> int | None:
        # HVM guests pass guest-physical addresses while paging is off (hvmloader, BIOS),
        # linear ones through their own page tables once it is on (_hvm_paging)
        return self.cpu.reg("cr3") if self.domain.is_pv else None

    def _hvm_paging(self) -> HvmPaging | None:
        return None if self.domain.is_pv else self.cpu.paging_state()

    def copy_from_guest(self, va: int, size: int) -> bytes | None:
        try:
            return copy_from_guest(self.host.mem, self.domain, self._cr3(), va, size,
                                   hvm=self._hvm_paging())
        except GuestFault as fault:
            self.decoded["efault"] = str(fault)
            return None

    def copy_to_guest(self, va: int, data: bytes) -> bool:
        try:
            copy_to_guest(self.host.mem, self.domain, self._cr3(), va, data,
                          hvm=self._hvm_paging())
        except GuestFault as fault:
            self.decoded["efault"] = str(fault)
            return False
        return True


def hypercall_name(nr: int) -> str:
    name = _HYPERCALL_NAMES.get(nr)
    if name is not None:
        return name
    try:
        name = Hypercall(nr).name
    except ValueError:
        return f"hypercall_{nr}"
    _HYPERCALL_NAMES[nr] = name
    return name


#: Virtual time a PV hypercall costs its guest: ``syscall`` into Xen, the handler's
#: entry and exit, ``sysret`` back (xenlab's model, a round figure like the VM exit
#: costs in xen/hvm/io.py; the handler's own work is not timed).
PV_HYPERCALL_COST_NS = 200


def do_hypercall(host: XenHost, v: Vcpu, cpu: X86Vcpu, via: str) -> None:
    """Entry from the CPU layer: decode RAX and the argument registers, dispatch, return."""
    args = cpu.hypercall_args()  # one C call for RAX, RDI, RSI, RDX, R10, R8
    nr = args[0]
    d = v.domain
    d.hypercall_count += 1
    ctx = HypercallContext(host, d, v, cpu, nr)
    entry = (pv_hypercall_table if d.is_pv else hvm_hypercall_table).get(nr)
    if entry is None:
        ret = -Errno.ENOSYS
        ctx.decoded.update({f"arg{i}": hex(a) for i, a in enumerate(args[1:6], 1) if a})
    else:
        ret = entry.handler(ctx, *args[1 : 1 + entry.nargs])
    cpu.set_return(ret)
    now = host.now()
    host.update_vcpu_system_time(v, now)
    if host.trace.enabled:
        host.trace.emit(now, d.domid, v.vcpu_id, Kind.HYPERCALL, hypercall_name(nr),
                        ctx.decoded, int(ret))
