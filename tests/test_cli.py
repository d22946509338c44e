"""The ``xenlab`` command end to end: what the issue's "done when" list promises."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from xenlab import cli
from xenlab.cli import XlShell, main, run_configs
from xenlab.xen.setup import XenHost

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"


def _run(*cfgs: str, trace: Path | None = None, **kw: int) -> tuple[str, XenHost]:
    out = io.StringIO()
    host = run_configs([str(IMAGES / c) for c in cfgs], out,
                       trace_path=str(trace) if trace else None, **kw)
    return out.getvalue(), host


def test_pv_hello_prints_start_info_version_and_list(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    text, _ = _run("pv-hello.cfg", trace=trace)
    console = text.split("--- console of pv-hello ---\n")[1].split("---")[0]
    assert "magic: xen-3.0-x86_64" in console
    assert "nr_pages: 8192" in console  # memory = 32 MiB = 8192 pages of 4 KiB
    assert "Xen version: 4.17.0-xenlab" in console
    assert "cmd_line: console=hvc0 hello=world" in console
    listing = text.split("--- xl list ---\n")[1].splitlines()
    assert listing[0] == ("Name                                        ID   Mem VCPUs      State"
                          "   Time(s)")
    assert listing[1].startswith("Domain-0                                     0   512     2"
                                 "     r-----")
    assert listing[2].split()[:5] == ["pv-hello", "1", "32", "1", "---s--"]
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    calls = [r for r in records if r["kind"] == "hypercall"]
    assert {18, 17, 29} <= {r["args"]["nr"] for r in calls}
    console_io = next(r for r in calls if r["args"]["nr"] == 18)
    assert console_io["name"] == "console_io"
    assert console_io["args"]["cmd"] == "CONSOLEIO_write"
    assert console_io["args"]["text"].startswith("Hello from pv-hello")
    version = [r for r in calls if r["name"] == "xen_version"]
    assert version[0]["args"]["cmd"] == "XENVER_version" and version[0]["ret"] == 0x40011
    shutdown = calls[-1]
    assert shutdown["args"] == {"nr": 29, "cmd": "SCHEDOP_shutdown",
                                "reason": "SHUTDOWN_poweroff"}
    for r in records:
        assert {"seq", "time", "dom", "vcpu", "kind", "name"} <= r.keys()
    assert [r["seq"] for r in records] == list(range(len(records)))


def test_crash_is_contained(tmp_path: Path) -> None:
    text, host = _run("pv-crash.cfg", "pv-hello.cfg")
    assert "d1v0 Unhandled #GP general protection [#13]" in text
    assert "(hlt: a privileged instruction in a PV guest)" in text
    assert "Domain 1 (vcpu#0) crashed on cpu#" in text
    listing = text.split("--- xl list ---\n")[1]
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[1:]}
    assert rows["pv-crash"][4] == "----c-"
    assert rows["pv-hello"][4] == "---s--"
    assert "Shutting down (SHUTDOWN_poweroff)." in text.split("--- console of pv-hello ---")[1]
    assert "still alive" not in text
    host.check_invariants()


def test_public_headers_kernel_gets_enosys() -> None:
    text, _ = _run("pv-pubhdr.cfg")
    assert "pv-pubhdr: tmem_op returned -38 (ENOSYS)" in text
    assert "pv-pubhdr: start_info magic: xen-3.0-x86_64" in text


def test_pv_spin_blocks_on_timer_and_yields() -> None:
    text, host = _run("pv-spin.cfg")
    assert text.split("--- console of pv-spin ---")[1].count("pv-spin: woke at") == 5
    kinds = [(r.kind.value, r.name) for r in host.trace]
    assert ("event", "timer") in kinds and ("sched", "wake") in kinds
    assert ("sched", "yield") in kinds and ("sched", "block") in kinds


def test_traces_are_byte_identical_across_runs_and_processes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    out1, _ = _run("pv-spin.cfg", "pv-hello.cfg", "pv-crash.cfg", trace=a)
    out2, _ = _run("pv-spin.cfg", "pv-hello.cfg", "pv-crash.cfg", trace=b)
    assert a.read_bytes() == b.read_bytes()
    assert out1 == out2
    proc = subprocess.run(
        [sys.executable, "-m", "xenlab.cli", "run", str(IMAGES / "pv-spin.cfg"),
         str(IMAGES / "pv-hello.cfg"), str(IMAGES / "pv-crash.cfg"), "--trace", str(c)],
        capture_output=True, text=True, check=True)
    assert c.read_bytes() == a.read_bytes()
    assert proc.stdout == out1


def test_budget_is_reported(tmp_path: Path) -> None:
    text, _ = _run("pv-spin.cfg", max_instructions=1_000_000)
    assert "xenlab: instruction budget of 1,000,000 ended; still running: pv-spin" in text


# -- bad input: exit 2, one line, nothing created ------------------------------------
def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _bad_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    hello = IMAGES / "pv-hello" / "pv-hello.elf"
    text_file = _write(tmp / "notes.txt", "hello, I am not a kernel\n")
    no_notes = tmp / "plain.elf"
    no_notes.write_bytes(
        (ROOT / "tests" / "data" / "no-xen-notes.elf").read_bytes()
        if (ROOT / "tests" / "data" / "no-xen-notes.elf").exists() else _strip_notes(hello))

    def cfg(name: str, body: str) -> str:
        return _write(tmp / f"{name}.cfg", body)

    return {
        "missing file": ([str(tmp / "nope.cfg")], "nope.cfg: no such file"),
        "syntax error": ([cfg("syntax", 'name = "x\nkernel = "k"\n')], "syntax.cfg:1:"),
        "unknown key": ([cfg("unknown", f'name = "u"\nkernel = "{hello}"\nmemroy = 32\n')],
                        "unknown.cfg:3: unknown key 'memroy'"),
        "not an ELF": ([cfg("notelf", f'name = "n"\nkernel = "{text_file}"\n')],
                       "not an ELF file"),
        "no Xen notes": ([cfg("nonotes", f'name = "n"\nkernel = "{no_notes}"\n')],
                         "no Xen ELF notes"),
        "kernel larger than memory": (
            [cfg("small", f'name = "s"\nkernel = "{hello}"\nmemory = 2\n')],
            "but memory = 2 MiB"),
        "more memory than the host": (
            [cfg("huge", f'name = "h"\nkernel = "{hello}"\nmemory = 100000\n')],
            "not enough free memory"),
        "duplicate names": ([str(IMAGES / "pv-hello.cfg"), str(IMAGES / "pv-hello.cfg")],
                            "two configs define the domain name 'pv-hello'"),
        "bad budget": (["--max-instructions", "0", str(IMAGES / "pv-hello.cfg")],
                       "--max-instructions must be positive"),
    }


def _strip_notes(elf: Path) -> bytes:
    """The pv-hello kernel with its PT_NOTE header turned into PT_NULL and notes zeroed."""
    import struct

    data = bytearray(elf.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    for i in range(phnum):
        off = phoff + i * phentsize
        if struct.unpack_from("<I", data, off)[0] == 4:
            struct.pack_into("<I", data, off, 0)
    for i in range(shnum):
        off = shoff + i * shentsize
        if struct.unpack_from("<I", data, off + 4)[0] == 7:  # SHT_NOTE -> SHT_PROGBITS
            struct.pack_into("<I", data, off + 4, 1)
    return bytes(data)


@pytest.mark.parametrize("case", ["missing file", "syntax error", "unknown key", "not an ELF",
                                  "no Xen notes", "kernel larger than memory",
                                  "more memory than the host", "duplicate names",
                                  "bad budget"])
def test_bad_input_exits_2_with_one_line(case: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    argv, expected = _bad_cases(tmp_path)[case]
    created: list[XenHost] = []
    real = cli._make_host

    def spy(*a: object, **k: object) -> XenHost:
        h = real(*a, **k)  # type: ignore[arg-type]
        created.append(h)
        return h

    monkeypatch.setattr(cli, "_make_host", spy)
    rc = main(["run", *argv])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xenlab: error: ")
    assert expected in lines[0]
    for h in created:  # a host may have booted, but no guest domain is left behind
        assert list(h.domains) == [0]


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    cfgfile = _write(tmp_path / "bad.cfg", 'name = "x"\nkernel = "/etc/hostname"\n')
    proc = subprocess.run([sys.executable, "-m", "xenlab.cli", "run", cfgfile],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert main(["run"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("xenlab: error: ") for line in err)


# -- the shell ----------------------------------------------------------------------
def test_shell_session() -> None:
    cmds = "\n".join([
        f"xl create {IMAGES / 'pv-hello.cfg'}",
        "xl list",
        "xl console pv-hello",
        "xenstore-read /local/domain/1/name",
        "xenstore-write /local/domain/1/data/greeting hello",
        "xenstore-ls /local/domain/1/data",
        "xenstore-read /local/domain/1/nosuch",
        "type pv-hello hello",
        "xl destroy pv-hello",
        "list",
        "xl console nosuch",
        "frobnicate",
        "quit",
    ]) + "\n"
    out = io.StringIO()
    shell = XlShell(XenHost(memory_mib=256, dom0_mem_mib=64), stdin=io.StringIO(cmds),
                    stdout=out)
    shell.cmdloop(intro="")
    text = out.getvalue()
    assert "Created domain 1 (pv-hello)" in text
    assert "---s--" in text
    assert "magic: xen-3.0-x86_64" in text
    assert "xl: error: 'nosuch' is an invalid domain identifier" in text
    assert "unknown command 'frobnicate'" in text
    assert "]# pv-hello\n" in text                       # xenstore-read of name
    assert 'greeting = "hello"' in text                  # xenstore-ls
    assert "xenstore-read: xenstore: ENOENT" in text
    assert "(6 bytes into the console ring of pv-hello)" in text
    assert text.count("Domain-0") >= 2
