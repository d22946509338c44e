"""Build a small Linux initramfs in Python: a newc cpio archive, gzip'd, no root needed.

The archive is written byte by byte, so device nodes (``/dev/console``,
``/dev/hvc0``) and root-owned files need no privileges. Its contents:

* ``/init``: a shell script that mounts proc, sys and devtmpfs, prints a banner,
  loads the Xen front-ends and runs a busybox shell on the PV console ``hvc0``;
* ``/bin/busybox`` (Debian's busybox-static) and a link for each of its applets;
* ``xen-blkfront.ko`` and ``xen-netfront.ko`` from the kernel package, with the
  modules their ``.modinfo`` says they need, and a ``modules.dep`` of those alone
  (what depmod would write; the package ships none).

The output is deterministic: every mtime is 0, inode numbers count up, gzip's
header carries no time.

Real Xen: (none; Linux) Documentation/driver-api/early-userspace/buffer-format.rst,
usr/gen_init_cpio.c
"""

from __future__ import annotations

import gzip
import io
import stat
import subprocess
from pathlib import Path

__all__ = ["INIT", "CpioWriter", "build_initramfs", "module_closure"]

FRONTENDS = ("xen-blkfront", "xen-netfront", "xenfs")   # the frontends, and /proc/xen

INIT = """\
#!/bin/sh
# /init of xenlab's initramfs: Debian's Linux as a PV (or PVH) guest on xenlab.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo
echo "xenlab initramfs: Linux $(uname -r) is up as a Xen \
$(cat /sys/hypervisor/guest_type 2>/dev/null || echo PV) guest"
for m in xen-blkfront xen-netfront xenfs; do modprobe "$m" 2>/dev/null; done
/bin/busybox mount -t xenfs xenfs /proc/xen 2>/dev/null
echo "  /proc/xen: $(ls /proc/xen 2>/dev/null | tr '\\n' ' ')(capabilities is empty in a DomU;"
echo "  Dom0's says control_d)"
echo "Type commands (busybox sh on hvc0). 'poweroff -f' ends the guest."
exec setsid cttyhack sh </dev/hvc0 >/dev/hvc0 2>&1
"""

_DIRS = ("bin", "sbin", "dev", "etc", "proc", "sys", "tmp", "root", "usr", "usr/bin",
         "usr/sbin", "lib", "lib/modules")


class CpioWriter:
    """newc ("070701") cpio: a 110-byte ASCII header, the name, the data, 4-byte aligned."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.ino = 300000
        self.names: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", *, rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        name = name.strip("/") or "."
        if name in self.names:
            return
        self.names.add(name)
        self.ino += 1
        raw = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(raw), 0)
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(hdr + raw)
        self.out.write(b"\0" * (-(len(hdr) + len(raw)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self.directory(name.rsplit("/", 1)[0]) if "/" in name.strip("/") else None
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        self.out.write(b"\0" * (-self.out.tell() % 512))
        return self.out.getvalue()


def busybox_applets(busybox: Path) -> list[str]:
    """``busybox --list-full`` (bin/sh, sbin/modprobe, ...); a short list if it cannot run."""
    try:
        out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        applets = sorted({a.strip() for a in out.split() if a.strip()})
        if applets:
            return applets
    except (OSError, subprocess.SubprocessError):
        pass
    return [f"bin/{a}" for a in ("sh", "ash", "cat", "dmesg", "echo", "ls", "mount", "uname",
                                 "setsid", "cttyhack", "ps", "grep", "ip", "ping", "poweroff")] + \
        [f"sbin/{a}" for a in ("modprobe", "insmod", "lsmod", "poweroff", "reboot")]


def _modinfo_depends(ko: bytes) -> list[str]:
    """The ``depends=`` field of a module's .modinfo (NUL-separated key=value strings)."""
    for field in ko.split(b"\0"):
        if field.startswith(b"depends="):
            return [d for d in field[8:].decode().split(",") if d]
    return []


def module_closure(moddir: Path, wanted: tuple[str, ...] = FRONTENDS) -> list[str]:
    """The paths (under ``moddir``) of ``wanted`` and every module they need, needed first.

    A kernel package ships no ``modules.dep`` (depmod writes it at install time),
    so the dependencies come from each module's ``.modinfo`` ``depends=``, as depmod
    reads them; modules are found by name through ``modules.order``."""
    by_name: dict[str, str] = {}
    for rel in (moddir / "modules.order").read_text().split():
        name = Path(rel).name.split(".ko")[0].replace("-", "_")
        by_name.setdefault(name, rel)
    order: list[str] = []

    def visit(name: str) -> None:
        rel = by_name.get(name.replace("-", "_"))
        if rel is None or rel in order or not (moddir / rel).is_file():
            return
        for dep in _modinfo_depends((moddir / rel).read_bytes()):
            visit(dep)
        order.append(rel)

    for name in wanted:
        visit(name)
    return order


def build_initramfs(root: Path, release: str) -> bytes:
    """The gzip'd newc archive, from a folder holding the unpacked kernel and busybox-static."""
    w = CpioWriter()
    for d in _DIRS:
        w.directory(d)
    w.chardev("dev/console", 5, 1)
    w.chardev("dev/hvc0", 229, 0)
    w.chardev("dev/null", 1, 3, 0o666)
    w.file("init", INIT.encode(), 0o755)
    w.file("etc/hostname", b"linux-pv\n")
    busybox = root / "bin" / "busybox"
    w.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in busybox_applets(busybox):
        applet = applet.strip("/")
        if applet != "bin/busybox":
            w.directory(applet.rsplit("/", 1)[0]) if "/" in applet else None
            depth = applet.count("/")
            w.symlink(applet, "../" * depth + "bin/busybox" if depth else "bin/busybox")
    moddir = root / "lib" / "modules" / release
    if (moddir / "modules.order").is_file():
        mods = module_closure(moddir)
        base = f"lib/modules/{release}"
        dep_lines = []
        for m in mods:
            ko = (moddir / m).read_bytes()
            w.file(f"{base}/{m}", ko)
            needs = [by for d in _modinfo_depends(ko) for by in mods
                     if Path(by).name.split(".ko")[0].replace("-", "_") == d.replace("-", "_")]
            dep_lines.append(f"{m}: {' '.join(needs)}".rstrip())
        w.file(f"{base}/modules.dep", ("\n".join(dep_lines) + "\n").encode())
    return gzip.compress(w.finish(), compresslevel=9, mtime=0)
