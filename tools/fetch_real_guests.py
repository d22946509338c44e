"""Fetch real guests from Debian into a cache folder, without root: `make real-guests`.

Binaries nobody here wrote are the fidelity test, so they are fetched at test
time and never committed. This script

1. resolves the exact package names with ``apt-cache`` (``linux-image-amd64``
   is a metapackage that depends on one ``linux-image-6.1.0-NN-amd64``; a glob
   given to ``apt-get download`` would fetch every matching kernel);
2. ``apt-get download``\\ s that kernel package and ``busybox-static`` into
   ``CACHE/debs`` and unpacks each with ``dpkg-deb -x`` into ``CACHE/root``;
3. builds ``CACHE/initrd.gz``, a gzip'd newc cpio with a busybox ``/init``, the
   ``xen-blkfront`` and ``xen-netfront`` modules (and what ``modules.dep`` says
   they need), and links ``CACHE/vmlinuz`` to the kernel;
4. writes ``CACHE/linux-pv.cfg``, the same guest as ``images/linux-pv.cfg`` with
   absolute paths (the one to use when ``$XENLAB_REAL_GUESTS`` moves the cache).

``CACHE`` is ``$XENLAB_REAL_GUESTS`` or ``~/.cache/xenlab/real-guests``. Running it
again does nothing that is already done. Without apt or the network it prints one
line ``fetch_real_guests: error: ...`` and exits 2.

    python tools/fetch_real_guests.py [--cache DIR] [--quiet]

Real Xen: (none; Debian's packaging) apt-get(8) download, dpkg-deb(1) -x;
the initramfs follows Linux's Documentation/driver-api/early-userspace/buffer-format.rst
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from initramfs import build_initramfs

KERNEL_META = "linux-image-amd64"
BUSYBOX = "busybox-static"


class FetchError(Exception):
    """One line for the user: what failed and what to do."""


def cache_dir(override: str | None = None) -> Path:
    """The cache folder: --cache, else $XENLAB_REAL_GUESTS, else ~/.cache/xenlab/real-guests."""
    raw = override or os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests"
    return Path(raw).expanduser().resolve()


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                             env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        raise FetchError(f"{argv[0]} not found: this needs a Debian machine with apt "
                         "(apt-cache, apt-get, dpkg-deb)") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise FetchError(f"`{' '.join(argv)}` failed: {last}")
    return out.stdout


def resolve_kernel_package() -> str:
    """The exact linux-image-6.1.0-NN-amd64 that linux-image-amd64 depends on."""
    for line in _run(["apt-cache", "depends", KERNEL_META]).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "Depends:" and parts[1].startswith("linux-image-"):
            return parts[1]
    raise FetchError(f"apt-cache knows no kernel package behind {KERNEL_META} "
                     "(run `apt-get update`?)")


def resolve_version(pkg: str) -> str:
    """The candidate version apt would download."""
    for line in _run(["apt-cache", "policy", pkg]).splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            ver = line.split(None, 1)[1]
            if ver != "(none)":
                return ver
    raise FetchError(f"apt has no candidate version of {pkg} (run `apt-get update`?)")


def deb_name(pkg: str, version: str) -> str:
    """apt-get download's file name: the epoch's ':' is written '%3a'."""
    return f"{pkg}_{version.replace(':', '%3a')}_amd64.deb"


def fetch(pkg: str, debs: Path, root: Path, say) -> Path:
    """Download and unpack one package, unless it already is."""
    version = resolve_version(pkg)
    deb = debs / deb_name(pkg, version)
    stamp = root / f".unpacked-{deb.name}"
    if not deb.is_file():
        say(f"downloading {pkg} {version}")
        _run(["apt-get", "download", f"{pkg}={version}"], cwd=debs)
        if not deb.is_file():
            found = sorted(debs.glob(f"{pkg}_*.deb"))
            if not found:
                raise FetchError(f"apt-get download {pkg} left no .deb in {debs}")
            deb = found[-1]
            stamp = root / f".unpacked-{deb.name}"
    if not stamp.exists():
        say(f"unpacking {deb.name}")
        _run(["dpkg-deb", "-x", str(deb), str(root)])
        stamp.touch()
    return deb


CFG = """\
# linux-pv: Debian's own Linux kernel (linux-image-amd64) as a PV guest, with an
# initramfs of busybox-static. Written by tools/fetch_real_guests.py.
name = "linux-pv"
type = "pv"
kernel = "{cache}/vmlinuz"
ramdisk = "{cache}/initrd.gz"
cmdline = "console=hvc0 earlyprintk=xen"
memory = 256
on_poweroff = "preserve"
on_crash = "preserve"
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fetch_real_guests", description=__doc__.split("\n")[0])
    ap.add_argument("--cache", help="cache folder (default: $XENLAB_REAL_GUESTS or "
                    "~/.cache/xenlab/real-guests)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    say = (lambda _m: None) if args.quiet else (lambda m: print(f"fetch_real_guests: {m}"))
    cache = cache_dir(args.cache)
    try:
        debs, root = cache / "debs", cache / "root"
        for d in (debs, root):
            d.mkdir(parents=True, exist_ok=True)
        kpkg = resolve_kernel_package()
        fetch(kpkg, debs, root, say)
        fetch(BUSYBOX, debs, root, say)
        release = kpkg.removeprefix("linux-image-")
        vmlinuz = root / "boot" / f"vmlinuz-{release}"
        if not vmlinuz.is_file():
            raise FetchError(f"{vmlinuz}: not in {kpkg}")
        link = cache / "vmlinuz"
        if not link.is_symlink() or os.readlink(link) != os.path.relpath(vmlinuz, cache):
            link.unlink(missing_ok=True)
            link.symlink_to(os.path.relpath(vmlinuz, cache))
        initrd = cache / "initrd.gz"
        stamp = cache / f".initrd-{release}-{initrd_version()}"
        if not initrd.is_file() or not stamp.exists():
            say(f"building {initrd.name}")
            data = build_initramfs(root, release)
            tmp = initrd.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(initrd)
            for old in cache.glob(".initrd-*"):
                old.unlink()
            stamp.touch()
        cfg = cache / "linux-pv.cfg"
        text = CFG.format(cache=cache)
        if not cfg.is_file() or cfg.read_text() != text:
            cfg.write_text(text)
    except FetchError as err:
        print(f"fetch_real_guests: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"fetch_real_guests: error: {cache}: {err.strerror or err}", file=sys.stderr)
        return 2
    say(f"ready: {cache}/linux-pv.cfg (kernel {release})")
    return 0


def initrd_version() -> str:
    """Changes whenever initramfs.py changes, so the image is rebuilt."""
    import hashlib

    return hashlib.sha1(Path(__file__).with_name("initramfs.py").read_bytes()).hexdigest()[:12]


if __name__ == "__main__":
    sys.exit(main())
