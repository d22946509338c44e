"""HVM: hvm_op, HVM parameters, the ioreq structure, hvm_info_table and hvm_start_info.

Real Xen: xen/include/public/hvm/hvm_op.h, hvm/params.h, hvm/ioreq.h,
hvm/hvm_info_table.h, arch-x86/hvm/start_info.h
"""

from __future__ import annotations

import ctypes
import enum
import struct

__all__ = [
    "HVM_INFO_PADDR",
    "HVM_START_MAGIC_VALUE",
    "HvmOp",
    "HvmParam",
    "IoreqState",
    "IoreqType",
    "hvm_info_table",
]


class HvmOp(enum.IntEnum):
    HVMOP_set_param = 0
    HVMOP_get_param = 1
    HVMOP_set_pci_intx_level = 2
    HVMOP_set_isa_irq_level = 3
    HVMOP_set_pci_link_route = 4
    HVMOP_flush_tlbs = 5
    HVMOP_pagetable_dying = 9
    HVMOP_get_time = 10


class HvmParam(enum.IntEnum):
    HVM_PARAM_CALLBACK_IRQ = 0
    HVM_PARAM_STORE_PFN = 1
    HVM_PARAM_STORE_EVTCHN = 2
    HVM_PARAM_PAE_ENABLED = 4
    HVM_PARAM_IOREQ_PFN = 5
    HVM_PARAM_BUFIOREQ_PFN = 6
    HVM_PARAM_VIRIDIAN = 9
    HVM_PARAM_TIMER_MODE = 10
    HVM_PARAM_HPET_ENABLED = 11
    HVM_PARAM_IDENT_PT = 12
    HVM_PARAM_DM_DOMAIN = 13
    HVM_PARAM_ACPI_S_STATE = 14
    HVM_PARAM_VM86_TSS = 15
    HVM_PARAM_VPT_ALIGN = 16
    HVM_PARAM_CONSOLE_PFN = 17
    HVM_PARAM_CONSOLE_EVTCHN = 18
    HVM_PARAM_ACPI_IOPORTS_LOCATION = 19
    HVM_PARAM_BUFIOREQ_EVTCHN = 26
    HVM_PARAM_TRIPLE_FAULT_REASON = 31
    HVM_PARAM_IOREQ_SERVER_PFN = 32
    HVM_PARAM_NR_IOREQ_SERVER_PAGES = 33


HVM_NR_PARAMS = 39


class XenHvmParam(ctypes.Structure):
    """``struct xen_hvm_param``"""

    _fields_ = (("domid", ctypes.c_uint16), ("pad", ctypes.c_uint16),
                ("index", ctypes.c_uint32), ("value", ctypes.c_uint64))


class IoreqState(enum.IntEnum):
    STATE_IOREQ_NONE = 0
    STATE_IOREQ_READY = 1
    STATE_IOREQ_INPROCESS = 2
    STATE_IORESP_READY = 3


class IoreqType(enum.IntEnum):
    IOREQ_TYPE_PIO = 0
    IOREQ_TYPE_COPY = 1
    IOREQ_TYPE_PCI_CONFIG = 2
    IOREQ_TYPE_TIMEOFFSET = 7
    IOREQ_TYPE_INVALIDATE = 8


IOREQ_READ = 1
IOREQ_WRITE = 0
# struct ioreq's flag byte: uint8_t state:4, data_is_ptr:1, dir:1, df:1, _pad1:1
IOREQ_DATA_IS_PTR = 1 << 4   # ``data`` is a guest-physical address of ``count`` elements
IOREQ_DIR_SHIFT = 5

HVM_INFO_PADDR = 0x9F800
HVM_MAX_VCPUS = 128
HVM_START_MAGIC_VALUE = 0x336EC578


def hvm_info_table(nr_vcpus: int, low_mem_pgend: int, reserved_mem_pgstart: int = 0xFC000,
                   high_mem_pgend: int = 0) -> bytes:
    """``struct hvm_info_table`` with a valid checksum (every byte sums to zero)."""
    online = bytearray((HVM_MAX_VCPUS + 7) // 8)
    for i in range(nr_vcpus):
        online[i // 8] |= 1 << (i % 8)
    body = struct.pack("<8sIBB2xIIII", b"HVM INFO", 0, 0, 0, nr_vcpus, low_mem_pgend,
                       reserved_mem_pgstart, high_mem_pgend) + bytes(online)
    body = body[:8] + struct.pack("<I", len(body)) + body[12:]
    checksum = (-sum(body)) & 0xFF
    return body[:12] + bytes([checksum]) + body[13:]


def hvm_start_info(modlist_paddr: int, nr_modules: int, cmdline_paddr: int = 0,
                   rsdp_paddr: int = 0) -> bytes:
    """``struct hvm_start_info`` (version 1): magic, version, flags, nr_modules, modlist_paddr,
    cmdline_paddr, rsdp_paddr, memmap_paddr, memmap_entries, reserved."""
    return struct.pack("<IIIIQQQQII", HVM_START_MAGIC_VALUE, 1, 0, nr_modules, modlist_paddr,
                       cmdline_paddr, rsdp_paddr, 0, 0, 0)


def hvm_modlist_entry(paddr: int, size: int, cmdline_paddr: int) -> bytes:
    """``struct hvm_modlist_entry { u64 paddr, size, cmdline_paddr, reserved; }``"""
    return struct.pack("<QQQQ", paddr, size, cmdline_paddr, 0)
