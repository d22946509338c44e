"""Hypercall numbers, domain ids, VIRQs, start_info, shared_info and vcpu_info.

The structures are the x86-64 layouts (``unsigned long`` and ``xen_pfn_t``
are 64-bit); ``tests/test_abi.py`` compiles a C program against Xen's own
``xen/xen.h`` and compares every offset and size.

Real Xen: xen/include/public/xen.h, xen/include/public/arch-x86/xen-x86_64.h
"""

from __future__ import annotations

import ctypes
import enum

__all__ = [
    "DOMID_FIRST_RESERVED",
    "DOMID_IO",
    "DOMID_SELF",
    "DOMID_XEN",
    "FLAT_KERNEL_CS",
    "FLAT_KERNEL_SS",
    "FLAT_RING3_CS64",
    "FLAT_RING3_DS64",
    "FLAT_RING3_SS64",
    "HYPERCALL_PAGE_SLOTS",
    "HYPERCALL_STUB_SIZE",
    "HYPERVISOR_VIRT_END",
    "HYPERVISOR_VIRT_START",
    "MACH2PHYS_VIRT_END",
    "MACH2PHYS_VIRT_START",
    "MAX_VIRT_CPUS",
    "MMU_MACHPHYS_UPDATE",
    "MMU_NORMAL_PT_UPDATE",
    "MMU_PT_UPDATE_NO_TRANSLATE",
    "MMU_PT_UPDATE_PRESERVE_AD",
    "SIF_INITDOMAIN",
    "SIF_PRIVILEGED",
    "START_INFO_MAGIC_X86_64",
    "Hypercall",
    "MmuextCmd",
    "MultiCallEntry",
    "SharedInfo",
    "StartInfo",
    "VcpuInfo",
    "VcpuTimeInfo",
    "Virq",
]


class Hypercall(enum.IntEnum):
    """``__HYPERVISOR_*``: the hypercall numbers (public/xen.h)."""

    set_trap_table = 0
    mmu_update = 1
    set_gdt = 2
    stack_switch = 3
    set_callbacks = 4
    fpu_taskswitch = 5
    sched_op_compat = 6
    platform_op = 7
    set_debugreg = 8
    get_debugreg = 9
    update_descriptor = 10
    memory_op = 12
    multicall = 13
    update_va_mapping = 14
    set_timer_op = 15
    event_channel_op_compat = 16
    xen_version = 17
    console_io = 18
    physdev_op_compat = 19
    grant_table_op = 20
    vm_assist = 21
    update_va_mapping_otherdomain = 22
    iret = 23
    vcpu_op = 24
    set_segment_base = 25
    mmuext_op = 26
    xsm_op = 27
    nmi_op = 28
    sched_op = 29
    callback_op = 30
    xenoprof_op = 31
    event_channel_op = 32
    physdev_op = 33
    hvm_op = 34
    sysctl = 35
    domctl = 36
    kexec_op = 37
    tmem_op = 38
    argo_op = 39
    xenpmu_op = 40
    dm_op = 41
    hypfs_op = 42
    mca = 48                           # __HYPERVISOR_arch_0 on x86


#: Xen writes one 32-byte stub per hypercall number into the hypercall page.
HYPERCALL_STUB_SIZE = 32
HYPERCALL_PAGE_SLOTS = 4096 // HYPERCALL_STUB_SIZE  # 128

DOMID_FIRST_RESERVED = 0x7FF0
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2
DOMID_COW = 0x7FF3
DOMID_INVALID = 0x7FF4
DOMID_IDLE = 0x7FFF


class Virq(enum.IntEnum):
    """``VIRQ_*``: virtual interrupts Xen raises (public/xen.h)."""

    VIRQ_TIMER = 0
    VIRQ_DEBUG = 1
    VIRQ_CONSOLE = 2
    VIRQ_DOM_EXC = 3
    VIRQ_TBUF = 4
    VIRQ_DEBUGGER = 6
    VIRQ_XENOPROF = 7
    VIRQ_CON_RING = 8
    VIRQ_PCPU_STATE = 9
    VIRQ_MEM_EVENT = 10
    VIRQ_ARGO = 11
    VIRQ_ENOMEM = 12
    VIRQ_XENPMU = 13


NR_VIRQS = 24
MAX_VIRT_CPUS = 32  # legacy vcpu_info slots in shared_info on x86

# Segment selectors of a 64-bit PV guest (arch-x86/xen-x86_64.h).
FLAT_RING3_CS32 = 0xE023
FLAT_RING3_CS64 = 0xE033
FLAT_RING3_DS64 = 0x0000
FLAT_RING3_SS64 = 0xE02B
FLAT_KERNEL_CS = FLAT_RING3_CS64  # 64-bit PV kernels run in ring 3
FLAT_KERNEL_SS = FLAT_RING3_SS64
#: Xen's own code selector (__HYPERVISOR_CS in xen/arch/x86/include/asm/desc.h).
HYPERVISOR_CS = 0xE008
HYPERVISOR_VIRT_START = 0xFFFF800000000000
HYPERVISOR_VIRT_END = 0xFFFF880000000000
#: the read-only machine-to-phys table every PV guest sees (arch-x86/xen-x86_64.h)
MACH2PHYS_VIRT_START = 0xFFFF800000000000
MACH2PHYS_VIRT_END = 0xFFFF804000000000

# mmu_update's request types, in the low two bits of ``ptr`` (public/xen.h)
MMU_NORMAL_PT_UPDATE = 0
MMU_MACHPHYS_UPDATE = 1
MMU_PT_UPDATE_PRESERVE_AD = 2
MMU_PT_UPDATE_NO_TRANSLATE = 3


class MmuextCmd(enum.IntEnum):
    """``struct mmuext_op``'s ``cmd`` (public/xen.h)."""

    MMUEXT_PIN_L1_TABLE = 0
    MMUEXT_PIN_L2_TABLE = 1
    MMUEXT_PIN_L3_TABLE = 2
    MMUEXT_PIN_L4_TABLE = 3
    MMUEXT_UNPIN_TABLE = 4
    MMUEXT_NEW_BASEPTR = 5
    MMUEXT_TLB_FLUSH_LOCAL = 6
    MMUEXT_INVLPG_LOCAL = 7
    MMUEXT_TLB_FLUSH_MULTI = 8
    MMUEXT_INVLPG_MULTI = 9
    MMUEXT_TLB_FLUSH_ALL = 10
    MMUEXT_INVLPG_ALL = 11
    MMUEXT_FLUSH_CACHE = 12
    MMUEXT_SET_LDT = 13
    MMUEXT_NEW_USER_BASEPTR = 15
    MMUEXT_CLEAR_PAGE = 16
    MMUEXT_COPY_PAGE = 17
    MMUEXT_FLUSH_CACHE_GLOBAL = 18
    MMUEXT_MARK_SUPER = 19
    MMUEXT_UNMARK_SUPER = 20


class MultiCallEntry(ctypes.Structure):
    """``struct multicall_entry`` (x86-64): op, result, args[6]."""

    _fields_ = (("op", ctypes.c_uint64), ("result", ctypes.c_uint64),
                ("args", ctypes.c_uint64 * 6))

# start_info.flags
SIF_PRIVILEGED = 1 << 0
SIF_INITDOMAIN = 1 << 1
SIF_MULTIBOOT_MOD = 1 << 2
SIF_MOD_START_PFN = 1 << 3
SIF_VIRT_P2M_4TOOLS = 1 << 4
SIF_PM_MASK = 0xFF << 8

START_INFO_MAGIC_X86_64 = b"xen-3.0-x86_64"
START_INFO_MAGIC_X86_32P = b"xen-3.0-x86_32p"

_ulong = ctypes.c_uint64
xen_pfn_t = ctypes.c_uint64


class _ConsoleDomU(ctypes.Structure):
    _fields_ = (("mfn", xen_pfn_t), ("evtchn", ctypes.c_uint32))


class _ConsoleDom0(ctypes.Structure):
    _fields_ = (("info_off", ctypes.c_uint32), ("info_size", ctypes.c_uint32))


class _Console(ctypes.Union):
    _fields_ = (("domU", _ConsoleDomU), ("dom0", _ConsoleDom0))


class StartInfo(ctypes.Structure):
    """``struct start_info``: what a PV guest finds at RSI on entry."""

    _fields_ = (
        ("magic", ctypes.c_char * 32),
        ("nr_pages", _ulong),
        ("shared_info", _ulong),
        ("flags", ctypes.c_uint32),
        ("store_mfn", xen_pfn_t),
        ("store_evtchn", ctypes.c_uint32),
        ("console", _Console),
        ("pt_base", _ulong),
        ("nr_pt_frames", _ulong),
        ("mfn_list", _ulong),
        ("mod_start", _ulong),
        ("mod_len", _ulong),
        ("cmd_line", ctypes.c_char * 1024),
        ("first_p2m_pfn", _ulong),
        ("nr_p2m_frames", _ulong),
    )


class VcpuTimeInfo(ctypes.Structure):
    """``struct vcpu_time_info``: the guest's clock, updated by Xen."""

    _fields_ = (
        ("version", ctypes.c_uint32),
        ("pad0", ctypes.c_uint32),
        ("tsc_timestamp", ctypes.c_uint64),
        ("system_time", ctypes.c_uint64),
        ("tsc_to_system_mul", ctypes.c_uint32),
        ("tsc_shift", ctypes.c_int8),
        ("flags", ctypes.c_uint8),
        ("pad1", ctypes.c_uint8 * 2),
    )


class ArchVcpuInfo(ctypes.Structure):
    _fields_ = (("cr2", _ulong), ("pad", _ulong))


class VcpuInfo(ctypes.Structure):
    """``struct vcpu_info``: per-vCPU event flags and time (64 bytes)."""

    _fields_ = (
        ("evtchn_upcall_pending", ctypes.c_uint8),
        ("evtchn_upcall_mask", ctypes.c_uint8),
        ("evtchn_pending_sel", _ulong),
        ("arch", ArchVcpuInfo),
        ("time", VcpuTimeInfo),
    )


class ArchSharedInfo(ctypes.Structure):
    _fields_ = (
        ("max_pfn", _ulong),
        ("pfn_to_mfn_frame_list_list", xen_pfn_t),
        ("nmi_reason", _ulong),
        ("p2m_cr3", _ulong),
        ("p2m_vaddr", _ulong),
        ("p2m_generation", _ulong),
    )


class SharedInfo(ctypes.Structure):
    """``struct shared_info``: the page Xen and a guest share (event bits, clock)."""

    _fields_ = (
        ("vcpu_info", VcpuInfo * MAX_VIRT_CPUS),
        ("evtchn_pending", _ulong * 64),
        ("evtchn_mask", _ulong * 64),
        ("wc_version", ctypes.c_uint32),
        ("wc_sec", ctypes.c_uint32),
        ("wc_nsec", ctypes.c_uint32),
        ("wc_sec_hi", ctypes.c_uint32),
        ("arch", ArchSharedInfo),
    )


def offsetof(struct: type[ctypes.Structure], dotted: str) -> int:
    """Offset of a (possibly nested, ``a.b``) field, like C's ``offsetof``."""
    off = 0
    cls: type = struct
    for part in dotted.split("."):
        field = getattr(cls, part)  # ctypes field descriptor, not dispatch
        off += field.offset
        cls = dict(cls._fields_)[part]
    return off
