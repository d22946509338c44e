"""Generate tests/images/bad/: small broken kernel images, each one way wrong.

    python tests/images/make_bad_images.py      (from the repository root)

The outputs are committed; tests/test_elfloader.py checks they are what this
script makes and that loading each raises ImageError with one line.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from elfgen import (  # noqa: E402
    CODE_VA,
    EM_ARM,
    HYPERCALL_PAGE_VA,
    VIRT_BASE,
    N,
    build_elf,
    build_elf32,
    note,
)

CODE = bytes.fromhex("ebfe")  # 1: jmp 1b

#: file name -> (bytes, what is wrong)
def images() -> dict[str, tuple[bytes, str]]:
    return {
        "not-an-elf.txt": (b"This is a text file, not a kernel.\n", "no ELF magic"),
        "empty.elf": (b"", "zero bytes"),
        "truncated-header-only.elf": (build_elf(CODE, truncate=64),
                                      "the ELF header and nothing else"),
        "elf32.elf": (build_elf32(), "a 32-bit (ELFCLASS32) i386 executable"),
        "arm.elf": (build_elf(CODE, machine=EM_ARM), "e_machine EM_ARM"),
        "no-xen-notes.elf": (build_elf(CODE, pt_note=False), "no PT_NOTE at all"),
        "wrong-owner.elf": (build_elf(CODE, owner="Linux"), "notes owned by 'Linux'"),
        "entry-outside.elf": (build_elf(CODE, entry=VIRT_BASE + 0x100000),
                              "XEN_ELFNOTE_ENTRY past the image"),
        "hypercall-page-unaligned.elf": (build_elf(CODE, hypercall_page=HYPERCALL_PAGE_VA + 8),
                                         "HYPERCALL_PAGE not page aligned"),
        "hypercall-page-outside.elf": (build_elf(CODE, hypercall_page=VIRT_BASE + 0x100000),
                                       "HYPERCALL_PAGE past the image"),
        "overlapping-segments.elf": (
            build_elf(CODE, extra_loads=[(VIRT_BASE + 0x2000, 0x2000, b"\x90" * 16, 0x1000)]),
            "a second PT_LOAD inside the first"),
        "note-past-end.elf": (build_elf(CODE, last_descsz=0x800),
                              "last note's descsz runs past the PT_NOTE"),
        "loader-bsd.elf": (build_elf(CODE, override={N.XEN_ELFNOTE_LOADER: "bsd"}),
                           "XEN_ELFNOTE_LOADER 'bsd'"),
        "xen-2.0.elf": (build_elf(CODE, override={N.XEN_ELFNOTE_XEN_VERSION: "xen-2.0"}),
                        "XEN_ELFNOTE_XEN_VERSION 'xen-2.0'"),
        "segment-past-eof.elf": (build_elf(CODE)[:0x1800], "PT_LOAD runs past end of file"),
        "numeric-note-3-bytes.elf": (
            build_elf(CODE, omit=[N.XEN_ELFNOTE_ENTRY],
                      extra_notes=note("Xen", N.XEN_ELFNOTE_ENTRY, b"\x00\x00\x80")),
            "XEN_ELFNOTE_ENTRY with a 3-byte value"),
        "virt-base-mismatch.elf": (
            build_elf(CODE, override={N.XEN_ELFNOTE_VIRT_BASE: VIRT_BASE + 0x10000}),
            "VIRT_BASE note moved: ENTRY no longer inside"),
        "filesz-gt-memsz.elf": (build_elf(CODE, patch={64 + 40: struct.pack("<Q", 0x10)}),
                                "PT_LOAD p_memsz smaller than p_filesz"),
        "huge-phnum.elf": (build_elf(CODE, patch={56: struct.pack("<H", 0xFFFF)}),
                           "e_phnum 65535"),
        "huge-phoff.elf": (build_elf(CODE, patch={32: struct.pack("<Q", 0x8000_0000_0000_0040)}),
                           "e_phoff beyond any file (2**63 + 64)"),
        "entry-zero.elf": (build_elf(CODE, entry=0, e_entry=CODE_VA), "ENTRY note 0"),
    }


def main() -> int:
    out = HERE / "bad"
    out.mkdir(exist_ok=True)
    for name, (blob, _why) in images().items():
        (out / name).write_bytes(blob)
    print(f"wrote {len(images())} files to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
