"""Hostile input from the host side (issue 12, items 4, 6 and 7): special files named as
guest images or configs, output files that cannot be written, and the notebook API
called with the wrong types. Each is one clear line (exit 2 for ``xenlab run``, a
typed ``XenlabError`` from the Python API), checked before any guest starts.

A file that is not a regular file used to be read whole: ``kernel = "/dev/zero"`` grew
to tens of GB and a FIFO blocked forever. The tests that name such files run
``xenlab run`` in a child process with its address space capped (and a generous
timeout that only guards against a hang), so a regression fails the test instead of
taking the machine's memory. Their configs are ``tests/configs/bad/special-files/``.
"""

from __future__ import annotations

import io
import math
import os
import resource
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xenlab import cli
from xenlab.cli import XlShell, main
from xenlab.errors import ConfigError, ImageError, UsageError
from xenlab.lab import Lab
from xenlab.tools.libs.guest.xg_dom_core import read_image_file
from xenlab.tools.libs.guest.xg_dom_hvm import load_hvmloader
from xenlab.tools.libs.light.libxl import Libxl
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.views import magics
from xenlab.xen.setup import XenHost

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMAGES = ROOT / "images"
HELLO = IMAGES / "pv-hello" / "pv-hello.elf"
SPECIAL = sorted((HERE / "configs" / "bad" / "special-files").glob("*.cfg"))
FIRMWARE = IMAGES / "firmware"
AS_LIMIT = 4 << 30   # the child's address space: far more than a refusal needs
HANG_GUARD = 600     # seconds; not a speed check, only so a regression cannot hang CI


def _guarded() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _run_child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xenlab.cli", "run", *args,
                           "--host-memory", "256"],
                          capture_output=True, text=True, cwd=ROOT, preexec_fn=_guarded,
                          timeout=HANG_GUARD)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("xenlab: error: ")
    return lines[0]


def _expect(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first[len("# expect: "):]


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> list[XenHost]:
    """Every host ``xenlab run`` boots in this process during the test."""
    created: list[XenHost] = []
    real = cli._make_host

    def spy(*a: Any, **k: Any) -> XenHost:
        h = real(*a, **k)
        created.append(h)
        return h

    monkeypatch.setattr(cli, "_make_host", spy)
    return created


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str],
             hosts: list[XenHost]) -> str:
    """Exit 2, one line, nothing on stdout, and no guest created or run."""
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xenlab: error: "), lines
    for h in hosts:
        assert list(h.domains) == [0]
        assert h.instructions == 0
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


# -- item 4: only regular files are read as images, and never more than memory ------------

def test_special_file_corpus_is_there() -> None:
    assert {p.name for p in SPECIAL} >= {"kernel-dev-zero.cfg", "kernel-dev-urandom.cfg",
                                         "ramdisk-dev-zero.cfg", "pvh-kernel-dev-urandom.cfg"}


@pytest.mark.parametrize("path", SPECIAL, ids=[p.name for p in SPECIAL])
def test_special_file_as_image_is_refused(path: Path) -> None:
    """kernel/ramdisk = /dev/zero, /dev/urandom, /dev/null: refused before any read."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    line = _one_error_line(_run_child(str(path)))
    assert _expect(path) in line


@pytest.mark.parametrize("key", ["kernel", "ramdisk"])
def test_fifo_as_image_is_refused(key: str, fifo: Path, tmp_path: Path) -> None:
    """A FIFO nobody writes to: the old open() blocked forever."""
    cfg = tmp_path / "fifo.cfg"
    kernel = fifo if key == "kernel" else HELLO
    extra = f'ramdisk = "{fifo}"\n' if key == "ramdisk" else ""
    cfg.write_text(f'name = "f"\nkernel = "{kernel}"\nmemory = 16\n{extra}')
    line = _one_error_line(_run_child(str(cfg)))
    what = "kernel image" if key == "kernel" else "ramdisk"
    assert line == (f"xenlab: error: {fifo}: is a FIFO (named pipe); only a regular file "
                    f"can be loaded as a {what}")


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_special_file_as_config_is_refused(special: str, fifo: Path) -> None:
    path = str(fifo) if special == "fifo" else special
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    line = _one_error_line(_run_child(path))
    assert line.startswith(f"xenlab: error: {path}: is a ")
    assert line.endswith(", not a regular file (an xl.cfg is a text file)")


def test_config_larger_than_a_mib_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "huge.cfg"
    with open(cfg, "wb") as fp:  # sparse: 2 MiB of NULs, refused on its size
        fp.truncate(2 << 20)
    with pytest.raises(ConfigError) as info:
        parse_config_file(cfg)
    assert str(info.value) == (f"{cfg}: 2,097,152 bytes is too large for an xl.cfg "
                               "(at most 1 MiB)")


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as fp:
        fp.write(head)
        fp.truncate(size)
    return path


def test_kernel_larger_than_memory_is_refused_before_it_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], hosts: list[XenHost]) -> None:
    """A regular file larger than the domain's memory is refused on its size (os.stat),
    not read whole first (the old code read it and said 'not an ELF file')."""
    big = _sparse(tmp_path / "big.elf", 20 << 20, HELLO.read_bytes())
    cfg = tmp_path / "big.cfg"
    cfg.write_text(f'name = "big"\nkernel = "{big}"\nmemory = 16\n')
    line = _refused(["run", str(cfg)], capsys, hosts)
    assert line == (f"xenlab: error: {big}: kernel image of 20,971,520 bytes is larger than "
                    "the domain's memory (memory = 16 MiB)")


def test_ramdisk_larger_than_memory_is_refused_before_it_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], hosts: list[XenHost]) -> None:
    """The old code read up to 1 GiB of ramdisk into memory before checking the layout."""
    big = _sparse(tmp_path / "initrd.img", 64 << 20)
    cfg = tmp_path / "rd.cfg"
    cfg.write_text(f'name = "rd"\nkernel = "{HELLO}"\nramdisk = "{big}"\nmemory = 16\n')
    line = _refused(["run", str(cfg)], capsys, hosts)
    assert line == (f"xenlab: error: {big}: ramdisk of 67,108,864 bytes is larger than the "
                    "domain's memory (memory = 16 MiB)")


def test_pvh_kernel_larger_than_memory_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], hosts: list[XenHost]) -> None:
    big = _sparse(tmp_path / "pvh.elf", 32 << 20, b"\x7fELF")
    cfg = tmp_path / "pvh.cfg"
    cfg.write_text(f'name = "pvh"\ntype = "pvh"\nkernel = "{big}"\nmemory = 16\n')
    line = _refused(["run", str(cfg)], capsys, hosts)
    assert "kernel image of 33,554,432 bytes is larger than the domain's memory" in line


def test_bios_image_that_is_a_device_is_refused() -> None:
    """load_hvmloader read 1 MiB of /dev/zero and took it for a BIOS (a multiple of 64 KiB)."""
    loader = FIRMWARE / "hvmloader.elf"
    if not loader.is_file() or not os.path.exists("/dev/zero"):
        pytest.skip("teaching firmware not built (make -C images) or no /dev/zero")
    with pytest.raises(ImageError) as info:
        load_hvmloader(str(loader), "/dev/zero")
    assert str(info.value) == ("/dev/zero: is a character device; only a regular file can "
                               "be loaded as a BIOS image")


def _hvmloader_blobs() -> list[Path]:
    found = [FIRMWARE / "hvmloader.elf", *sorted(Path("/usr/lib").glob("xen-*/boot/hvmloader"))]
    return [p for p in found if p.is_file()]


def test_hvmloader_program_headers_read_as_an_elf_library_reads_them() -> None:
    """load_hvmloader reads the ELF header and program headers with ``struct``: the same
    entry and loadable segments as pyelftools gives, for the teaching hvmloader and
    the distribution's (where installed)."""
    from elftools.elf.elffile import ELFFile

    loaders = _hvmloader_blobs()
    if not loaders:
        pytest.skip("no hvmloader (make -C images)")
    for loader in loaders:
        fw = load_hvmloader(str(loader), str(FIRMWARE / "xenlab-bios.bin"))
        with loader.open("rb") as f:
            elf = ELFFile(f)
            segs = [(s["p_paddr"], s.data(), s["p_memsz"]) for s in elf.iter_segments()
                    if s["p_type"] == "PT_LOAD" and s["p_memsz"]]
            assert (fw.entry, fw.segments) == (elf["e_entry"], segs), loader


def _patched(blob: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(blob)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_malformed_hvmloader_is_one_line(tmp_path: Path) -> None:
    """Each way the headers can be wrong is one ImageError line naming the file."""
    loaders = _hvmloader_blobs()
    if not loaders:
        pytest.skip("no hvmloader (make -C images)")
    good = loaders[0].read_bytes()
    phoff = struct.unpack_from("<I", good, 28)[0]
    cases = {
        "short": (good[:40], "not a 32-bit ELF file"),
        "elf64": (good[:4] + b"\x02" + good[5:], "not a 32-bit ELF file"),
        "big-endian": (good[:5] + b"\x02" + good[6:], "malformed ELF: not little-endian"),
        "machine": (_patched(good, 18, "<H", 62), "ELF for machine 62, not x86"),
        "phoff": (_patched(good, 28, "<I", len(good) - 8), "program headers past the end"),
        "phnum": (_patched(good, 44, "<H", 0xFFFF), "program headers past the end"),
        "phentsize": (_patched(good, 42, "<H", 8), "program headers past the end"),
        "segment": (_patched(good, phoff + 16, "<I", len(good) + 1), "truncated ELF segment"),
        "low": (_patched(good, phoff + 12, "<I", 0x1000), "must load between 1 MiB and 16 MiB"),
        "no-load": (_patched(good, 44, "<H", 0), "must load between 1 MiB and 16 MiB"),
    }
    for name, (blob, message) in cases.items():
        path = tmp_path / f"hvmloader-{name}"
        path.write_bytes(blob)
        with pytest.raises(ImageError) as info:
            load_hvmloader(str(path), str(FIRMWARE / "xenlab-bios.bin"))
        line = str(info.value)
        assert line.startswith(f"{path}: ") and message in line and "\n" not in line, name


def test_read_image_file_bounds_a_file_that_grows(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked by size first, then read with a bound: a file that grew after the check
    is refused, not read to its new end."""
    path = tmp_path / "growing.img"
    path.write_bytes(b"x" * 100)
    real_open = os.open

    def grow_then_open(p: Any, flags: int, *a: Any) -> int:
        with open(path, "ab") as fp:
            fp.write(b"y" * 1000)
        return real_open(p, flags, *a)

    monkeypatch.setattr(os, "open", grow_then_open)
    with pytest.raises(ImageError, match=r"growing\.img: ramdisk grew past 512 bytes"):
        read_image_file(path, "ramdisk", 512)


def test_directory_and_missing_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r": is a directory, not a ramdisk$"):
        read_image_file(tmp_path, "ramdisk", 1 << 20)
    with pytest.raises(ImageError, match=r"nope: no such file \(the ramdisk\)$"):
        read_image_file(tmp_path / "nope", "ramdisk", 1 << 20)


def test_regular_images_still_boot(tmp_path: Path) -> None:
    """The guard refuses only what it should: pv-hello with a ramdisk boots."""
    rd = tmp_path / "rd.img"
    rd.write_bytes(b"ramdisk!" * 512)
    cfg = tmp_path / "ok.cfg"
    cfg.write_text(f'name = "ok"\nkernel = "{HELLO}"\nramdisk = "{rd}"\nmemory = 16\n')
    host = XenHost(memory_mib=256, dom0_mem_mib=64)
    xl = Libxl(host)
    prep = xl.prepare(parse_config_file(cfg))
    assert prep.ramdisk == rd.read_bytes()
    assert prep.image is not None


# -- item 6: --pcap and --trace that cannot be written: one line, before any guest --------

UNWRITABLE = {
    "/dev/full": "it is a character device, not a regular file",
    "/dev/null": "it is a character device, not a regular file",
    "directory": "it is a directory, not a regular file",
    "fifo": "it is a FIFO (named pipe), not a regular file",
    "/proc/xenlab-out": "No such file or directory",
}


def _output_path(name: str, tmp_path: Path, fifo: Path) -> str:
    if name == "directory":
        return str(tmp_path)
    if name == "fifo":
        return str(fifo)
    return name


@pytest.mark.parametrize("option", ["--pcap", "--trace"])
@pytest.mark.parametrize("name", sorted(UNWRITABLE))
def test_output_that_cannot_be_written(option: str, name: str, tmp_path: Path, fifo: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       hosts: list[XenHost]) -> None:
    """The old code: a traceback for --pcap /dev/full, and a --trace file opened (or
    written) only after the guests were created and had run. A FIFO is tried in a child
    process: opening one for writing with no reader blocked the old code forever."""
    path = _output_path(name, tmp_path, fifo)
    if name.startswith("/") and not os.path.isdir(os.path.dirname(path)):
        pytest.skip(f"no {os.path.dirname(path)}")
    if name.startswith("/dev/") and not os.path.exists(path):
        pytest.skip(f"no {path}")
    argv = [str(IMAGES / "pv-hello.cfg"), option, path]
    line = (_one_error_line(_run_child(*argv)) if name == "fifo" else
            _refused(["run", *argv], capsys, hosts))
    what = option[2:]
    assert line == f"xenlab: error: {path}: cannot write {what}: {UNWRITABLE[name]}"


@pytest.mark.parametrize("option", ["--pcap", "--trace"])
def test_output_in_a_missing_directory(option: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       hosts: list[XenHost]) -> None:
    path = tmp_path / "no" / "such" / "out"
    line = _refused(["run", str(IMAGES / "pv-hello.cfg"), option, str(path)], capsys, hosts)
    assert line == f"xenlab: error: {path}: directory {path.parent} does not exist"
    assert hosts == []   # refused before the host booted


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any directory")
@pytest.mark.parametrize("option", ["--pcap", "--trace"])
def test_output_in_an_unwritable_directory(option: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           hosts: list[XenHost]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = _refused(["run", str(IMAGES / "pv-hello.cfg"), option, str(locked / "o")],
                        capsys, hosts)
        assert line.endswith(f"cannot write {option[2:]}: permission denied "
                             f"(directory {locked})")
    finally:
        locked.chmod(0o700)


def test_trace_and_pcap_to_the_same_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         hosts: list[XenHost]) -> None:
    out = str(tmp_path / "out")
    line = _refused(["run", str(IMAGES / "pv-hello.cfg"), "--trace", out, "--pcap", out],
                    capsys, hosts)
    assert line == f"xenlab: error: {out}: --trace and --pcap name the same file"


@pytest.fixture
def small_files() -> Iterator[Callable[[int], None]]:
    """Cap the size of files this process writes (RLIMIT_FSIZE, SIGXFSZ ignored so a
    write past it fails with EFBIG): a disk that fills up mid-run, on a regular file."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def cap(size: int) -> None:
        """Cap at ``size`` bytes; 0 lifts the cap again (back to the old limit)."""
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, old_limit[1]) if size else old_limit)

    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


@pytest.mark.skipif(not (IMAGES / "pv-net" / "pv-net.elf").exists(),
                    reason="pv-net.elf not built")
def test_pcap_that_fills_up_mid_run_is_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        small_files: Callable[[int], None]) -> None:
    """Frames cross the bridge, the pcap file hits its limit: the guests carry on, and
    the command exits 2 with one line (the old code raised OSError out of netback)."""
    pcap = tmp_path / "net.pcap"
    small_files(300)  # the header and a few frames
    try:
        rc = main(["run", str(IMAGES / "pv-net-a.cfg"), str(IMAGES / "pv-net-b.cfg"),
                   "--pcap", str(pcap)])
    finally:
        small_files(0)  # lifted at once: pytest itself writes files (its report, captures)
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err == f"xenlab: error: {pcap}: cannot write pcap: File too large\n"
    assert "--- console of pv-net-b ---" in captured.out   # the run itself completed


# -- item 7: the notebook API refuses wrong types with the project's errors ------------------

@pytest.fixture(scope="module")
def lab() -> Lab:
    return Lab(memory_mib=256, dom0_mem_mib=64)


LAB_MISUSE: dict[str, tuple[Callable[[Lab], object], str]] = {
    "xl(None)": (lambda lab: lab.xl(None),  # type: ignore[arg-type]
                 "lab.xl(): the command must be a string such as 'list', not None"),
    "xl(123)": (lambda lab: lab.xl(123),  # type: ignore[arg-type]
                "lab.xl(): the command must be a string such as 'list', not 123 (int)"),
    "xl_output(b'list')": (lambda lab: lab.xl_output(b"list"),  # type: ignore[arg-type]
                           "lab.xl_output(): the command must be a string such as 'list', "
                           "not b'list' (bytes)"),
    "xenstore(None)": (lambda lab: lab.xenstore(None),  # type: ignore[arg-type]
                       "lab.xenstore(): the command must be a string such as "
                       "'xenstore-ls /local/domain', not None"),
    "run('x')": (lambda lab: lab.run("x"),  # type: ignore[arg-type]
                 "lab.run(): max_instructions must be a whole number, not 'x' (str)"),
    "run(-1)": (lambda lab: lab.run(-1),
                "lab.run(): max_instructions must be positive, not -1"),
    "run(0)": (lambda lab: lab.run(0),
               "lab.run(): max_instructions must be positive, not 0"),
    "run(1e9)": (lambda lab: lab.run(1e9),  # type: ignore[arg-type]
                 "lab.run(): max_instructions must be a whole number, not 1000000000.0 "
                 "(float)"),
    "run(True)": (lambda lab: lab.run(True),
                  "lab.run(): max_instructions must be a whole number, not True (bool)"),
    "run(seconds=nan)": (lambda lab: lab.run(10, math.nan),
                         "lab.run(): max_seconds must be positive and finite, not nan"),
    "run(seconds=0)": (lambda lab: lab.run(10, 0),
                       "lab.run(): max_seconds must be positive and finite, not 0"),
    "run(seconds='1')": (lambda lab: lab.run(10, "1"),  # type: ignore[arg-type]
                         "lab.run(): max_seconds must be a number, not '1' (str)"),
    "domain(3.5)": (lambda lab: lab.domain(3.5),  # type: ignore[arg-type]
                    "lab.domain(): a domain is given by its name (a string such as "
                    "'pv-hello') or its domain id (a whole number >= 0), not 3.5 (float)"),
    "domain(None)": (lambda lab: lab.domain(None),  # type: ignore[arg-type]
                     "lab.domain(): a domain is given by its name (a string such as "
                     "'pv-hello') or its domain id (a whole number >= 0), not None"),
    "console(-1)": (lambda lab: lab.console(-1),
                    "lab.console(): a domain is given by its name (a string such as "
                    "'pv-hello') or its domain id (a whole number >= 0), not -1 (int)"),
    "console_input(0, None)": (lambda lab: lab.console_input(0, None),  # type: ignore
                               "lab.console_input(): the text to type must be a string "
                               "such as 'ls\\n', not None"),
    "console_input(0, b'ls')": (lambda lab: lab.console_input(0, b"ls"),  # type: ignore
                                "lab.console_input(): the text to type must be a string "
                                "such as 'ls\\n', not b'ls' (bytes)"),
    "console_input([0], 'x')": (lambda lab: lab.console_input([0], "x"),  # type: ignore
                                "lab.console_input(): a domain is given by its name (a "
                                "string such as 'pv-hello') or its domain id (a whole "
                                "number >= 0), not [0] (list)"),
    "console_input(0, euro)": (lambda lab: lab.console_input(0, "\u20ac"),
                               "lab.console_input(): '\u20ac' cannot be typed on the console "
                               "(it takes Latin-1 characters, one byte each)"),
    "image(None)": (lambda lab: Lab.image(None),  # type: ignore[arg-type]
                    "Lab.image(): the name must be a string such as 'pv-hello.cfg', "
                    "not None"),
}


@pytest.mark.parametrize("case", sorted(LAB_MISUSE))
def test_lab_method_with_wrong_arguments(case: str, lab: Lab) -> None:
    call, message = LAB_MISUSE[case]
    with pytest.raises(UsageError) as info:
        call(lab)
    assert str(info.value) == message
    assert list(lab.host.domains) == [0]
    lab.host.check_invariants()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"memory_mib": -5}, "Lab(): memory_mib (the host's memory in MiB) must be between 64 "
                         "and 65,536, not -5"),
    ({"memory_mib": "1G"}, "Lab(): memory_mib (the host's memory in MiB) must be a whole "
                           "number, not '1G' (str)"),
    ({"memory_mib": None}, "Lab(): memory_mib (the host's memory in MiB) must be a whole "
                           "number, not None"),
    ({"nr_cpus": 0}, "Lab(): nr_cpus (the host's physical CPUs) must be between 1 and 64, "
                     "not 0"),
    ({"nr_cpus": 2.0}, "Lab(): nr_cpus (the host's physical CPUs) must be a whole number, "
                       "not 2.0 (float)"),
    ({"dom0_mem_mib": 8}, "Lab(): dom0_mem_mib (Dom0's memory in MiB) must be at least 16, "
                          "not 8"),
    ({"memory_mib": 128, "dom0_mem_mib": 128},
     "Lab(): dom0_mem_mib = 128 does not fit in memory_mib = 128 (Xen keeps 8 MiB for "
     "itself)"),
])
def test_lab_with_wrong_sizes(kwargs: dict[str, Any], message: str) -> None:
    """The old code: bare ValueError / TypeError from XenHost (or a host with -5 MiB)."""
    with pytest.raises(UsageError) as info:
        Lab(**kwargs)
    assert str(info.value) == message


def test_unclosed_quote_is_an_xl_error(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """shlex's ValueError used to escape lab.xl(), lab.xenstore() and xenlab shell."""
    lab.xl('create "images/pv-hello.cfg')
    lab.xenstore('xenstore-read "/local')
    out = capsys.readouterr().out
    assert out == ("xl: error: cannot split the command line: No closing quotation\n"
                   "xenstore-read: cannot split the command line: No closing quotation\n")
    lab.xenstore("")
    assert capsys.readouterr().out == "xenstore: unknown command ''\n"


def test_unclosed_quote_in_xenlab_shell() -> None:
    shell_out = io.StringIO()
    shell = XlShell(XenHost(memory_mib=256, dom0_mem_mib=64),
                    stdin=io.StringIO('xl create "x\nxenstore-ls "/\nquit\n'), stdout=shell_out)
    shell.cmdloop()
    assert ("xl: error: cannot split the command line: No closing quotation\n"
            in shell_out.getvalue())
    assert ("xenstore-ls: cannot split the command line: No closing quotation\n"
            in shell_out.getvalue())


@pytest.mark.parametrize(("call", "message"), [
    (lambda: magics.xl_command(None), "xl_command() takes the magic's line as a string, "
                                      "not None"),
    (lambda: magics.xenstore_command(["ls"]), "xenstore_command() takes the magic's line "
                                              "as a string, not list"),
    (lambda: magics.xlcfg_command("d", None), "xlcfg_command() takes the magic's line as a "
                                              "string, not None"),
    (lambda: magics.set_lab("lab"), "set_lab() takes a Lab (or None), not str"),
])
def test_magics_entry_points_with_wrong_types(call: Callable[[], object],
                                              message: str) -> None:
    with pytest.raises(UsageError) as info:
        call()
    assert str(info.value) == message
