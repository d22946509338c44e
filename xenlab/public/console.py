"""console_io sub-operations (the hypervisor's own console).

Real Xen: xen/include/public/xen.h (CONSOLEIO_*)
"""

from __future__ import annotations

import enum

__all__ = ["ConsoleIO"]


class ConsoleIO(enum.IntEnum):
    CONSOLEIO_write = 0
    CONSOLEIO_read = 1
