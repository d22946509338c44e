"""Read a guest image file from Dom0's disk: only a regular file, and never more than a bound.

The domain builder reads kernels, ramdisks and firmware whole. A path in an
xl.cfg is whatever the user typed, so it may name ``/dev/zero`` (endless),
``/dev/urandom``, a FIFO (blocks until someone writes), a directory, or a file
far larger than the domain. ``read_image_file`` refuses all of these with one
line *before* reading: ``os.stat`` says what the path is and how large; then the
file is opened without blocking (a FIFO swapped in after the check cannot hang
the open), checked again on the open descriptor, and read with a bound, so a
file that grows in between is still refused rather than read without end.

Real Xen: tools/libs/guest/xg_dom_core.c (xc_dom_malloc_filemap's max_size,
xc_dom_kernel_max_size, xc_dom_module_max_size), tools/libs/light/libxl_utils.c
(libxl_read_file_contents: "is not a plain file")
"""

from __future__ import annotations

import os
import stat

from xenlab.errors import ImageError, XenlabError

__all__ = ["file_kind", "read_image_file"]


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (from ``st_mode``)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n:,} bytes"


def read_image_file(path: str | os.PathLike[str], what: str, limit: int, *,
                    limit_text: str | None = None,
                    error: type[XenlabError] = ImageError) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``what`` names the file in messages ("kernel image", "ramdisk");
    ``limit_text`` says where the bound comes from ("the domain's memory
    (memory = 16 MiB)"). Anything else (missing, unreadable, a directory, a
    device, a FIFO, a socket, larger than ``limit``) raises ``error`` with one line.
    """
    p = os.fspath(path)
    bound = limit_text or _mib(limit)
    try:
        st = os.stat(p)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{p}: is a directory, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{p}: is {file_kind(st.st_mode)}; only a regular file can be "
                        f"loaded as a {what}")
        if st.st_size > limit:
            raise error(f"{p}: {what} of {st.st_size:,} bytes is larger than {bound}")
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fp:
            mode = os.fstat(fp.fileno()).st_mode  # what was opened, not what was stat'ed
            if not stat.S_ISREG(mode):
                raise error(f"{p}: is {file_kind(mode)}; only a regular file can be "
                            f"loaded as a {what}")
            data = fp.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{p}: no such file (the {what})") from None
    except PermissionError:
        raise error(f"{p}: permission denied (reading the {what})") from None
    except OSError as err:
        raise error(f"{p}: cannot read the {what}: {err.strerror or err}") from None
    if len(data) > limit:
        raise error(f"{p}: {what} grew past {bound} while being read")
    return data
