"""Loading a real kernel as xl does (issue 13 part 5): every Xen ELF note, bzImage
payloads, ramdisk as start_info's module, cmdline, and the P2M list at INIT_P2M.

Each test builds its kernel with tests/elfgen.py (or wraps one in a bzImage header),
so none needs the real Linux package; tests/test_real_linux.py boots the real one.

Real Xen: xen/common/libelf/libelf-dominfo.c, tools/libs/guest/xg_dom_bzimageloader.c,
tools/libs/guest/xg_dom_core.c (xc_dom_build_image), tools/libs/guest/xg_dom_x86.c
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from elfgen import CODE_VA, VIRT_BASE, N, build_elf, new_host, write_image

from xenlab.errors import ImageError
from xenlab.public.xen import SIF_MOD_START_PFN, StartInfo
from xenlab.tools.libs.guest.xg_dom_elfloader import load_elf_kernel
from xenlab.tools.libs.guest.xg_dom_x86 import build_pv
from xenlab.tools.xl.xl_parse import parse_config_text
from xenlab.xen.domain import DomainType
from xenlab.xen.guest_access import copy_from_guest

ROOT = Path(__file__).resolve().parents[1]
CODE = bytes.fromhex("ebfe")  # jmp .
L1_16 = struct.pack("<QQ", 1, 1)  # Linux: (mask _PAGE_PRESENT, value _PAGE_PRESENT)
P2M_BASE = 0x80_0000_0000  # Linux's INIT_P2M: 512 GiB, L4 slot 1


def _load(tmp_path: Path, blob: bytes, name: str = "kernel.elf"):
    return load_elf_kernel(write_image(blob, tmp_path, name), 64 << 20)


# ------------------------------------------------------------------ the notes
def test_linux_notes_load_as_libelf_reads_them(tmp_path: Path) -> None:
    """Debian 6.1's notes: a 16-byte L1_MFN_VALID, FEATURES with a required feature,
    SUPPORTED_FEATURES, INIT_P2M, MOD_START_PFN, SUSPEND_CANCEL, HV_START_LOW,
    PHYS32_ENTRY, PAE_MODE, GUEST_VERSION (the old loader refused the 16-byte note)."""
    blob = build_elf(CODE, override={
        N.XEN_ELFNOTE_GUEST_OS: "linux", N.XEN_ELFNOTE_GUEST_VERSION: "2.6",
        N.XEN_ELFNOTE_FEATURES: "!writable_page_tables|pae_pgdir_above_4gb",
        N.XEN_ELFNOTE_SUPPORTED_FEATURES: struct.pack("<I", 0x8801),
        N.XEN_ELFNOTE_PAE_MODE: "yes", N.XEN_ELFNOTE_L1_MFN_VALID: L1_16,
        N.XEN_ELFNOTE_SUSPEND_CANCEL: struct.pack("<I", 1),
        N.XEN_ELFNOTE_MOD_START_PFN: struct.pack("<I", 1),
        N.XEN_ELFNOTE_HV_START_LOW: struct.pack("<Q", 0xFFFF800000000000),
        N.XEN_ELFNOTE_INIT_P2M: struct.pack("<Q", P2M_BASE),
        N.XEN_ELFNOTE_PHYS32_ENTRY: struct.pack("<I", 0x1000850)},
        extra_notes=b"".join([
            # unknown Xen note types and other owners are ignored, as libelf does
            struct.pack("<III", 4, 4, 99) + b"Xen\0" + b"\1\2\3\4",
            struct.pack("<III", 6, 4, 1) + b"Linux\0\0\0" + b"\0\0\0\0"]))
    img = _load(tmp_path, blob)
    assert img.l1_mfn_valid == ((1, 1),)
    assert img.f_required == 1 << 0                       # writable_page_tables
    assert img.f_supported == (1 << 0) | (1 << 4) | 0x8801
    assert img.p2m_base == P2M_BASE and img.unmapped_initrd
    assert img.notes[N.XEN_ELFNOTE_SUSPEND_CANCEL] == 1
    assert img.notes[N.XEN_ELFNOTE_PHYS32_ENTRY] == 0x1000850
    assert img.notes[N.XEN_ELFNOTE_HV_START_LOW] == 0xFFFF800000000000
    assert img.entry == CODE_VA


@pytest.mark.parametrize("size", [1, 2])
def test_short_numeric_notes(tmp_path: Path, size: int) -> None:
    """elf_note_numeric reads 1-, 2-, 4- and 8-byte numbers (the old loader: 4 and 8)."""
    blob = build_elf(CODE, override={N.XEN_ELFNOTE_MOD_START_PFN: b"\1".ljust(size, b"\0")})
    assert _load(tmp_path, blob).unmapped_initrd


@pytest.mark.parametrize(("features", "words"), [
    ("!auto_translated_physmap", "auto_translated_physmap"),
    ("writable_page_tables|!supervisor_mode_kernel", "supervisor_mode_kernel"),
    ("!writable_descriptor_tables", "writable_descriptor_tables"),
    ("!dom0", "unprivileged (DomU)"),
    ("!no_such_feature", "'no_such_feature', a feature Xen does not know"),
])
def test_required_features_the_builder_cannot_give_are_refused(
        tmp_path: Path, features: str, words: str) -> None:
    path = write_image(build_elf(CODE, override={N.XEN_ELFNOTE_FEATURES: features}), tmp_path)
    with pytest.raises(ImageError) as info:
        load_elf_kernel(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and words in msg and "\n" not in msg


def test_unknown_supported_feature_is_ignored(tmp_path: Path) -> None:
    blob = build_elf(CODE, override={N.XEN_ELFNOTE_FEATURES: "shiny_new_thing|dom0"})
    assert _load(tmp_path, blob).f_supported == 1 << 11 and not _load(tmp_path, blob).f_required


def test_init_p2m_inside_the_kernel_is_refused(tmp_path: Path) -> None:
    """elf_xen_addr_calc_check: "P->M table base is out of bounds" (the old loader
    ignored the note). A base at or above VIRT_BASE is only ignored, as xl does."""
    path = write_image(build_elf(CODE, override={
        N.XEN_ELFNOTE_INIT_P2M: struct.pack("<Q", CODE_VA + 0x1000)}), tmp_path)
    with pytest.raises(ImageError, match="INIT_P2M 0xffffffff80001000 lies inside the kernel"):
        load_elf_kernel(path)
    above = build_elf(CODE, override={
        N.XEN_ELFNOTE_INIT_P2M: struct.pack("<Q", 0xFFFF_FFFF_C000_0000)})
    assert _load(tmp_path, above, "k2.elf").p2m_base is None



def _with_xen_guest(guest_info: bytes) -> bytes:
    """An elfgen kernel without notes whose section table holds __xen_guest."""
    blob = bytearray(build_elf(CODE, pt_note=False))
    strtab = b"\0__xen_guest\0.shstrtab\0"
    info_off = len(blob)
    blob += guest_info + b"\0"
    str_off = len(blob)
    blob += strtab
    while len(blob) % 8:
        blob += b"\0"
    shoff = len(blob)
    # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, align, entsize
    blob += bytes(64)
    blob += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, info_off, len(guest_info) + 1, 0, 0, 1, 0)
    blob += struct.pack("<IIQQQQIIQQ", 13, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
    struct.pack_into("<Q", blob, 0x28, shoff)
    struct.pack_into("<HHH", blob, 0x3A, 64, 3, 2)
    return bytes(blob)


def test_legacy_xen_guest_section(tmp_path: Path) -> None:
    """elf_xen_parse_guest_info: HYPERCALL_PAGE is a page number from VIRT_BASE and
    ELF_PADDR_OFFSET defaults to VIRT_BASE (the old loader: "no Xen ELF notes")."""
    text = (f"GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE={VIRT_BASE:#x},"
            f"ELF_PADDR_OFFSET=0,VIRT_ENTRY={CODE_VA:#x},HYPERCALL_PAGE=0x1,"
            "LOADER=generic,FEATURES=!writable_page_tables").encode()
    img = _load(tmp_path, _with_xen_guest(text))
    assert img.legacy_guest_info and img.hypercall_page == VIRT_BASE + 0x1000
    assert img.entry == CODE_VA and img.f_required == 1
    # without ELF_PADDR_OFFSET it is VIRT_BASE: elfgen's p_paddr 0 then lies below it
    no_offset = text.replace(b"ELF_PADDR_OFFSET=0,", b"")
    with pytest.raises(ImageError, match="segments lie below VIRT_BASE"):
        _load(tmp_path, _with_xen_guest(no_offset), "k2.elf")


# ------------------------------------------------------------------ bzImage
def _lz4_len(n: int) -> bytes:
    """LZ4's length extension bytes for a nibble of 15: 255s, then the rest."""
    out = bytearray()
    while n >= 255:
        out.append(255)
        n -= 255
    return bytes(out + bytes([n]))


def _lz4_legacy(data: bytes) -> bytes:
    """A legacy LZ4 frame (what Linux's lz4 kernels use): one sequence whose match
    copies a zero byte 63 times over itself (offset 1), then the rest as literals."""
    p = data.index(bytes(64))
    lits, rest = data[:p + 1], data[p + 64:]
    seq = bytes([0xFF]) + _lz4_len(len(lits) - 15) + lits + struct.pack("<H", 1) + \
        _lz4_len(63 - 4 - 15)
    seq += bytes([0xF0]) + _lz4_len(len(rest) - 15) + rest
    return b"\x02\x21\x4c\x18" + struct.pack("<I", len(seq)) + seq


def bzimage(elf: bytes, kind: str) -> bytes:
    """A bzImage (boot protocol 2.15) whose payload is ``elf`` compressed with ``kind``."""
    if kind == "gzip":
        payload = gzip.compress(elf, mtime=0)
    elif kind == "xz":
        payload = lzma.compress(elf, check=lzma.CHECK_CRC32)
    elif kind == "lzma":
        payload = lzma.compress(elf, format=lzma.FORMAT_ALONE)
    elif kind == "bzip2":
        payload = bz2.compress(elf)
    elif kind == "lz4":
        payload = _lz4_legacy(elf)
    elif kind == "zstd":
        payload = zstandard.ZstdCompressor(level=19).compress(elf)
    else:  # lzo's magic, and something after it
        payload = b"\x89LZO" + bytes(60)
    payload += struct.pack("<I", len(elf))  # Linux appends the unpacked size
    setup_sects = 3
    head = bytearray((setup_sects + 1) * 512)
    head[0x1F1] = setup_sects
    head[0x1FE:0x200] = b"\x55\xaa"
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, 0x20F)
    payload_offset = 0x100
    struct.pack_into("<II", head, 0x248, payload_offset, len(payload))
    return bytes(head) + bytes(payload_offset) + payload


@pytest.mark.parametrize("kind", ["gzip", "xz", "lzma", "bzip2", "lz4", "zstd"])
def test_bzimage_payloads_unpack_to_the_same_kernel(tmp_path: Path, kind: str) -> None:
    elf = build_elf(CODE, data=b"payload" * 10)
    plain = _load(tmp_path, elf)
    img = _load(tmp_path, bzimage(elf, kind), "vmlinuz")
    assert img.bzimage == kind
    assert [(s.vaddr, s.data, s.memsz) for s in img.segments] == \
        [(s.vaddr, s.data, s.memsz) for s in plain.segments]
    assert img.notes == plain.notes


def test_bzimage_lzo_is_a_clear_error(tmp_path: Path) -> None:
    path = write_image(bzimage(build_elf(CODE), "lzo"), tmp_path, "vmlinuz")
    with pytest.raises(ImageError, match=r"^.*vmlinuz: bzImage payload is lzo-compressed, "
                                         r"which xenlab cannot unpack"):
        load_elf_kernel(path)


def test_a_corrupt_zstd_payload_is_one_line(tmp_path: Path) -> None:
    good = bytearray(bzimage(build_elf(CODE, data=b"payload" * 50), "zstd"))
    frame = good.index(b"\x28\xb5\x2f\xfd")
    good[frame + 4] |= 0x08            # the frame header descriptor's reserved bit
    path = write_image(bytes(good), tmp_path, "vmlinuz")
    with pytest.raises(ImageError, match=r"^.*vmlinuz: bzImage: corrupt zstd payload"):
        load_elf_kernel(path)


@pytest.mark.parametrize(("patch", "words"), [
    ({0x206: b"\x04\x02"}, "boot protocol 2.04"),
    ({0x24C: b"\xff\xff\xff\x00"}, "runs past the end"),
    ({0x248: b"\x00\x00\x00\x00"}, "unknown format"),
])
def test_broken_bzimages(tmp_path: Path, patch: dict[int, bytes], words: str) -> None:
    blob = bytearray(bzimage(build_elf(CODE), "gzip"))
    for off, b in patch.items():
        blob[off:off + len(b)] = b
    path = write_image(bytes(blob), tmp_path, "vmlinuz")
    with pytest.raises(ImageError) as info:
        load_elf_kernel(path)
    assert words in str(info.value) and str(info.value).startswith(f"{path}: ")


def test_bzimage_unpacking_is_bounded(tmp_path: Path) -> None:
    """A payload that unpacks past the domain's memory is refused while unpacking."""
    big = build_elf(CODE, data=b"x") + bytes(3 << 20)
    path = write_image(bzimage(big, "xz"), tmp_path, "vmlinuz")
    with pytest.raises(ImageError, match="unpacks to more than 2,097,152 bytes"):
        load_elf_kernel(path, 2 << 20)


# ------------------------------------------------------------------ the layout
def _build(tmp_path: Path, ramdisk: bytes = b"", **notes: bytes):
    over = {getattr(N, f"XEN_ELFNOTE_{k}"): v for k, v in notes.items()}
    img = _load(tmp_path, build_elf(CODE, override=over))
    host = new_host()
    d = host.domain_create("k", DomainType.PV, vcpus=1, max_pages=16 * 256)
    host.populate_physmap(d, 16 * 256)
    lay = build_pv(host, d, img, cmdline="console=hvc0 root=/dev/xvda", ramdisk=ramdisk)
    si = StartInfo.from_buffer_copy(host.mem.read(d.maddr(lay.pfn(lay.start_info)),
                                                  ctypes_sizeof(StartInfo)))
    return host, d, lay, si


def ctypes_sizeof(t) -> int:
    import ctypes

    return ctypes.sizeof(t)


def _guest_read(host, d, va: int, n: int) -> bytes:
    return copy_from_guest(host.mem, d, d.vcpus[0].cpu.reg("cr3"), va, n)


def test_mod_start_pfn_puts_the_ramdisk_after_the_initial_mappings(tmp_path: Path) -> None:
    """MOD_START_PFN: the ramdisk lands past v_end, start_info.mod_start is its pfn,
    SIF_MOD_START_PFN is set and mod_len is whole pages (xc_dom_build_image)."""
    rd = b"ramdisk!" * 700
    host, d, lay, si = _build(tmp_path, rd, MOD_START_PFN=struct.pack("<I", 1))
    v_end_pfn = (lay.v_end - VIRT_BASE) >> 12
    assert si.flags & SIF_MOD_START_PFN and si.mod_start == v_end_pfn
    assert si.mod_len == 8192
    assert host.mem.read(d.maddr(si.mod_start), len(rd)) == rd
    # the kernel's mapping ends at v_end: the ramdisk is not in it
    assert lay.p2m < lay.start_info < lay.v_end <= lay.ramdisk
    assert si.cmd_line == b"console=hvc0 root=/dev/xvda"


def test_without_mod_start_pfn_the_ramdisk_is_mapped_after_the_kernel(tmp_path: Path) -> None:
    rd = b"ramdisk!" * 700
    host, d, lay, si = _build(tmp_path, rd)
    assert not si.flags & SIF_MOD_START_PFN and si.mod_len == len(rd)
    assert si.mod_start == lay.ramdisk < lay.p2m
    assert _guest_read(host, d, si.mod_start, len(rd)) == rd


def test_init_p2m_maps_the_p2m_list_where_the_kernel_asks(tmp_path: Path) -> None:
    """INIT_P2M: the list is placed last, mapped at the note's address by page tables of
    its own, and named by mfn_list, first_p2m_pfn and nr_p2m_frames (the old builder put
    it after the kernel and mapped nothing at 512 GiB)."""
    host, d, lay, si = _build(tmp_path, b"rd" * 3000, INIT_P2M=struct.pack("<Q", P2M_BASE),
                              MOD_START_PFN=struct.pack("<I", 1))
    assert si.mfn_list == P2M_BASE
    nr = 16 * 256
    p2m_pages = nr * 8 // 4096
    # the P2M pages, then one L3, one L2 and one L1 for them (L4 slot 1 is new)
    assert si.nr_p2m_frames == p2m_pages + 3
    assert si.first_p2m_pfn == si.mod_start + 2  # after the 2-page ramdisk
    listed = struct.unpack(f"<{nr}Q", _guest_read(host, d, P2M_BASE, nr * 8))
    assert list(listed) == list(d.p2m[:nr])
    # the kernel's own mapping is unchanged: no P2M list behind the kernel
    assert lay.start_info == (lay.kernel_end + 0xFFF) & ~0xFFF


def test_gzip_ramdisk_is_loaded_unpacked_as_xen_4_17_does() -> None:
    from xenlab.tools.libs.guest.xg_dom_x86 import unzip_module

    data = b"070701" + bytes(5000)
    assert unzip_module(gzip.compress(data, mtime=0), 1 << 20) == data
    packed = gzip.compress(data, mtime=0)
    assert unzip_module(packed, 100) == packed          # would not fit: loaded as it is
    assert unzip_module(b"not gzip", 100) == b"not gzip"


def test_tilde_in_a_config_path_is_the_home_folder(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = parse_config_text('name = "x"\nkernel = "~/k/vmlinuz"\n', "t.cfg")
    assert cfg.resolve(cfg.kernel) == str(tmp_path / "k" / "vmlinuz")


def test_shipped_linux_cfg_parses_and_names_the_cache() -> None:
    from xenlab.tools.xl.xl_parse import parse_config_file

    cfg = parse_config_file(ROOT / "images" / "linux-pv.cfg")
    assert cfg.kernel == "~/.cache/xenlab/real-guests/vmlinuz"
    assert cfg.cmdline == "console=hvc0 earlyprintk=xen" and cfg.memory == 256
    assert cfg.resolve(cfg.ramdisk).startswith(os.path.expanduser("~/.cache/"))


# ------------------------------------------------------------------ the fetch tool
def test_fetch_tool_without_apt_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "fetch_real_guests.py"),
                          "--cache", str(tmp_path / "cache")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("fetch_real_guests: error: apt-cache not found")


def _read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    out, off = {}, 0
    while True:
        assert data[off:off + 6] == b"070701"
        f = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        name = data[off + 110:off + 110 + f[11] - 1].decode()
        off = (off + 110 + f[11] + 3) & ~3
        body = data[off:off + f[6]]
        off = (off + f[6] + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (f[1], body, (f[9], f[10]))


def test_initramfs_is_a_newc_archive_with_init_busybox_and_the_frontends(
        tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    from initramfs import INIT, build_initramfs

    rel = "6.1.0-99-amd64"
    (tmp_path / "bin").mkdir()
    busybox = tmp_path / "bin" / "busybox"
    busybox.write_text("#!/bin/sh\necho bin/sh sbin/modprobe usr/bin/uname\n")
    busybox.chmod(0o755)
    mods = tmp_path / "lib" / "modules" / rel
    for sub, name, deps in (("drivers/block", "xen-blkfront", ""),
                            ("drivers/net", "xen-netfront", "fake_dep"),
                            ("lib", "fake-dep", ""), ("drivers/x", "unrelated", "")):
        (mods / "kernel" / sub).mkdir(parents=True, exist_ok=True)
        (mods / "kernel" / sub / f"{name}.ko").write_bytes(
            b"\x7fELF\0name=" + name.encode() + b"\0depends=" + deps.encode() + b"\0")
    (mods / "modules.order").write_text("\n".join(
        f"kernel/{s}/{n}.ko" for s, n in (("drivers/block", "xen-blkfront"),
                                          ("drivers/net", "xen-netfront"),
                                          ("lib", "fake-dep"), ("drivers/x", "unrelated"))))
    data = build_initramfs(tmp_path, rel)
    assert data == build_initramfs(tmp_path, rel)  # deterministic
    files = _read_newc(gzip.decompress(data))
    assert files["init"][1] == INIT.encode() and files["init"][0] == 0o100755
    assert files["dev/console"][0] == 0o20600 and files["dev/console"][2] == (5, 1)
    assert files["dev/hvc0"][2] == (229, 0)
    assert files["bin/sh"] == (0o120777, b"../bin/busybox", (0, 0))
    assert files["usr/bin/uname"][1] == b"../../bin/busybox"
    base = f"lib/modules/{rel}/kernel/"
    assert base + "lib/fake-dep.ko" in files and base + "drivers/x/unrelated.ko" not in files
    dep = files[f"lib/modules/{rel}/modules.dep"][1].decode().splitlines()
    assert "kernel/drivers/net/xen-netfront.ko: kernel/lib/fake-dep.ko" in dep
    assert "exec setsid cttyhack sh </dev/hvc0" in INIT
