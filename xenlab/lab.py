"""A notebook-sized handle on one emulated Xen host: ``Lab().xl("list")``.

The labs use this instead of wiring ``XenHost``, ``Libxl`` and the ``xl``
command table together in every notebook. It lives at the toolstack layer
(no widgets, no plotting); the views build on top of it.

Real Xen: a shell in Dom0 where an administrator types ``xl`` commands
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from xenlab.errors import UsageError, XenlabError
from xenlab.i18n import tr
from xenlab.tools.libs.light.libxl import (
    REAL_PARTS,
    Libxl,
    real_part_installed,
    rtc_base_wallclock,
)
from xenlab.tools.xenstore.xenstore_client import xenstore_main
from xenlab.tools.xl.xl_cmdtable import xl_main
from xenlab.xen.domain import Domain
from xenlab.xen.setup import XEN_RESERVED_MIB, RunStatus, XenHost
from xenlab.xen.trace import Trace

__all__ = ["IMAGES", "Lab"]

#: The guest images shipped with xenlab (a checkout's ``images/`` folder).
IMAGES = Path(__file__).resolve().parents[1] / "images"
#: The CLI's bounds (``xenlab run --host-memory``, ``--cpus``).
HOST_MIB_RANGE = (64, 65536)
CPUS_RANGE = (1, 64)
DOM0_MIB_MIN = 16


def _shown(value: object) -> str:
    """A value as a student typed it, with its type: ``None``, ``'x' (str)``, ``3.5 (float)``."""
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_arg(call: str, name: str, value: object, low: int, high: int | None = None) -> int:
    """An integer argument within [low, high]; UsageError saying what was wrong otherwise."""
    if not _is_int(value):
        raise UsageError(f"{call}: {name} must be a whole number, not {_shown(value)}")
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        where = f"between {low:,} and {high:,}" if high is not None else f"at least {low:,}"
        raise UsageError(f"{call}: {name} must be {where}, not {value:,}")
    return value


def _str_arg(call: str, name: str, value: object, example: str) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{call}: {name} must be a string such as {example}, "
                         f"not {_shown(value)}")
    return value


def _command_arg(call: str, value: object, example: str) -> str | list[str]:
    """A command line: a string, or a list of words (strings)."""
    if isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value):
        return list(value)
    return _str_arg(call, "the command", value, example)


def _domain_arg(call: str, value: object) -> str | int:
    """A domain is named by its name (str) or its domain id (int >= 0)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise UsageError(f"{call}: a domain is given by its name (a string such as 'pv-hello') "
                     f"or its domain id (a whole number >= 0), not {_shown(value)}")


class Lab:
    """One host, its toolstack, and a few conveniences for notebooks."""

    def __init__(self, *, memory_mib: int = 1024, nr_cpus: int = 2, dom0_mem_mib: int = 256,
                 rtc_base: str | None = None) -> None:
        """``rtc_base``: where the machine's clock starts, which HVM guests read from
        their RTC: "fixed" (2026-01-01 00:00:00 UTC, the same every run: the default),
        "utc" (the host's clock, QEMU's ``-rtc base=utc``) or a UTC date such as
        "2030-06-15T12:00:00"; unset, ``$XENLAB_RTC_BASE`` says, else "fixed"."""
        call = "Lab()"
        memory_mib = _int_arg(call, "memory_mib (the host's memory in MiB)", memory_mib,
                              *HOST_MIB_RANGE)
        nr_cpus = _int_arg(call, "nr_cpus (the host's physical CPUs)", nr_cpus, *CPUS_RANGE)
        dom0_mem_mib = _int_arg(call, "dom0_mem_mib (Dom0's memory in MiB)", dom0_mem_mib,
                                DOM0_MIB_MIN)
        if dom0_mem_mib + XEN_RESERVED_MIB > memory_mib:
            raise UsageError(f"{call}: dom0_mem_mib = {dom0_mem_mib} does not fit in "
                             f"memory_mib = {memory_mib} (Xen keeps {XEN_RESERVED_MIB} MiB "
                             "for itself)")
        if rtc_base is not None:
            rtc_base = _str_arg(call, "rtc_base", rtc_base, "'utc'")
        wallclock = rtc_base_wallclock(rtc_base, f"{call}: rtc_base")
        self.host = XenHost(memory_mib=memory_mib, nr_cpus=nr_cpus, dom0_mem_mib=dom0_mem_mib,
                            wallclock=wallclock)
        self.toolstack = Libxl(self.host)

    @property
    def trace(self) -> Trace:
        return self.host.trace

    def xl(self, command: str | list[str]) -> None:
        """Run one ``xl`` command line and print what xl prints (errors as ``xl: error:``)."""
        print(self.xl_output(_command_arg("lab.xl()", command, "'list'")), end="")

    def xl_output(self, command: str | list[str]) -> str:
        """Run one ``xl`` command line and return what xl would print."""
        command = _command_arg("lab.xl_output()", command, "'list'")
        out = io.StringIO()
        try:
            xl_main(self.toolstack, command, out)
        except XenlabError as err:
            out.write(f"xl: error: {err}\n")
        return out.getvalue()

    def xenstore(self, command: str) -> None:
        """``xenstore-ls /local/domain/1`` and friends, as Dom0's administrator types them."""
        words = _command_arg("lab.xenstore()", command, "'xenstore-ls /local/domain'")
        out = io.StringIO()
        try:
            xenstore_main(self.toolstack.services.store, words, out,
                          after_write=self.toolstack.services.xenstored.flush)
        except XenlabError as err:
            first = words.split()[:1] if isinstance(words, str) else words[:1]
            out.write(f"{(first or ['xenstore'])[0]}: {err}\n")
        print(out.getvalue(), end="")

    def console_input(self, name_or_id: str | int, text: str) -> int:
        """Type ``text`` into the domain's PV console (what you type in ``xl console``):
        xenconsoled puts it in the ring's ``in[]`` and notifies the guest."""
        call = "lab.console_input()"
        d = self.toolstack.lookup(_domain_arg(call, name_or_id))
        _str_arg(call, "the text to type", text, "'ls\\n'")
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError as err:
            raise UsageError(f"{call}: {text[err.start]!r} cannot be typed on the console "
                             "(it takes Latin-1 characters, one byte each)") from None
        dm = self.toolstack.device_models.get(d.domid)
        if dm is not None:  # an HVM guest: keystrokes on the PS/2 keyboard, and on COM1
            dm.type_keys(text)
            dm.send_serial_input(data)
            return len(text)
        return self.toolstack.services.xenconsoled.send_input(d.domid, data)

    def run(self, max_instructions: int = 2_000_000_000,
            max_seconds: float = 60.0) -> RunStatus:
        """Let the guests run until nothing is left to do, or the budget of instructions or
        of virtual seconds ends (an idle guest waiting for a key burns no instructions).
        Both must be positive, as ``xenlab run --max-instructions`` / ``--max-time``."""
        call = "lab.run()"
        if not _is_int(max_instructions):
            raise UsageError(f"{call}: max_instructions must be a whole number, not "
                             f"{_shown(max_instructions)}")
        if max_instructions <= 0:
            raise UsageError(f"{call}: max_instructions must be positive, not "
                             f"{max_instructions:,}")
        if not isinstance(max_seconds, (int, float)) or isinstance(max_seconds, bool):
            raise UsageError(f"{call}: max_seconds must be a number, not {_shown(max_seconds)}")
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise UsageError(f"{call}: max_seconds must be positive and finite, not "
                             f"{max_seconds}")
        return self.host.run(max_instructions=max_instructions,
                             max_time_ns=int(max_seconds * 1e9))

    def domain(self, name_or_id: str | int) -> Domain:
        """The domain with this name or domain id (DomainError if there is none)."""
        return self.toolstack.lookup(_domain_arg("lab.domain()", name_or_id))

    def console(self, name_or_id: str | int) -> str:
        """What the domain has written to its console so far."""
        d = self.toolstack.lookup(_domain_arg("lab.console()", name_or_id))
        return bytes(d.console).decode("latin-1")

    @staticmethod
    def missing(part: str) -> str | None:
        """Whether the distribution's real ``part`` is installed: None if it is, else a
        line saying what is missing and how to install it. The parts: "seabios" (Xen's
        hvmloader and SeaBIOS), "pvh-grub", "pv-grub" (``grub-xen-host``); they are
        found where the distribution put them (no Xen version is assumed). The line is
        in the labs' language (``xenlab.i18n.set_language``)."""
        part = _str_arg("Lab.missing()", "the part", part, "'seabios'")
        if part not in REAL_PARTS:
            raise UsageError(f"Lab.missing(): no part {part!r}; the parts are "
                             f"{', '.join(REAL_PARTS)}")
        return None if real_part_installed(part) else tr(f"missing_{part}")

    @staticmethod
    def image(name: str) -> str:
        """Path of a shipped config or kernel, e.g. ``Lab.image("pv-hello.cfg")``."""
        return str(IMAGES / _str_arg("Lab.image()", "the name", name, "'pv-hello.cfg'"))
