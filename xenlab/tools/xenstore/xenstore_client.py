"""The xenstore command-line tools Dom0's administrator uses: xenstore-ls, -read, -write, -rm,
-list, -exists, -chmod, dispatched through one table.

Real Xen: tools/xenstore/xenstore_client.c
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import IO

from xenlab.errors import UsageError
from xenlab.tools.xenstore.xenstored import XenStore, XenStoreError

__all__ = ["XENSTORE_COMMANDS", "xenstore_main"]


def _ls(store: XenStore, args: list[str], out: IO[str]) -> int:
    perms = "-p" in args
    paths = [a for a in args if not a.startswith("-")] or ["/"]
    for path in paths:
        out.write(store.ls(path, perms=perms))
    return 0


def _read(store: XenStore, args: list[str], out: IO[str]) -> int:
    if not args:
        raise UsageError("usage: xenstore-read PATH...")
    for path in args:
        value = store.read(path)
        if value is None:
            raise XenStoreError("ENOENT", f"could not read path {path}")
        out.write(value + "\n")
    return 0


def _write(store: XenStore, args: list[str], out: IO[str]) -> int:
    if len(args) < 2 or len(args) % 2:
        raise UsageError("usage: xenstore-write PATH VALUE [PATH VALUE ...]")
    for path, value in zip(args[::2], args[1::2], strict=True):
        store.write(path, value)
    return 0


def _rm(store: XenStore, args: list[str], out: IO[str]) -> int:
    if not args:
        raise UsageError("usage: xenstore-rm PATH...")
    for path in args:
        store.rm(path)
    return 0


def _list(store: XenStore, args: list[str], out: IO[str]) -> int:
    for path in args or ["/"]:
        for name in store.directory(path):
            out.write(name + "\n")
    return 0


def _exists(store: XenStore, args: list[str], out: IO[str]) -> int:
    return 0 if args and all(store.exists(p) for p in args) else 1


def _chmod(store: XenStore, args: list[str], out: IO[str]) -> int:
    if len(args) < 2:
        raise UsageError("usage: xenstore-chmod PATH PERM...")
    store.set_perms(args[0], args[1:])
    return 0


Command = Callable[[XenStore, list[str], IO[str]], int]
XENSTORE_COMMANDS: dict[str, Command] = {
    "xenstore-ls": _ls,
    "xenstore-read": _read,
    "xenstore-write": _write,
    "xenstore-rm": _rm,
    "xenstore-list": _list,
    "xenstore-exists": _exists,
    "xenstore-chmod": _chmod,
}


def xenstore_main(store: XenStore, argv: list[str] | str, out: IO[str],
                  after_write: Callable[[], None] | None = None) -> int:
    """Run one xenstore-* command as Dom0 (``after_write`` delivers the watch events)."""
    try:
        args = shlex.split(argv) if isinstance(argv, str) else list(argv)
    except ValueError as err:  # an unclosed quote
        raise UsageError(f"cannot split the command line: {err}") from None
    if not args or args[0] not in XENSTORE_COMMANDS:
        raise UsageError(f"unknown command '{args[0] if args else ''}'")
    rc = XENSTORE_COMMANDS[args[0]](store, args[1:], out)
    if after_write is not None and args[0] in ("xenstore-write", "xenstore-rm",
                                               "xenstore-chmod"):
        after_write()
    return rc
