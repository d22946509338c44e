"""A notebook-sized handle on one emulated Xen host: ``Lab().xl("list")``.

The labs use this instead of wiring ``XenHost``, ``Libxl`` and the ``xl``
command table together in every notebook. It lives at the toolstack layer
(no widgets, no plotting); the views build on top of it.

Real Xen: a shell in Dom0 where an administrator types ``xl`` commands
"""

from __future__ import annotations

import io
from pathlib import Path

from xenlab.errors import XenlabError
from xenlab.tools.libs.light.libxl import Libxl
from xenlab.tools.xenstore.xenstore_client import xenstore_main
from xenlab.tools.xl.xl_cmdtable import xl_main
from xenlab.xen.domain import Domain
from xenlab.xen.setup import RunStatus, XenHost
from xenlab.xen.trace import Trace

__all__ = ["IMAGES", "Lab"]

#: The guest images shipped with xenlab (a checkout's ``images/`` folder).
IMAGES = Path(__file__).resolve().parents[1] / "images"


class Lab:
    """One host, its toolstack, and a few conveniences for notebooks."""

    def __init__(self, *, memory_mib: int = 1024, nr_cpus: int = 2, dom0_mem_mib: int = 256
                 ) -> None:
        self.host = XenHost(memory_mib=memory_mib, nr_cpus=nr_cpus, dom0_mem_mib=dom0_mem_mib)
        self.toolstack = Libxl(self.host)

    @property
    def trace(self) -> Trace:
        return self.host.trace

    def xl(self, command: str) -> None:
        """Run one ``xl`` command line and print what xl prints (errors as ``xl: error:``)."""
        print(self.xl_output(command), end="")

    def xl_output(self, command: str) -> str:
        """Run one ``xl`` command line and return what xl would print."""
        out = io.StringIO()
        try:
            xl_main(self.toolstack, command, out)
        except XenlabError as err:
            out.write(f"xl: error: {err}\n")
        return out.getvalue()

    def xenstore(self, command: str) -> None:
        """``xenstore-ls /local/domain/1`` and friends, as Dom0's administrator types them."""
        out = io.StringIO()
        try:
            xenstore_main(self.toolstack.services.store, command, out,
                          after_write=self.toolstack.services.xenstored.flush)
        except XenlabError as err:
            out.write(f"{command.split()[0]}: {err}\n")
        print(out.getvalue(), end="")

    def console_input(self, name_or_id: str | int, text: str) -> int:
        """Type ``text`` into the domain's PV console (what you type in ``xl console``):
        xenconsoled puts it in the ring's ``in[]`` and notifies the guest."""
        d = self.domain(name_or_id)
        dm = self.toolstack.device_models.get(d.domid)
        if dm is not None:  # an HVM guest: keystrokes on the PS/2 keyboard, and on COM1
            dm.type_keys(text)
            dm.send_serial_input(text.encode("latin-1"))
            return len(text)
        return self.toolstack.services.xenconsoled.send_input(d.domid, text.encode("latin-1"))

    def run(self, max_instructions: int = 2_000_000_000,
            max_seconds: float = 60.0) -> RunStatus:
        """Let the guests run until nothing is left to do, or the budget of instructions or
        of virtual seconds ends (an idle guest waiting for a key burns no instructions)."""
        return self.host.run(max_instructions=max_instructions,
                             max_time_ns=int(max_seconds * 1e9))

    def domain(self, name_or_id: str | int) -> Domain:
        return self.toolstack.lookup(name_or_id)

    def console(self, name_or_id: str | int) -> str:
        return bytes(self.domain(name_or_id).console).decode("latin-1")

    @staticmethod
    def image(name: str) -> str:
        """Path of a shipped config or kernel, e.g. ``Lab.image("pv-hello.cfg")``."""
        return str(IMAGES / name)
