"""What a PV vCPU needs from Xen's side: the hypercall page, the GDT, the way in.

* ``pv_hypercall_page``: 128 stubs of 32 bytes, one per hypercall number, that
  Xen writes into the page a PV kernel names in its HYPERCALL_PAGE ELF note.
  The 64-bit stub is ``push %rcx; push %r11; mov $nr,%eax; syscall;
  pop %r11; pop %rcx; ret``; unused bytes are ``int3`` (0xCC).
* Xen's per-domain area (``PERDOMAIN_VIRT_START``, 0xffff820000000000, L4 slot
  260), present in every PV guest's L4 table and supervisor-only: the GDT with
  Xen's reserved descriptors (FLAT_RING3_CS64 0xe033, FLAT_RING3_SS64 0xe02b,
  Xen's own 0xe008) and a tiny ``iretq`` trampoline, which is how Xen first
  enters a 64-bit PV kernel in ring 3.
* ``describe_fault``: the ``(XEN)`` lines printed when a guest fault crashes a
  domain.

Real Xen: xen/arch/x86/pv/hypercall.c (pv_ring3_init_hypercall_page),
xen/arch/x86/include/asm/desc.h (FIRST_RESERVED_GDT_ENTRY), xen/arch/x86/traps.c
"""

from __future__ import annotations

import struct

from xenlab.public.xen import (
    FLAT_RING3_CS32,
    FLAT_RING3_CS64,
    FLAT_RING3_SS64,
    HYPERCALL_PAGE_SLOTS,
    HYPERCALL_STUB_SIZE,
    HYPERVISOR_CS,
    Hypercall,
)

__all__ = [
    "GDT_VA",
    "XEN_STACK_VA",
    "XEN_STUB_VA",
    "gdt_page",
    "pv_hypercall_page",
    "stub_page",
]

FIRST_RESERVED_GDT_PAGE = 14
FIRST_RESERVED_GDT_ENTRY = FIRST_RESERVED_GDT_PAGE * 512
#: Xen's per-domain mappings (GDT, LDT) in its layout (xen/arch/x86/include/asm/config.h);
#: HYPERVISOR_VIRT_START itself is the read-only machine-to-phys table (slot 256)
PERDOMAIN_VIRT_START = 0xFFFF820000000000
GDT_VA = PERDOMAIN_VIRT_START
GDT_PAGES = 16
GDT_LIMIT = GDT_PAGES * 4096 - 1
XEN_STUB_VA = PERDOMAIN_VIRT_START + 0x10000  # after the 16 GDT pages
XEN_STACK_VA = PERDOMAIN_VIRT_START + 0x11000


def _pv64_stub(nr: int) -> bytes:
    if nr == Hypercall.iret:
        # push %rcx; push %r11; push %rax; mov $__HYPERVISOR_iret,%eax; syscall
        return bytes.fromhex("51415350b8") + struct.pack("<I", nr) + bytes.fromhex("0f05")
    # push %rcx; push %r11; mov $nr,%eax; syscall; pop %r11; pop %rcx; ret
    return bytes.fromhex("514153b8") + struct.pack("<I", nr) + bytes.fromhex("0f05415b59c3")


def _hvm_stub(nr: int) -> bytes:
    if nr == Hypercall.iret:
        return bytes.fromhex("0f0b")  # ud2: HVM guests have no iret hypercall
    # mov $nr,%eax; vmcall; ret
    return b"\xb8" + struct.pack("<I", nr) + bytes.fromhex("0f01c1c3")


def pv_hypercall_page() -> bytes:
    """The 4 KiB page Xen writes for a 64-bit PV guest."""
    page = bytearray(b"\xcc" * 4096)
    for nr in range(HYPERCALL_PAGE_SLOTS):
        stub = _pv64_stub(nr)
        page[nr * HYPERCALL_STUB_SIZE : nr * HYPERCALL_STUB_SIZE + len(stub)] = stub
    return bytes(page)


def hvm_hypercall_page() -> bytes:
    """The page Xen writes for an HVM guest on Intel VT (vmcall stubs)."""
    page = bytearray(b"\xcc" * 4096)
    for nr in range(HYPERCALL_PAGE_SLOTS):
        stub = _hvm_stub(nr)
        page[nr * HYPERCALL_STUB_SIZE : nr * HYPERCALL_STUB_SIZE + len(stub)] = stub
    return bytes(page)


def _descriptor(access: int, flags: int) -> bytes:
    """A flat segment descriptor: base 0, limit 0xfffff, given access byte and flags nibble."""
    return struct.pack("<HHBBBB", 0xFFFF, 0, 0, access, (flags << 4) | 0xF, 0)


def gdt_page() -> bytes:
    """GDT page 14: Xen's reserved descriptors, selectors 0xe000 upwards.

    Accessed bits are preset, so the CPU never writes to this read-only page.
    """
    page = bytearray(4096)
    entries = {
        HYPERVISOR_CS: _descriptor(0x9B, 0xA),      # ring 0, 64-bit code (Xen)
        HYPERVISOR_CS + 8: _descriptor(0x93, 0xC),  # ring 0 data
        FLAT_RING3_CS32: _descriptor(0xFB, 0xC),    # ring 3, 32-bit code
        FLAT_RING3_SS64: _descriptor(0xF3, 0xC),    # ring 3 data/stack (0xe02b)
        FLAT_RING3_CS64: _descriptor(0xFB, 0xA),    # ring 3, 64-bit code (0xe033)
    }
    for selector, desc in entries.items():
        index = (selector >> 3) - FIRST_RESERVED_GDT_ENTRY
        page[index * 8 : index * 8 + 8] = desc
    return bytes(page)


def stub_page() -> bytes:
    """Xen's way into the guest: ``iretq`` (48 cf) with a frame prepared on Xen's stack."""
    return bytes.fromhex("48cf") + b"\xcc" * 4094


def iret_frame(rip: int, rsp: int, rflags: int = 0x202) -> bytes:
    """The five quadwords ``iretq`` pops to drop to ring 3: RIP, CS, RFLAGS, RSP, SS."""
    return struct.pack("<5Q", rip, FLAT_RING3_CS64, rflags, rsp, FLAT_RING3_SS64)
