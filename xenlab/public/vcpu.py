"""vcpu_op sub-operations and the runstate structure.

Real Xen: xen/include/public/vcpu.h, xen/include/public/arch-x86/xen.h (vcpu_guest_context)
"""

from __future__ import annotations

import ctypes
import enum

__all__ = [
    "CpuUserRegs",
    "Runstate",
    "TrapInfoStruct",
    "VGCF_in_kernel",
    "VGCF_online",
    "VcpuGuestContext",
    "VcpuOp",
    "VcpuRunstateInfo",
]


class VcpuOp(enum.IntEnum):
    VCPUOP_initialise = 0
    VCPUOP_up = 1
    VCPUOP_down = 2
    VCPUOP_is_up = 3
    VCPUOP_get_runstate_info = 4
    VCPUOP_register_runstate_memory_area = 5
    VCPUOP_set_periodic_timer = 6
    VCPUOP_stop_periodic_timer = 7
    VCPUOP_set_singleshot_timer = 8
    VCPUOP_stop_singleshot_timer = 9
    VCPUOP_register_vcpu_info = 10
    VCPUOP_send_nmi = 11
    VCPUOP_get_physid = 12
    VCPUOP_register_vcpu_time_memory_area = 13


class Runstate(enum.IntEnum):
    RUNSTATE_running = 0
    RUNSTATE_runnable = 1
    RUNSTATE_blocked = 2
    RUNSTATE_offline = 3


class VcpuRunstateInfo(ctypes.Structure):
    """``struct vcpu_runstate_info``"""

    _fields_ = (
        ("state", ctypes.c_int32),
        ("state_entry_time", ctypes.c_uint64),
        ("time", ctypes.c_uint64 * 4),
    )


# --------------------------------------------------------------------------------------
# VCPUOP_initialise's argument (x86-64): xen/include/public/arch-x86/xen.h and
# arch-x86/xen-x86_64.h. 5,168 bytes.
class CpuUserRegs(ctypes.Structure):
    """``struct cpu_user_regs`` (x86-64)"""

    _fields_ = [(r, ctypes.c_uint64) for r in (
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
        "rdx", "rsi", "rdi")] + [
        ("error_code", ctypes.c_uint32), ("entry_vector", ctypes.c_uint32),
        ("rip", ctypes.c_uint64), ("cs", ctypes.c_uint16), ("_pad0", ctypes.c_uint16),
        ("saved_upcall_mask", ctypes.c_uint8), ("_pad1", ctypes.c_uint8 * 3),
        ("rflags", ctypes.c_uint64), ("rsp", ctypes.c_uint64),
        ("ss", ctypes.c_uint16), ("_pad2", ctypes.c_uint16 * 3),
        ("es", ctypes.c_uint16), ("_pad3", ctypes.c_uint16 * 3),
        ("ds", ctypes.c_uint16), ("_pad4", ctypes.c_uint16 * 3),
        ("fs", ctypes.c_uint16), ("_pad5", ctypes.c_uint16 * 3),
        ("gs", ctypes.c_uint16), ("_pad6", ctypes.c_uint16 * 3)]


class TrapInfoStruct(ctypes.Structure):
    """``struct trap_info`` (x86-64)"""

    _fields_ = [("vector", ctypes.c_uint8), ("flags", ctypes.c_uint8),
                ("cs", ctypes.c_uint16), ("_pad", ctypes.c_uint32),
                ("address", ctypes.c_uint64)]


class VcpuGuestContext(ctypes.Structure):
    """``struct vcpu_guest_context`` (x86-64): a vCPU's whole PV state, as
    ``VCPUOP_initialise`` and ``XEN_DOMCTL_setvcpucontext`` take it."""

    _fields_ = [("fpu_ctxt", ctypes.c_char * 512), ("flags", ctypes.c_uint64),
                ("user_regs", CpuUserRegs), ("trap_ctxt", TrapInfoStruct * 256),
                ("ldt_base", ctypes.c_uint64), ("ldt_ents", ctypes.c_uint64),
                ("gdt_frames", ctypes.c_uint64 * 16), ("gdt_ents", ctypes.c_uint64),
                ("kernel_ss", ctypes.c_uint64), ("kernel_sp", ctypes.c_uint64),
                ("ctrlreg", ctypes.c_uint64 * 8), ("debugreg", ctypes.c_uint64 * 8),
                ("event_callback_eip", ctypes.c_uint64),
                ("failsafe_callback_eip", ctypes.c_uint64),
                ("syscall_callback_eip", ctypes.c_uint64), ("vm_assist", ctypes.c_uint64),
                ("fs_base", ctypes.c_uint64), ("gs_base_kernel", ctypes.c_uint64),
                ("gs_base_user", ctypes.c_uint64)]


# its flags: VGCF_in_kernel = 1 << 2, VGCF_online = 1 << 5; the *_disables_events ones are
# xenlab.xen.pv_traps'
VGCF_in_kernel = 1 << 2
VGCF_online = 1 << 5
assert ctypes.sizeof(CpuUserRegs) == 200 and ctypes.sizeof(VcpuGuestContext) == 5168
