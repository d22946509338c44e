"""IPython magics: Dom0's shell in a notebook cell.

``%load_ext xenlab.views.magics`` registers:

==================  =========================================================
magic               does
==================  =========================================================
``%xl ARGS``        ``xl ARGS`` through the xl command table; prints exactly
                    what ``xenlab shell`` prints (after a command that changes
                    a domain the guests run a step, as in the shell).
                    ``%xl reset`` starts a fresh host
``%xenstore CMD``   ``xenstore-CMD ...`` (``ls``, ``read``, ``write``, ``rm``,
                    ``list``, ``exists``, ``chmod``) through ``xenstore_main``
``%%xlcfg NAME``    writes the cell to ``NAME.cfg`` in a temporary folder
                    and runs ``%xl create`` on it (relative ``kernel`` and disk
                    paths resolve from the notebook's folder, then images/)
==================  =========================================================

All magics share one ``Lab`` per IPython session, created on first use
(``get_lab()``; ``set_lab(lab)`` to hand it your own).

Real Xen: a root shell in Dom0 (``xl``, ``xenstore-*``, a config in /etc/xen)
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from xenlab.cli import SHELL_STEP
from xenlab.errors import UsageError
from xenlab.lab import IMAGES, Lab
from xenlab.tools.xl.xl_cmdtable import CMD_TABLE
from xenlab.xen.setup import DEFAULT_DOM0_MIB, DEFAULT_HOST_MIB, RunStatus

__all__ = ["XenlabMagics", "get_lab", "load_ipython_extension", "new_lab",
           "set_lab",
           "unload_ipython_extension", "xenstore_command", "xl_command", "xlcfg_command"]

_LAB: Lab | None = None
_CFG_DIR: str | None = None


def get_lab() -> Lab:
    """The session's shared Lab (created on first use)."""
    global _LAB
    if _LAB is None:
        _LAB = new_lab()
    return _LAB


def new_lab() -> Lab:
    """A Lab sized like ``xenlab shell``'s host (so ``%xl list`` matches it)."""
    return Lab(memory_mib=DEFAULT_HOST_MIB, dom0_mem_mib=DEFAULT_DOM0_MIB)


def set_lab(lab: Lab | None) -> None:
    """Use ``lab`` for the magics from now on (None: a fresh one on next use)."""
    global _LAB
    if lab is not None and not isinstance(lab, Lab):
        raise UsageError(f"set_lab() takes a Lab (or None), not {type(lab).__name__}")
    _LAB = lab


def _line_arg(call: str, value: object) -> str:
    """The magics' entry points take the text of the line (or cell) as IPython passes it."""
    if not isinstance(value, str):
        raise UsageError(f"{call} takes the magic's line as a string, not "
                         f"{'None' if value is None else type(value).__name__}")
    return value


def xl_command(line: str) -> str:
    """What ``%xl line`` prints."""
    _line_arg("xl_command()", line)
    if line.strip() == "reset":
        set_lab(new_lab())
        return "xenlab: new host\n"
    lab = get_lab()
    output = lab.xl_output(line)
    words = line.split()
    if words and words[0] == "xl":
        words = words[1:]
    spec = CMD_TABLE.get(words[0]) if words else None
    # as `xenlab shell` does: after a command that changes a domain, the guests run a step
    if (spec is not None and spec.modifies
            and lab.run(max_instructions=SHELL_STEP) is RunStatus.BUDGET):
        output += (f"(guests still running after {SHELL_STEP:,} instructions; "
                   "'run' continues)\n")
    return output


def xenstore_command(line: str) -> str:
    """What ``%xenstore line`` prints: ``ls /a`` runs ``xenstore-ls /a``."""
    import contextlib
    import io

    words = _line_arg("xenstore_command()", line).strip()
    if not words:
        words = "ls"
    if not words.startswith("xenstore-"):
        words = "xenstore-" + words
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        get_lab().xenstore(words)
    return buf.getvalue()


_PATH_KEY = re.compile(r'^(\s*(?:kernel|ramdisk)\s*=\s*")([^"/][^"]*)(")', re.MULTILINE)
_TARGET = re.compile(r"(target=)([^,'\"\s]+)")


def _absolutise(body: str) -> str:
    """Relative kernel/ramdisk/disk paths: from the current folder if they exist there,
    else from the shipped images/ folder (a temp folder holds the .cfg itself)."""
    def fix(path: str) -> str:
        if os.path.isabs(path):
            return path
        if os.path.exists(path) or not (IMAGES / path).exists():
            return os.path.abspath(path)
        return str(IMAGES / path)

    body = _PATH_KEY.sub(lambda m: m.group(1) + fix(m.group(2)) + m.group(3), body)
    return _TARGET.sub(lambda m: m.group(1) + fix(m.group(2)), body)


def xlcfg_command(line: str, cell: str) -> str:
    """What ``%%xlcfg NAME`` prints: the cell saved as NAME.cfg, then ``xl create``."""
    global _CFG_DIR
    _line_arg("xlcfg_command()", line)
    _line_arg("xlcfg_command()", cell)
    name = line.strip() or "domain"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        return f"xlcfg: bad config name {name!r}\n"
    if _CFG_DIR is None:
        _CFG_DIR = tempfile.mkdtemp(prefix="xenlab-cfg-")
        atexit.register(shutil.rmtree, _CFG_DIR, ignore_errors=True)
    path = os.path.join(_CFG_DIR, f"{name}.cfg")
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(_absolutise(cell))
    return xl_command(f"create {path}")


@magics_class
class XenlabMagics(Magics):
    @line_magic
    def xl(self, line: str) -> None:
        """%xl list | create CFG | console NAME | dmesg | ... | reset"""
        print(xl_command(line), end="")

    @line_magic
    def xenstore(self, line: str) -> None:
        """%xenstore ls /local/domain | read PATH | write PATH VALUE | ..."""
        print(xenstore_command(line), end="")

    @cell_magic
    def xlcfg(self, line: str, cell: str) -> None:
        """%%xlcfg NAME: the cell is an xl config; create a domain from it."""
        print(xlcfg_command(line, cell), end="")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext xenlab.views.magics``"""
    ipython.register_magics(XenlabMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond the session's Lab, which is dropped."""
    set_lab(None)
