"""Device-model fuzzing: random port I/O from an HVM guest's point of view, every ATA
command byte, PCI configuration garbage, and `rep insw` with a huge count from real code.
Nothing raises, the disk image never changes outside what valid writes name, and the
host's invariants hold."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from xenlab.lab import Lab
from xenlab.xen.hvm.io import handle_pio

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "images" / "firmware"
PORTS = [0x1F0, 0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5, 0x1F6, 0x1F7, 0x3F6, 0x170, 0x177,
         0x3F8, 0x3F9, 0x3FA, 0x3FB, 0x3FC, 0x3FD, 0x60, 0x64, 0x3D4, 0x3D5, 0x3DA, 0x402,
         0xCF8, 0xCFC, 0xCFD, 0xCFE, 0xCFF, 0x20, 0x21, 0xA0, 0xA1, 0x40, 0x43, 0x61, 0x70,
         0x71, 0xE9, 0xB008, 0x80, 0x92, 0x1234, 0xFFFF]


def _hvm(tmp: Path, access: str) -> tuple[Lab, Path]:
    disk = tmp / "d.img"
    shutil.copy(FW / "bootdisk.img", disk)
    cfg = tmp / "h.cfg"
    cfg.write_text(f'name = "h"\ntype = "hvm"\nmemory = 16\n'
                   f"disk = [ 'format=raw, vdev=hda, access={access}, target={disk}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create -p {cfg}")
    return lab, disk


_io = st.tuples(st.sampled_from(PORTS), st.sampled_from([1, 2, 4]), st.booleans(),
                st.integers(0, 0xFFFFFFFF))


@settings(derandomize=True, deadline=None, max_examples=60)
@given(ops=st.lists(_io, min_size=1, max_size=200))
def test_random_port_io_never_breaks_anything(tmp_path_factory, ops) -> None:
    lab, disk = _hvm(tmp_path_factory.mktemp("fz"), "ro")
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    d = lab.domain("h")
    for port, size, read, value in ops:
        result = handle_pio(lab.host, d, d.hvm, port, size, read, value & ((1 << 8 * size) - 1))
        assert 0 <= result < 1 << (8 * size)
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before
    lab.host.check_invariants()
    lab.xl("destroy h")
    lab.host.check_invariants()


_rep = st.tuples(st.sampled_from(PORTS), st.sampled_from([1, 2, 4, 3, 8]), st.booleans(),
                 st.integers(0, 1 << 20), st.integers(0, 0xFFFF_FFFF))


@settings(derandomize=True, deadline=None, max_examples=40)
@given(ops=st.lists(_rep, min_size=1, max_size=40))
@example(ops=[(0x1F0, 1, False, 0, 0), (0x3FD, 4, False, 1, 0)])  # once found: lane 0x400
def test_random_string_io_stays_inside_the_guest(tmp_path_factory, ops) -> None:
    """``rep ins/outs`` as the device model sees them (one ioreq per page, data_is_ptr):
    random ports, element sizes (also invalid ones), counts and guest addresses. Only
    the guest's own RAM changes, every other domain's frames stay as they were, the
    disk image too, and the host's invariants hold."""
    from xenlab.xen.hvm.io import handle_pio_rep

    lab, disk = _hvm(tmp_path_factory.mktemp("rz"), "ro")
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    d = lab.domain("h")
    mem = lab.host.mem
    others = {m for m in range(mem.total_pages) if mem.owner[m] not in (d.domid,)}
    snap = {m: mem.read(m << 12, 4096) for m in sorted(others)[:: 97]}  # a sample
    for port, size, write, count, gpa in ops:
        done = handle_pio_rep(lab.host, d, d.hvm, port, size, count, gpa, write)
        assert 0 <= done <= count
        if size not in (1, 2, 4) or port in d.hvm.intercepts:
            assert done == 0
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before
    assert all(mem.read(m << 12, 4096) == page for m, page in snap.items()
               if mem.owner[m] != d.domid)
    lab.host.check_invariants()
    lab.xl("destroy h")
    lab.host.check_invariants()


def test_a_wide_access_reaches_the_device_model_only_inside_one_claimed_range(
        tmp_path: Path) -> None:
    """Found by the string-I/O fuzzer: a 4-byte read at 0x3FD (the UART's LSR) covers
    0x3FD-0x400, and port 0x400 belongs to no device. Xen sends an access to the ioreq
    server only if one of its claimed ranges holds all of it (rangeset_contains_range):
    this one ends in Xen's null handler, all ones, and the UART never sees it. Inside
    the UART's range a wide access is split into byte lanes, one per register, as in
    QEMU."""
    lab, _ = _hvm(tmp_path, "ro")
    d = lab.domain("h")
    handle_pio(lab.host, d, d.hvm, 0x3FF, 1, False, 0x5A)       # scratch register
    assert handle_pio(lab.host, d, d.hvm, 0x3FD, 4, True) == 0xFFFF_FFFF
    assert handle_pio(lab.host, d, d.hvm, 0x3FF, 2, True) == 0xFFFF
    mcr = handle_pio(lab.host, d, d.hvm, 0x3FC, 1, True)
    assert handle_pio(lab.host, d, d.hvm, 0x3FC, 4, True) == 0x5A_B0_60_00 | mcr  # SCR..MCR
    handle_pio(lab.host, d, d.hvm, 0x3FF, 4, False, 0xFFFF_FF00)  # past 0x3FF: dropped
    assert handle_pio(lab.host, d, d.hvm, 0x3FF, 1, True) == 0x5A
    # A 32-bit write at the IDE device control register (0x3F6) covers 0x3F7 (no one's)
    # and the UART's 0x3F8-0x3F9: no single range holds it, nothing reaches COM1; a
    # 16-bit write at 0x3F8 is the UART's THR and IER lanes: it transmits.
    sent = len(d.hvm.serial)
    handle_pio(lab.host, d, d.hvm, 0x3F6, 4, False, 0x00_41_00_00)
    assert bytes(d.hvm.serial[sent:]) == b""
    handle_pio(lab.host, d, d.hvm, 0x3F8, 2, False, 0x00_41)
    assert bytes(d.hvm.serial[sent:]) == b"A"
    lab.host.check_invariants()


def test_every_ata_command_byte(tmp_path: Path) -> None:
    lab, disk = _hvm(tmp_path, "rw")
    size = disk.stat().st_size
    d = lab.domain("h")

    def out(port: int, value: int) -> None:
        handle_pio(lab.host, d, d.hvm, port, 1, False, value)

    for cmd in range(256):
        out(0x1F6, 0xE0)                 # master, LBA
        for port, v in ((0x1F2, 1), (0x1F3, 0xFF), (0x1F4, 0xFF), (0x1F5, 0x0F)):
            out(port, v)                 # LBA 0x0FFFFF: far beyond the 1 MiB disk
        out(0x1F7, cmd)
        for _ in range(300):             # drain whatever the command offers
            handle_pio(lab.host, d, d.hvm, 0x1F0, 2, True)
            handle_pio(lab.host, d, d.hvm, 0x1F0, 2, False, 0xBEEF)
        status = handle_pio(lab.host, d, d.hvm, 0x1F7, 1, True)
        assert 0 <= status <= 0xFF
    assert disk.stat().st_size == size   # never written outside the image
    assert b"\xef\xbe" not in disk.read_bytes()[: 1 << 20][-4096:]
    lab.host.check_invariants()


def _boot_sector(tmp: Path, name: str, code_hex: str, max_instructions: int) -> Lab:
    """An HVM guest ``name`` whose boot sector is ``code_hex`` (then 55AA), run until it
    stops or ``max_instructions`` have run."""
    code = bytes.fromhex(code_hex.replace(" ", ""))
    image = bytearray((FW / "bootdisk.img").read_bytes())
    image[0 : len(code)] = code
    image[510:512] = b"\x55\xaa"
    disk = tmp / f"{name}.img"
    disk.write_bytes(bytes(image))
    cfg = tmp / f"{name}.cfg"
    cfg.write_text(f'name = "{name}"\ntype = "hvm"\nmemory = 16\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=max_instructions, max_seconds=2.0)
    return lab


def test_rep_insw_with_a_huge_count_from_real_code(tmp_path: Path) -> None:
    """A boot sector that reads 0x3FFF words (32 KiB, to the top of its segment) from the
    data port with nothing pending. Like Xen's hvmemul_rep_ins, the string goes to the
    device model as one ioreq per guest page (``data_is_ptr``: the device model writes
    guest memory itself), and every word reads as all ones."""
    # mov dx,0x1f0; mov cx,0x3fff; mov di,0x8000; cld; rep insw; cli; hlt
    lab = _boot_sector(tmp_path, "r", "ba f0 01 b9 ff 3f bf 00 80 fc f3 6d fa f4", 50_000_000)
    assert lab.domain("r").state_flags() == "-b----"   # got to its cli; hlt
    ioreqs = [r.args for r in lab.trace.select(kind="ioreq", name="ioreq")
              if r.args["addr"] == "0x1f0" and r.args.get("data_is_ptr")
              and int(r.args["data"], 16) >= 0x8000]
    assert [(int(a["data"], 16), a["count"]) for a in ioreqs] == [
        (0x8000 + 0x1000 * i, 2048) for i in range(7)] + [(0xF000, 2047)]
    d = lab.domain("r")
    assert lab.host.mem.read(d.maddr(0x8), 4096) == b"\xff" * 4096
    assert lab.host.mem.read(d.maddr(0xF), 4094) == b"\xff" * 4094
    lab.host.check_invariants()


def test_rep_insw_into_video_memory_goes_element_by_element(tmp_path: Path) -> None:
    """A string read aimed at the VGA window (0xB8000, device memory, not RAM) is not
    handed to the device model as one ioreq with a guest address: each word is its own
    exit, and the words land on the screen."""
    # mov ax,0xb800; mov es,ax; xor di,di; mov dx,0x1f0; mov cx,16; cld; rep insw; cli; hlt
    lab = _boot_sector(tmp_path, "v", "b800b88ec031ffbaf001b91000fcf36dfaf4", 20_000_000)
    assert lab.domain("v").state_flags() == "-b----"
    reqs = [r.args for r in lab.trace.select(kind="ioreq", name="ioreq")
            if r.args["addr"] == "0x1f0"]
    assert not any(a.get("data_is_ptr") and int(a["data"], 16) >= 0xA0000 for a in reqs)
    dm = lab.toolstack.device_models[lab.domain("v").domid]
    assert bytes(dm.vga.vram)[0x18000 : 0x18000 + 32] == b"\xff" * 32  # 0xB8000
    lab.host.check_invariants()
