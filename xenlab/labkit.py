"""The notebooks' workbench: assemble a student's x86 code with GNU as and ld (binutils).

The hands-on exercises (``xenlab.handson``) turn a few lines of assembly typed in a
notebook into something the emulated host runs: a flat binary such as a boot sector
(``assemble``), or a PV kernel ELF built exactly as ``images/Makefile`` builds the
assembly guests (``build_pv_kernel``: ``as --64 -I images/include``, then ``ld -T
images/include/pv-kernel.lds``), so the student's lines can use ``HYPERCALL``,
``PRINTLN`` and every constant of ``xen-abi.inc``.

The student's text is assembled as a file of its own (``student.s``, pulled in by
``.include``), so an error names the student's own line: ``line 3: no such instruction:
`hltt'``. Any failure is an ``AssemblyError`` with one line, never a traceback.

Real Xen: (none: the build step of images/Makefile, run from a notebook)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from xenlab.errors import AssemblyError

__all__ = ["assemble", "boot_disk", "build_pv_kernel", "have_binutils"]

_INCLUDE = Path(__file__).resolve().parents[1] / "images" / "include"
_TIMEOUT_S = 30
_MAX_SOURCE = 64 * 1024
# as runs with --fatal-warnings: a warning (``0x1f7 shortened to 0xf7`` for an 8-bit port
# operand) would otherwise assemble silently into code that does something else
_ERROR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): (?:Error|Fatal error|Warning): "
                    r"(?P<msg>.*)$", re.MULTILINE)


def have_binutils() -> bool:
    """Whether ``as``, ``ld`` and ``objcopy`` (Debian: binutils) are installed."""
    return all(shutil.which(tool) for tool in ("as", "ld", "objcopy"))


def _check_source(source: object) -> str:
    if not isinstance(source, str):
        raise AssemblyError(f"the code must be a string of assembly lines, not "
                            f"{type(source).__name__}")
    if len(source) > _MAX_SOURCE:
        raise AssemblyError(f"the code is {len(source):,} characters long; "
                            f"at most {_MAX_SOURCE:,} are assembled")
    if "\0" in source:
        raise AssemblyError("the code contains a NUL character")
    return source


def _run(argv: list[str], cwd: Path, what: str) -> None:
    tool = argv[0]
    if shutil.which(tool) is None:
        raise AssemblyError(f"`{tool}` is not installed: the exercises assemble with GNU "
                            "binutils (Debian: apt-get install binutils)")
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                              timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AssemblyError(f"{what} took longer than {_TIMEOUT_S} s (a .rept too large?)"
                            ) from None
    if done.returncode == 0:
        return
    text = (done.stderr or done.stdout).strip()
    for m in _ERROR.finditer(text):
        if Path(m["file"]).name == "student.s":
            raise AssemblyError(f"line {m['line']}: {m['msg'].strip()}")
    for m in _ERROR.finditer(text):
        raise AssemblyError(f"{what}: {m['msg'].strip()}")
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.endswith("Assembler messages:")]
    last = lines[-1] if lines else f"exit status {done.returncode}"
    raise AssemblyError(f"{what} failed: {last.removeprefix(tool + ': ')}")


def boot_disk(sector: bytes, size: int = 1 << 20) -> bytes:
    """A raw disk of ``size`` bytes whose sector 0 is ``sector`` (at most 510 bytes,
    e.g. ``assemble``'s output) signed 55h AAh, what INT 19h checks before it jumps."""
    if len(sector) > 510:
        raise AssemblyError(f"a boot sector holds 510 bytes of code, not {len(sector)}")
    return (sector.ljust(510, b"\0") + b"\x55\xaa").ljust(size, b"\0")


def assemble(source: str, *, bits: int = 16, org: int = 0x7C00) -> bytes:
    """Assemble ``source`` (GNU as syntax, AT&T operands) into a flat binary loaded at
    ``org``. ``bits`` is 16 (real mode: a boot sector), 32 or 64."""
    source = _check_source(source)
    if bits not in (16, 32, 64):
        raise AssemblyError(f"bits must be 16, 32 or 64, not {bits!r}")
    top = 1 << (64 if bits == 64 else 32)
    if not isinstance(org, int) or isinstance(org, bool) or not 0 <= org < top:
        raise AssemblyError(f"org must be an address below {'2^64' if bits == 64 else '4 GiB'}"
                            f", not {org!r}")
    with tempfile.TemporaryDirectory(prefix="xenlab-asm-") as tmp:
        work = Path(tmp)
        (work / "student.s").write_text(source + "\n", encoding="utf-8")
        (work / "main.s").write_text(f"\t.code{bits}\n\t.text\n"
                                     "\t.globl _start\n_start:\n"
                                     '\t.include "student.s"\n', encoding="utf-8")
        _run(["as", "--fatal-warnings", "--64" if bits == 64 else "--32", "-o", "main.o",
              "main.s"], work,
             "the assembler")
        _run(["ld", "-m", "elf_x86_64" if bits == 64 else "elf_i386", "-Ttext", hex(org),
              "-e", "_start", "--build-id=none", "-nostdlib", "-static", "-o", "main.elf",
              "main.o"], work, "the linker")
        _run(["objcopy", "-O", "binary", "-j", ".text", "main.elf", "main.bin"], work,
             "objcopy")
        return (work / "main.bin").read_bytes()


def build_pv_kernel(source: str, student: str = "") -> bytes:
    """Link ``source`` into a 64-bit PV kernel ELF, like images/Makefile's assembly guests.

    ``source`` is a whole guest that starts with ``.include "xenlab-guest.inc"``; where it
    says ``.include "student.s"``, the lines of ``student`` go (an error there is reported
    by the student's own line number)."""
    source = _check_source(source)
    student = _check_source(student)
    with tempfile.TemporaryDirectory(prefix="xenlab-asm-") as tmp:
        work = Path(tmp)
        (work / "guest.s").write_text(source + "\n", encoding="utf-8")
        (work / "student.s").write_text(student + "\n", encoding="utf-8")
        _run(["as", "--fatal-warnings", "--64", "-I", str(_INCLUDE), "-o", "guest.o",
              "guest.s"], work,
             "the assembler")
        _run(["ld", "-T", str(_INCLUDE / "pv-kernel.lds"), "--build-id=none",
              "--discard-all", "-nostdlib", "-static", "-z", "noexecstack", "-o",
              "guest.elf", "guest.o"], work, "the linker")
        return (work / "guest.elf").read_bytes()
