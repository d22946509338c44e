"""PVH guests and XENMEM_add_to_physmap: Xen pages put over the guest's RAM.

A PVH kernel maps shared_info (and grant table frames) with ``XENMEM_add_to_physmap``
at a gfn of its choice; Linux picks a page of its own RAM (a brk page). Xen then
takes the RAM frame that was there out of the P2M and frees it back to the domain's
reservation (``xenmem_add_to_physmap_one``: ``guest_remove_page``), and unhooks the
Xen page from the gfn it had before. The guests here are a few hand-encoded 32-bit
instructions in an ELF with a ``XEN_ELFNOTE_PHYS32_ENTRY`` note (tests build it), so
each test says exactly what the guest did.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from xenlab.lab import Lab
from xenlab.public.memory import MemoryOp
from xenlab.public.xen import DOMID_SELF, Hypercall
from xenlab.tools.libs.guest.xg_dom_hvm import load_pvh_kernel
from xenlab.xen.domain import INVALID_MFN
from xenlab.xen.page_alloc import FREE

XEN_ELFNOTE_PHYS32_ENTRY = 18
XENMAPSPACE_shared_info, XENMAPSPACE_grant_table = 0, 1


def pvh_elf(code: bytes, paddr: int = 0x100000, bss: int = 0) -> bytes:
    """An ELF32 x86 PVH kernel: one PT_LOAD of ``code`` at ``paddr`` (its entry point,
    plus ``bss`` zeroed bytes) and a PT_NOTE with XEN_ELFNOTE_PHYS32_ENTRY."""
    note = struct.pack("<III4sI", 4, 4, XEN_ELFNOTE_PHYS32_ENTRY, b"Xen\0", paddr)
    phoff, load_off = 52, 0x1000
    note_off = phoff + 2 * 32
    ehdr = struct.pack("<4sBBBB8sHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, bytes(8),
                       2, 3, 1, paddr, phoff, 0, 0, 52, 32, 2, 40, 0, 0)
    load = struct.pack("<IIIIIIII", 1, load_off, paddr, paddr, len(code), len(code) + bss,
                       7, 0x1000)
    notes = struct.pack("<IIIIIIII", 4, note_off, 0, 0, len(note), len(note), 4, 4)
    head = ehdr + load + notes + note
    return head + bytes(load_off - len(head)) + code


class Asm32:
    """32-bit flat-mode guest code, each instruction's bytes beside its assembly."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.code = bytearray()

    def mov(self, reg: str, imm: int) -> Asm32:
        op = {"eax": 0xB8, "ecx": 0xB9, "edx": 0xBA, "ebx": 0xBB}[reg]
        self.code += bytes([op]) + struct.pack("<I", imm & 0xFFFFFFFF)  # mov $imm, %reg
        return self

    def hypercall(self, nr: int, a1: int = 0, a2: int = 0) -> Asm32:
        """eax = nr, ebx/ecx = the arguments (the 32-bit HVM convention), vmcall."""
        self.mov("eax", nr).mov("ebx", a1).mov("ecx", a2)
        self.code += b"\x0f\x01\xc1"                                   # vmcall
        return self

    def store_eax(self, addr: int) -> Asm32:
        self.code += b"\xa3" + struct.pack("<I", addr)                 # mov %eax, addr
        return self

    def load_eax(self, addr: int) -> Asm32:
        self.code += b"\xa1" + struct.pack("<I", addr)                 # mov addr, %eax
        return self

    def print(self, text: str) -> Asm32:
        for ch in text.encode():
            self.code += bytes([0xB0, ch, 0xE6, 0xE9])                 # mov $ch,%al; out %al,$0xe9
        return self

    def halt(self) -> bytes:
        self.code += b"\xfa\xf4\xeb\xfd"                               # cli; hlt; jmp .-1
        return bytes(self.code)


def xatp(space: int, idx: int, gpfn: int) -> bytes:
    """struct xen_add_to_physmap as a 32-bit guest lays it out (compat: 4-byte longs)."""
    return struct.pack("<HHIII", DOMID_SELF, 0, space, idx, gpfn)


def _config(tmp: Path, image: bytes, memory: int) -> Path:
    kernel = tmp / "pvh.elf"
    kernel.write_bytes(image)
    cfg = tmp / "pvh.cfg"
    cfg.write_text(f'name = "pvh"\ntype = "pvh"\nkernel = "{kernel}"\nmemory = {memory}\n'
                   'on_crash = "preserve"\n')
    return cfg


def _run(tmp: Path, image: bytes, memory: int = 32) -> tuple[Lab, int, set[int]]:
    """Create the guest paused, note its reservation and RAM frames, run it."""
    lab = Lab(memory_mib=memory + 128, dom0_mem_mib=64)
    lab.xl(f"create -p {_config(tmp, image, memory)}")
    d = lab.domain("pvh")
    pages, frames = d.tot_pages, {d.pfn_to_mfn(RAM_GFN), d.pfn_to_mfn(RAM_GFN + 1)}
    lab.xl("unpause pvh")
    lab.run(max_instructions=2_000_000, max_seconds=10.0)
    return lab, pages, frames


def _guest_u32(lab: Lab, gpa: int) -> int:
    d = lab.domain("pvh")
    mfn = d.pfn_to_mfn(gpa >> 12)
    return struct.unpack("<I", lab.host.mem.read((mfn << 12) | (gpa & 0xFFF), 4))[0]


BASE = 0x100000
ARGS = BASE + 0x800      # the xen_add_to_physmap structs
RESULTS = BASE + 0x900   # what the guest stores
RAM_GFN = 0x200          # guest-physical 2 MiB: ordinary RAM


def test_shared_info_over_a_ram_gfn_replaces_the_frame(tmp_path: Path) -> None:
    """As Linux's xen_hvm_init_shared_info: shared_info onto a page of its own RAM,
    then again onto another one (Xen unhooks it from the first gfn)."""
    asm = Asm32(BASE)
    asm.mov("eax", 0x5A5A5A5A).store_eax(RAM_GFN << 12)   # the RAM page had data
    asm.hypercall(Hypercall.memory_op, MemoryOp.XENMEM_add_to_physmap, ARGS)
    asm.store_eax(RESULTS)
    asm.load_eax(RAM_GFN << 12).store_eax(RESULTS + 4)     # now shared_info's first word
    asm.mov("eax", 0x1234).store_eax((RAM_GFN << 12) + 0x800)  # shared_info is writable
    asm.hypercall(Hypercall.memory_op, MemoryOp.XENMEM_add_to_physmap, ARGS + 16)
    asm.store_eax(RESULTS + 8)
    asm.load_eax(RAM_GFN << 12).store_eax(RESULTS + 12)    # the hole it left: all ones
    asm.print("done\n")
    code = asm.halt()
    code += bytes(0x800 - len(code))
    code += xatp(XENMAPSPACE_shared_info, 0, RAM_GFN)
    code += xatp(XENMAPSPACE_shared_info, 0, RAM_GFN + 1)
    code += bytes(0x100 - 32) + bytes(16)
    lab, pages, frames = _run(tmp_path, pvh_elf(code))
    d = lab.domain("pvh")
    assert "(d1) done" in lab.xl_output("dmesg"), lab.xl_output("dmesg")
    assert not d.is_crashed, d.crash_reason
    assert _guest_u32(lab, RESULTS) == 0 and _guest_u32(lab, RESULTS + 8) == 0
    assert _guest_u32(lab, RESULTS + 4) != 0x5A5A5A5A       # read shared_info, not RAM
    assert _guest_u32(lab, RESULTS + 12) == 0xFFFFFFFF
    # shared_info moved to RAM_GFN + 1, unhooked from RAM_GFN, and kept what was written
    assert d.pfn_to_mfn(RAM_GFN + 1) == d.shared_info_mfn
    assert d.pfn_to_mfn(RAM_GFN) == INVALID_MFN
    assert lab.host.mem.read((d.shared_info_mfn << 12) + 0x800, 4) == struct.pack("<I", 0x1234)
    # both RAM frames went back to the heap: the reservation is two pages smaller
    assert d.tot_pages == pages - 2
    for mfn in frames:
        assert lab.host.mem.owner[mfn] == FREE and not lab.host.mem.count_info[mfn]
    lab.host.check_invariants()


@pytest.mark.parametrize("idx", [0, 1])
def test_grant_table_frame_over_a_ram_gfn(tmp_path: Path, idx: int) -> None:
    """XENMAPSPACE_grant_table: frame ``idx`` of the grant table (the table grows to
    it) over a RAM gfn; the guest then writes a grant entry through it."""
    asm = Asm32(BASE)
    asm.hypercall(Hypercall.memory_op, MemoryOp.XENMEM_add_to_physmap, ARGS)
    asm.store_eax(RESULTS)
    asm.mov("eax", 0x1).store_eax(RAM_GFN << 12)    # grant entry 0: GTF_permit_access, d0
    asm.print("done\n")
    code = asm.halt()
    code += bytes(0x800 - len(code)) + xatp(XENMAPSPACE_grant_table, idx, RAM_GFN)
    code += bytes(0x100 - 16) + bytes(16)
    lab, pages, _frames = _run(tmp_path, pvh_elf(code))
    d = lab.domain("pvh")
    assert "(d1) done" in lab.xl_output("dmesg"), lab.xl_output("dmesg")
    assert not d.is_crashed, d.crash_reason
    assert _guest_u32(lab, RESULTS) == 0
    assert d.grant_table is not None
    frame = d.grant_table.frames[idx]
    assert d.pfn_to_mfn(RAM_GFN) == frame
    assert lab.host.mem.read(frame << 12, 4) == struct.pack("<I", 1)
    assert d.tot_pages == pages - 1
    lab.host.check_invariants()


def test_pvh_kernel_loads_above_64_mib(tmp_path: Path) -> None:
    """Debian's Linux ends at about 74 MiB: a PVH kernel loads wherever the guest has RAM."""
    paddr = 72 << 20
    asm = Asm32(paddr)
    asm.print("loaded high\n")
    lab, _pages, _frames = _run(tmp_path, pvh_elf(asm.halt(), paddr, bss=4 << 20),
                                memory=128)
    assert "(d1) loaded high" in lab.xl_output("dmesg"), lab.xl_output("dmesg")


def test_pvh_kernel_past_the_guests_memory_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, pvh_elf(Asm32(72 << 20).halt(), 72 << 20), memory=64)
    lab = Lab(memory_mib=192, dom0_mem_mib=64)
    out = lab.xl_output(f"create {cfg}")
    assert "does not fit in the guest's memory (raise memory)" in out, out
    assert out.count("\n") == 2 and "Traceback" not in out, out   # Parsing...; xl: error:
    assert not lab.host.domains.keys() - {0}


REAL_GUESTS = Path(os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests"
                   ).expanduser()


@pytest.mark.skipif(not (REAL_GUESTS / "vmlinuz").is_file(),
                    reason=f"no real guests in {REAL_GUESTS}: run `make real-guests`")
def test_debians_linux_is_built_as_a_pvh_guest(tmp_path: Path) -> None:
    """Debian's bzImage as ``type = "pvh"``: unpacked (libxenguest's bzImage loader),
    its PHYS32_ENTRY found, its segments (16 MiB up to past 64 MiB) loaded in place."""
    vmlinuz = REAL_GUESTS / "vmlinuz"
    kernel = load_pvh_kernel(str(vmlinuz), 256 << 20)
    assert min(p for p, _d, _m in kernel.segments) == 16 << 20
    assert kernel.end > 64 << 20
    cfg = tmp_path / "linux-pvh.cfg"
    cfg.write_text(f'name = "linux-pvh"\ntype = "pvh"\nkernel = "{vmlinuz}"\n'
                   'memory = 256\ncmdline = "console=hvc0"\n')
    lab = Lab(memory_mib=512, dom0_mem_mib=64)
    out = lab.xl_output(f"create -p {cfg}")
    assert "Created domain 1 (linux-pvh)" in out, out
    d = lab.domain("linux-pvh")
    paddr, data, _memsz = max(kernel.segments)
    mfn = d.pfn_to_mfn(paddr >> 12)
    assert lab.host.mem.read((mfn << 12) | (paddr & 0xFFF), 64) == data[:64]


def test_pvh_ramdisk_is_a_module_in_hvm_start_info(tmp_path: Path) -> None:
    """xl.cfg's ramdisk for a PVH kernel: one hvm_modlist_entry in hvm_start_info (EBX),
    the bytes as they are (Linux unpacks its initramfs itself) in the first page after
    the kernel, which reads them there."""
    from xenlab.labkit import assemble

    results = BASE + 0x800
    code = assemble(f"""
        mov 12(%ebx), %eax             # nr_modules
        mov %eax, {results}
        mov 16(%ebx), %esi             # modlist_paddr
        mov 0(%esi), %edi              # the module's paddr and size
        mov %edi, {results + 4}
        mov 8(%esi), %eax
        mov %eax, {results + 8}
        mov (%edi), %eax               # its first bytes
        mov %eax, {results + 12}
        cli
    1:  hlt
        jmp 1b
    """, bits=32, org=BASE)
    image = code + bytes(0x1000 - len(code))
    ramdisk = tmp_path / "initrd.img"
    ramdisk.write_bytes(b"RAMD" + bytes(5000))
    cfg = _config(tmp_path, pvh_elf(image), 32)
    cfg.write_text(cfg.read_text() + f'ramdisk = "{ramdisk}"\n')
    lab = Lab(memory_mib=160, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=1_000_000, max_seconds=1.0)
    assert not lab.domain("pvh").is_crashed
    assert _guest_u32(lab, results) == 1
    assert _guest_u32(lab, results + 4) == BASE + 0x1000     # the page after the kernel
    assert _guest_u32(lab, results + 8) == 5004
    assert _guest_u32(lab, results + 12) == int.from_bytes(b"RAMD", "little")
