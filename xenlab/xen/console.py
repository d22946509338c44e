"""The hypervisor console: Xen's log ring (``xl dmesg``) and the console_io hypercall.

Xen's own messages are ``(XEN) ...`` lines. A guest's ``CONSOLEIO_write`` goes
into the same ring as ``(d1) ...`` lines, which is what a *debug* build of Xen
does; a release build refuses the write from an unprivileged domain (XSM
``xsm_console_io``). xenlab behaves like a debug build so that the smallest
guest can print before it has a PV console ring. Each domain's console_io
output is also kept per domain, for ``xl console`` and ``xenlab run``.

Real Xen: xen/drivers/char/console.c (do_console_io, guest_console_write, printk)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenlab.public.console import ConsoleIO
from xenlab.public.errno import Errno

if TYPE_CHECKING:
    from xenlab.xen.hypercall import HypercallContext

__all__ = ["ConsoleLog", "do_console_io"]

CONRING_SIZE = 1 << 16
GUEST_LINE_MAX = 256  # bytes kept, like Xen's default conring (16 KiB on small hosts)


class ConsoleLog:
    """The console ring ``xl dmesg`` reads."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._size = 0
        self._partial: dict[int, str] = {}

    def printk(self, text: str) -> None:
        for line in text.splitlines():
            self._append(f"(XEN) {line}")

    def guest_write(self, domid: int, text: str) -> list[str]:
        """Append a guest's bytes; returns the completed lines. Like Xen's per-domain
        line buffer, an overlong line is flushed when the buffer is full."""
        buf = self._partial.get(domid, "") + text
        *complete, rest = buf.split("\n")
        while len(rest) > GUEST_LINE_MAX:
            complete.append(rest[:GUEST_LINE_MAX])
            rest = rest[GUEST_LINE_MAX:]
        self._partial[domid] = rest
        for line in complete:
            self._append(f"(d{domid}) {line}")
        return complete

    def _append(self, line: str) -> None:
        self.lines.append(line)
        self._size += len(line) + 1
        while self._size > CONRING_SIZE and self.lines:
            self._size -= len(self.lines.pop(0)) + 1

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    def clear(self) -> None:
        self.lines.clear()
        self._size = 0


def _printable(data: bytes) -> str:
    return "".join(chr(b) if b in (9, 10) or 32 <= b < 127 else "." for b in data)


def do_console_io(ctx: HypercallContext, cmd: int, count: int, buffer: int) -> int:
    """``long do_console_io(unsigned int cmd, unsigned int count, buffer)``"""
    cmd &= 0xFFFFFFFF
    count &= 0xFFFFFFFF
    ctx.decode(cmd=ctx.enum_name(ConsoleIO, cmd), count=count, buffer=hex(buffer))
    if cmd == ConsoleIO.CONSOLEIO_write:
        if count > 4096 * 16:
            count = 4096 * 16  # Xen copies in chunks; we cap one call's work
        data = ctx.copy_from_guest(buffer, count)
        if data is None:
            return -Errno.EFAULT
        text = _printable(data)
        ctx.decoded["text"] = text
        ctx.host.console_write(ctx.domain, text)
        return 0
    if cmd == ConsoleIO.CONSOLEIO_read:
        if not ctx.domain.privileged:
            return -Errno.EPERM
        data = ctx.host.console_input(count)
        if not ctx.copy_to_guest(buffer, data):
            return -Errno.EFAULT
        return len(data)
    return -Errno.ENOSYS
