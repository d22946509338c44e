"""Boot images built at run time from Debian's packages, never committed (the
third-party boot suite, ``tests/test_boot_suite.py``, and ``make bench``'s memtest86+
pass; ../shared/REAL_GUESTS.md).

- ``grub_disk``: GRUB 2's i386-pc boot on a raw disk, laid out as ``grub-install`` leaves
  a disk with an MS-DOS partition table: ``boot.img`` in the MBR (sector 0), ``core.img``
  (``grub-mkimage -O i386-pc`` with a memdisk, so that GRUB needs no file system) embedded
  in the gap from sector 1, the first partition at 1 MiB. The MBR's fields are set as
  ``grub-bios-setup`` sets them: the LBA of core.img's first sector, "use the drive the
  BIOS passed in DL", the jump over the drive-number check replaced by two nops (a hard
  disk), the partition table kept. core.img's own first sector (``diskboot.img``) holds
  the blocklist of the rest, which ``grub-mkimage`` has filled.
- ``syslinux_mbr_disk``: syslinux's ``mbr.bin`` on a disk whose partition table has no
  active partition: it prints its error and waits.

Real Xen: (none: the disks an HVM guest boots.) Real GRUB: grub-core/boot/i386/pc/boot.S,
diskboot.S, util/setup.c (grub-bios-setup), util/mkimage.c; syslinux: mbr/mbr.S
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

GRUB_PC = Path("/usr/lib/grub/i386-pc")        # Debian: grub-pc-bin
GRUB_MKIMAGE = shutil.which("grub-mkimage")    # Debian: grub-common (grub-pc-bin depends)
MEMTEST = Path("/boot/memtest86+ia32.bin")     # Debian: memtest86+
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")   # Debian: syslinux-common

SECTOR = 512
# boot.img (include/grub/i386/pc/boot.h)
KERNEL_SECTOR = 0x5C          # GRUB_BOOT_MACHINE_KERNEL_SECTOR: LBA of core.img, 8 bytes
BOOT_DRIVE = 0x64             # GRUB_BOOT_MACHINE_BOOT_DRIVE: 0xFF = the drive in DL
DRIVE_CHECK = 0x66            # GRUB_BOOT_MACHINE_DRIVE_CHECK: "jmp 3f", nop'd for a disk
NT_MAGIC = 0x1B8              # GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC: from here to 0x1FE,
PART_END = 0x1FE              # the disk's own (disk signature and partition table)
# diskboot.img: struct grub_pc_bios_boot_blocklist at the end of core.img's first sector
BLOCKLIST = SECTOR - 12       # start (LBA, 8 bytes), len (sectors, 2), segment (2)
CORE_LBA = 1
PARTITION_LBA = 2048          # the first partition at 1 MiB, as fdisk and parted align it

# what core.img holds: the BIOS disk driver, the memdisk and its tar file system, the
# normal mode (the grub> prompt and grub.cfg) and the commands the suite uses
GRUB_MODULES = ("biosdisk", "part_msdos", "memdisk", "tar", "normal", "echo", "linux16",
                "boot", "ls", "cat")


def missing_grub() -> str | None:
    """Why ``grub_disk`` cannot run here (one line), or None."""
    if GRUB_MKIMAGE is None or not (GRUB_PC / "boot.img").is_file():
        return "needs Debian's grub-pc-bin (grub-mkimage, /usr/lib/grub/i386-pc)"
    return None


def missing_memtest() -> str | None:
    if not MEMTEST.is_file():
        return f"needs Debian's memtest86+ ({MEMTEST})"
    return missing_grub()


def memdisk_tar(files: dict[str, bytes]) -> bytes:
    """A ustar archive of ``files`` (path -> contents), GRUB's memdisk: the same bytes
    every run (no times, owners or modes from the machine that built it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def grub_core(work: Path, files: dict[str, bytes]) -> bytes:
    """``grub-mkimage -O i386-pc`` with ``files`` as its memdisk and the prefix in it."""
    tar = work / "memdisk.tar"
    tar.write_bytes(memdisk_tar(files))
    core = work / "core.img"
    subprocess.run([GRUB_MKIMAGE or "grub-mkimage", "-O", "i386-pc", "-d", str(GRUB_PC),
                    "-o", str(core), "-p", "(memdisk)/boot/grub", "-m", str(tar),
                    *GRUB_MODULES], check=True, capture_output=True, timeout=60)
    return core.read_bytes()


def grub_disk(path: Path, files: dict[str, bytes] | None = None) -> Path:
    """Write a GRUB i386-pc disk to ``path``: ``files`` are its memdisk (with no
    ``boot/grub/grub.cfg`` GRUB stops at ``grub>``)."""
    core = grub_core(path.parent, files or {})
    sectors = -(-len(core) // SECTOR)
    if CORE_LBA + sectors > PARTITION_LBA:
        raise ValueError(f"core.img is {len(core):,} bytes: more than the gap before "
                         "the first partition")
    start, length, segment = struct.unpack_from("<QHH", core, BLOCKLIST)
    assert (start, length, segment) == (CORE_LBA + 1, sectors - 1, 0x820), (
        "diskboot.img's blocklist is not the one grub-mkimage writes")
    disk = bytearray((PARTITION_LBA + 2048) * SECTOR)        # a 1-MiB partition after it
    # the partition table: one Linux partition (0x83), not active, at 1 MiB
    disk[0x1BE:0x1CE] = struct.pack("<B3sB3sII", 0x00, b"\xfe\xff\xff", 0x83,
                                    b"\xfe\xff\xff", PARTITION_LBA, 2048)
    boot = bytearray((GRUB_PC / "boot.img").read_bytes())
    assert len(boot) == SECTOR and boot[510:] == b"\x55\xaa"
    struct.pack_into("<Q", boot, KERNEL_SECTOR, CORE_LBA)
    boot[BOOT_DRIVE] = 0xFF
    boot[DRIVE_CHECK:DRIVE_CHECK + 2] = b"\x90\x90"
    boot[NT_MAGIC:PART_END] = disk[NT_MAGIC:PART_END]
    disk[:SECTOR] = boot
    disk[CORE_LBA * SECTOR:CORE_LBA * SECTOR + len(core)] = core
    path.write_bytes(bytes(disk))
    return path


def syslinux_mbr_disk(path: Path) -> Path:
    """syslinux's MBR on a 1-MiB disk with an empty partition table (nothing active)."""
    mbr = SYSLINUX_MBR.read_bytes()
    disk = bytearray(1 << 20)
    disk[:len(mbr)] = mbr
    disk[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(disk))
    return path
