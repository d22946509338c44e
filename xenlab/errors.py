"""The exception hierarchy of xenlab.

Every error a user can cause (a bad config, a broken image, too little host
memory, a command on a domain that does not exist) is a ``XenlabError``; the
``xenlab`` command prints it as one line ``xenlab: error: ...`` and exits 2.
Errors a *guest* causes never become Python exceptions: they are Xen errno
values returned to the guest, or a crash of that guest alone.

::

    XenlabError
    ├── ConfigError       malformed or inconsistent xl.cfg  (FILE:LINE: ...)
    ├── ImageError        kernel/firmware/disk image unusable
    ├── HostMemoryError   the host cannot hold what was asked (ENOMEM)
    ├── DomainError       no such domain / operation not valid in its state
    ├── UsageError        bad command line
    └── AssemblyError     a notebook's assembly code that as/ld refuse (xenlab.labkit)

Real Xen: tools/libs/light/libxl_internal.h (ERROR_* codes), tools/xl/xl.h
"""

from __future__ import annotations

__all__ = [
    "AssemblyError",
    "ConfigError",
    "DomainError",
    "HostMemoryError",
    "ImageError",
    "UsageError",
    "XenlabError",
]


class XenlabError(Exception):
    """Base class: a user-facing error with a one-line message."""


class ConfigError(XenlabError):
    """An xl.cfg file that cannot be used; the message starts with FILE:LINE."""


class ImageError(XenlabError):
    """A kernel, firmware or disk image that cannot be loaded."""


class HostMemoryError(XenlabError):
    """Not enough free host memory for the request (Xen would say ENOMEM)."""


class DomainError(XenlabError):
    """A domain that does not exist, or an operation its state forbids."""


class UsageError(XenlabError):
    """A command line that does not make sense."""


class AssemblyError(XenlabError):
    """Assembly code (typed in a notebook) that GNU as or ld refuse: ``line N: ...``."""
