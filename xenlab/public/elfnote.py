"""Xen ELF note types, read from a PV kernel's ``.note.Xen`` section by the builder.

Real Xen: xen/include/public/elfnote.h
"""

from __future__ import annotations

import enum

__all__ = ["XEN_ELFNOTE_OWNER", "ElfNote"]

XEN_ELFNOTE_OWNER = "Xen"


class ElfNote(enum.IntEnum):
    XEN_ELFNOTE_INFO = 0
    XEN_ELFNOTE_ENTRY = 1
    XEN_ELFNOTE_HYPERCALL_PAGE = 2
    XEN_ELFNOTE_VIRT_BASE = 3
    XEN_ELFNOTE_PADDR_OFFSET = 4
    XEN_ELFNOTE_XEN_VERSION = 5
    XEN_ELFNOTE_GUEST_OS = 6
    XEN_ELFNOTE_GUEST_VERSION = 7
    XEN_ELFNOTE_LOADER = 8
    XEN_ELFNOTE_PAE_MODE = 9
    XEN_ELFNOTE_FEATURES = 10
    XEN_ELFNOTE_BSD_SYMTAB = 11
    XEN_ELFNOTE_HV_START_LOW = 12
    XEN_ELFNOTE_L1_MFN_VALID = 13
    XEN_ELFNOTE_SUSPEND_CANCEL = 14
    XEN_ELFNOTE_INIT_P2M = 15
    XEN_ELFNOTE_MOD_START_PFN = 16
    XEN_ELFNOTE_SUPPORTED_FEATURES = 17
    XEN_ELFNOTE_PHYS32_ENTRY = 18


#: Notes whose descriptor is a string; the others are numbers.
STRING_NOTES = frozenset(
    {
        ElfNote.XEN_ELFNOTE_INFO,
        ElfNote.XEN_ELFNOTE_XEN_VERSION,
        ElfNote.XEN_ELFNOTE_GUEST_OS,
        ElfNote.XEN_ELFNOTE_GUEST_VERSION,
        ElfNote.XEN_ELFNOTE_LOADER,
        ElfNote.XEN_ELFNOTE_PAE_MODE,
        ElfNote.XEN_ELFNOTE_FEATURES,
        ElfNote.XEN_ELFNOTE_BSD_SYMTAB,
    }
)
