"""xl's command table: one row per command, dispatched by name (never by getattr).

Real Xen: tools/xl/xl_cmdtable.c (cmd_table[]), tools/xl/xl.c (main)
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from xenlab.errors import UsageError
from xenlab.tools.xl import xl_cmdimpl as impl

if TYPE_CHECKING:
    from xenlab.tools.libs.light.libxl import Libxl

__all__ = ["CMD_TABLE", "CmdSpec", "xl_main"]


@dataclass(frozen=True)
class CmdSpec:
    name: str
    func: Callable[[Libxl, list[str], IO[str]], int]
    modifies: bool
    help: str
    usage: str


CMD_TABLE: dict[str, CmdSpec] = {spec.name: spec for spec in (
    CmdSpec("create", impl.main_create, True, "Create a domain from config file <filename>",
            "[-p] [-c] <ConfigFile>"),
    CmdSpec("list", impl.main_list, False, "List information about all/some domains",
            "[-l] [Domain...]"),
    CmdSpec("destroy", impl.main_destroy, True, "Terminate a domain immediately", "<Domain>"),
    CmdSpec("shutdown", impl.main_shutdown, True, "Issue a shutdown signal to a domain",
            "[-F] <Domain>"),
    CmdSpec("reboot", impl.main_reboot, True, "Issue a reboot signal to a domain",
            "[-F] <Domain>"),
    CmdSpec("pause", impl.main_pause, True, "Pause execution of a domain", "<Domain>"),
    CmdSpec("unpause", impl.main_unpause, True, "Unpause a paused domain", "<Domain>"),
    CmdSpec("console", impl.main_console, False, "Attach to domain's console",
            "[-t pv|serial] <Domain>"),
    CmdSpec("vcpu-list", impl.main_vcpulist, False, "List the VCPUs for all/some domains",
            "[Domain...]"),
    CmdSpec("info", impl.main_info, False, "Get information about Xen host", ""),
    CmdSpec("dmesg", impl.main_dmesg, False, "Read and/or clear dmesg buffer", "[-c]"),
    CmdSpec("top", impl.main_top, False, "Monitor a host and the domains in real time", ""),
)}


def _split(argv: list[str] | str) -> list[str]:
    """A command line in words, as the shell splits it; an unclosed quote is a UsageError."""
    try:
        return shlex.split(argv) if isinstance(argv, str) else list(argv)
    except ValueError as err:
        raise UsageError(f"cannot split the command line: {err}") from None


def xl_main(xl: Libxl, argv: list[str] | str, out: IO[str]) -> int:
    """Run one ``xl`` command line (with or without the leading ``xl``)."""
    args = _split(argv)
    if args and args[0] == "xl":
        args = args[1:]
    if not args or args[0] in ("help", "-h", "--help"):
        out.write("Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n")
        for spec in CMD_TABLE.values():
            out.write(f" {spec.name:<18}{spec.help}\n")
        return 0
    spec = CMD_TABLE.get(args[0])
    if spec is None:
        raise UsageError(f"xl: unknown command '{args[0]}' (try 'xl help')")
    return spec.func(xl, args[1:], out)
