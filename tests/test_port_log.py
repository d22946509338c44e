"""The debug port's characters kept natively (X86Vcpu.log_port_writes): the same exits, the
same order, the same virtual times as one trip to Python per character.

SeaBIOS writes its whole log to port 0xE9, about 4,000 ``out``s in a boot, each an exit
that Xen answers itself (hvm_print_line). The vCPU keeps them in a native log and hands
them to the hypervisor before its next exit reaches Python and when the run ends; these
tests hold the result to what one exit at a time gives, at the CPU layer (every kind of
exit between the characters, a full log, budgets that end mid-program) and for whole
firmware boots (trace and console log, record by record).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from firmware_boot import FIRMWARES, assert_same_boot, boot_bootdisk

from xenlab.cpu.x86 import PORT_LOG_ENTRIES, ExitReason, X86Vcpu
from xenlab.xen.hvm.hvm import HvmTraps
from xenlab.xen.trace import Kind

COST = 1_000
LOOP = PORT_LOG_ENTRIES + 88          # more characters than the log holds

# Real mode at 0000:1000; every kind of exit between debug-port characters.
PROGRAM = b"".join([
    bytes.fromhex("b061" "e6e9"),            # mov al, 'a' ; out 0xe9, al
    bytes.fromhex("b062" "e6e9"),            # mov al, 'b' ; out 0xe9, al
    bytes.fromhex("e680"),                   # out 0x80, al      (another port: Python)
    bytes.fromhex("e461"),                   # in al, 0x61
    bytes.fromhex("b063" "e6e9"),            # mov al, 'c' ; out 0xe9, al
    bytes.fromhex("b83412" "e7e9"),          # mov ax, 0x1234 ; out 0xe9, ax (a word: Python)
    bytes.fromhex("bae900" "b064" "ee"),     # mov dx, 0xe9 ; mov al, 'd' ; out dx, al
    bytes.fromhex("6631c0" "0fa2"),          # xor eax, eax ; cpuid
    bytes.fromhex("b065" "e6e9"),            # mov al, 'e' ; out 0xe9, al
    bytes.fromhex("cd82"),                   # int 0x82 (a vector Python delivers)
    bytes.fromhex("b9") + struct.pack("<H", LOOP),  # mov cx, LOOP
    bytes.fromhex("b078" "e6e9" "e2fa"),     # 1: mov al, 'x' ; out 0xe9, al ; loop 1b
    bytes.fromhex("b07a" "e6e9"),            # mov al, 'z' ; out 0xe9, al
    bytes.fromhex("f4"),                     # hlt
])
HANDLER = bytes.fromhex("b069" "e6e9" "cf")  # int 0x82: mov al, 'i' ; out 0xe9, al ; iret


class Exits:
    """A hypervisor that writes down every exit with the slice's virtual time at it, and
    charges each ``out`` what Xen's port handler does."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int, int]] = []
        self.sunk = 0          # port-log hand-overs

    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        self.events.append(("out", port, value, vcpu.elapsed()))
        vcpu.charge(COST)

    def io_in(self, vcpu: X86Vcpu, port: int, size: int) -> int:
        self.events.append(("in", port, 0, vcpu.elapsed()))
        return 0x20

    def cpuid(self, vcpu: X86Vcpu, leaf: int, subleaf: int) -> None:
        self.events.append(("cpuid", leaf, 0, vcpu.elapsed()))

    def interrupt(self, vcpu: X86Vcpu, vector: int) -> bool:
        self.events.append(("int", vector, 0, vcpu.elapsed()))
        return False            # the CPU layer vectors it through the IVT

    def log(self, writes: list[tuple[int, int]]) -> None:
        self.sunk += 1
        self.events.extend(("out", 0xE9, value, elapsed) for elapsed, value in writes)

    def hypercall(self, vcpu: X86Vcpu, via: str) -> None: ...
    def msr_write(self, vcpu: X86Vcpu, msr: int, value: int) -> bool: return True
    def msr_read(self, vcpu: X86Vcpu, msr: int) -> int | None: return None
    def io_rep(self, vcpu: X86Vcpu, port: int, size: int, count: int, addr: int,
               write: bool) -> int: return 0
    def tsc(self, vcpu: X86Vcpu) -> int: return 0


def _machine(*, logged: bool) -> tuple[X86Vcpu, Exits]:
    exits = Exits()
    cpu = X86Vcpu(exits, long_mode=False)  # type: ignore[arg-type]
    memory = bytearray(0x10000)
    memory[0x82 * 4:0x82 * 4 + 4] = struct.pack("<HH", 0x2000, 0)   # IVT[0x82]
    memory[0x1000:0x1000 + len(PROGRAM)] = PROGRAM
    memory[0x2000:0x2000 + len(HANDLER)] = HANDLER
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x1000)
    cpu.set_reg("esp", 0x7000)
    if logged and not cpu.log_port_writes(0xE9, COST, exits.log):
        pytest.skip("the native callbacks cannot run here")
    return cpu, exits


def _run(cpu: X86Vcpu, budget: int, clock: Any = None) -> list[tuple[ExitReason, int, int]]:
    """Slices of ``budget`` until the program halts: (reason, executed, charged) each.
    ``clock`` (with an ``origin``: the virtual time the slice starts at) is moved on by
    each slice and given to the vCPU's clock port before it (test_port_answers)."""
    slices = []
    for _ in range(10_000):
        if clock is not None:
            cpu.port_clock_origin = clock.origin
        result = cpu.run(budget)
        slices.append((result.reason, result.executed, result.charged))
        if clock is not None:
            clock.origin += result.executed
        cpu.end_slice()
        if result.reason is ExitReason.HLT:
            return slices
    raise AssertionError("the program did not halt")


@pytest.mark.parametrize("budget", [10_000_000, 2_500, 700])
def test_logged_characters_are_the_exits_one_at_a_time_would_be(budget: int) -> None:
    """Whole program in one slice, and slices that end every few characters (the
    characters' own cost uses the budget up): the same exits in the same order at the
    same virtual times, the same slices, the same machine at the end."""
    cpu, exits = _machine(logged=False)
    plain = _run(cpu, budget)
    logged_cpu, logged = _machine(logged=True)
    assert _run(logged_cpu, budget) == plain
    assert logged.events == exits.events
    assert logged_cpu.reg("eip") == cpu.reg("eip") and logged_cpu.reg("ecx") & 0xFFFF == 0
    chars = bytes(value for kind, port, value, _t in exits.events
                  if kind == "out" and port == 0xE9 and value < 0x100)
    assert chars == b"abcdei" + b"x" * LOOP + b"z"
    # every character but none of the other exits went through the log, in several
    # hand-overs (each other exit takes one, and the log is smaller than the loop)
    assert logged.sunk >= 5


def test_the_log_hands_over_before_every_other_exit() -> None:
    cpu, exits = _machine(logged=True)
    _run(cpu, 10_000_000)
    kinds = [(kind, port) for kind, port, _v, _t in exits.events]
    assert kinds[:12] == [("out", 0xE9), ("out", 0xE9), ("out", 0x80), ("in", 0x61),
                          ("out", 0xE9), ("out", 0xE9), ("out", 0xE9), ("cpuid", 0),
                          ("out", 0xE9), ("int", 0x82), ("out", 0xE9), ("out", 0xE9)]
    assert exits.events[5][2] == 0x1234      # the word write: an exit of its own
    times = [t for *_x, t in exits.events]
    assert times == sorted(times)


def test_nothing_is_logged_when_switched_off_or_single_stepped() -> None:
    """``log_ports`` false (someone wants the exits' records as they are made), or
    single steps: every character is an exit at once."""
    cpu, exits = _machine(logged=True)
    cpu.log_ports = False
    _run(cpu, 10_000_000)
    assert exits.sunk == 0 and len(exits.events) == 12 + LOOP
    cpu, exits = _machine(logged=True)
    for _ in range(4):
        cpu.step()
    assert exits.sunk == 0 and [e[:3] for e in exits.events] == [("out", 0xE9, 0x61),
                                                                 ("out", 0xE9, 0x62)]


class LineExits(Exits):
    """Keeps the debug port's line as Xen does: a newline ends it; ``room`` is what it
    takes before a character must be an exit of its own (here 3 characters a line)."""

    def __init__(self) -> None:
        super().__init__()
        self.line = b""
        self.paths: list[tuple[str, bytes]] = []

    def _char(self, value: int, path: str) -> None:
        self.paths.append((path, bytes([value])))
        self.line = b"" if value == 0x0A else self.line + bytes([value])

    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        super().io_out(vcpu, port, size, value)
        if port == 0xE9 and size == 1:
            self._char(value, "exit")

    def log(self, writes: list[tuple[int, int]]) -> None:
        super().log(writes)
        for _elapsed, value in writes:
            self._char(value, "log")

    def room(self) -> int:
        return 3 - len(self.line)


def _text_machine(text: bytes, *, logged: bool) -> tuple[X86Vcpu, LineExits]:
    code = b"".join(bytes([0xB0, ch, 0xE6, 0xE9]) for ch in text) + b"\xf4"
    exits = LineExits()
    cpu = X86Vcpu(exits, long_mode=False)  # type: ignore[arg-type]
    cpu.map_bytes(0, code.ljust(0x2000, b"\0"), writable=True)
    cpu.setup_real_mode(0, 0)
    if logged and not cpu.log_port_writes(0xE9, COST, exits.log, exit_on=0x0A,
                                          room=exits.room):
        pytest.skip("the native callbacks cannot run here")
    return cpu, exits


def test_the_exit_byte_and_a_full_line_are_exits_of_their_own() -> None:
    """A newline is always an exit (Xen prints the line and makes its records then), and
    so is a character the line has no room for: whoever waits for those records gets
    them at the instruction that made them."""
    cpu, exits = _text_machine(b"ab\ncdefg\nh", logged=True)
    _run(cpu, 10_000_000)
    assert [(path, ch.decode()) for path, ch in exits.paths] == [
        ("log", "a"), ("log", "b"), ("exit", "\n"), ("log", "c"), ("log", "d"),
        ("log", "e"), ("exit", "f"), ("exit", "g"), ("exit", "\n"), ("log", "h")]
    plain, plain_exits = _text_machine(b"ab\ncdefg\nh", logged=False)
    _run(plain, 10_000_000)
    assert exits.events == plain_exits.events


def test_the_stepper_counts_exactly_with_the_log_on() -> None:
    """A block counter attached (the stepper's first pass and its replays keep the log
    on unless they watch the exits): stopping before every instruction leaves the
    machine and the exits handed over so far as that many single steps do."""
    from xenlab.cpu.icount import counter_for

    text = b"ab\ncd\nefgh"
    total = 2 * len(text) + 1
    for n in range(total):
        cpu, exits = _text_machine(text, logged=True)
        counter = counter_for(cpu)
        counter.stop_before(n)
        cpu.run(10_000_000)
        assert counter.count == n
        stepped, stepped_exits = _text_machine(text, logged=False)
        for _ in range(n):
            stepped.step()
        assert cpu.registers() == stepped.registers(), n
        assert [e[:3] for e in exits.events] == [e[:3] for e in stepped_exits.events], n
        counter.stop_before(None)
        assert cpu.run(10_000_000).reason is ExitReason.HLT and counter.count == total
        assert exits.sunk > 0 or n > total - 3


# -- whole boots: the trace and Xen's console log, record by record ----------------------
@pytest.mark.parametrize("bios", FIRMWARES)
def test_a_firmware_boot_traces_the_same_with_and_without_the_log(
        tmp_path: Path, bios: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three boots: nobody watching; someone watching the phase and console records
    (the stepper's Run to phase: the log stays on, a newline exits and makes them at
    once); someone watching VM exits (the log is off, every character an exit)."""
    handed = [0]
    original = HvmTraps.debug_port_log

    def counted(self: HvmTraps, writes: list[tuple[int, int]]) -> None:
        handed[0] += len(writes)
        original(self, writes)

    monkeypatch.setattr(HvmTraps, "debug_port_log", counted)
    logged, log_lines, _lab = boot_bootdisk(tmp_path / "a", bios)
    through_log, handed[0] = handed[0], 0
    seen: list[tuple[int, int]] = []
    phased, phased_lines, _lab = boot_bootdisk(tmp_path / "b", bios,
                                               watch=(Kind.PHASE, Kind.CONSOLE), seen=seen)
    through_log_watched, handed[0] = handed[0], 0
    plain, plain_lines, _lab = boot_bootdisk(tmp_path / "c", bios, watch=(Kind.VMEXIT,))
    assert handed[0] == 0
    chars = [r for r in plain if r[3] is Kind.VMEXIT and r[5].get("port") == "0xe9"]
    lines = sum(1 for r in plain if r[3] is Kind.CONSOLE)
    # without a VMEXIT watcher, every character but the newlines through the log (and
    # one in each run of more than PORT_LOG_ENTRIES without another exit: the full log)
    assert len(chars) > 300 and lines > 10
    for through in (through_log, through_log_watched):
        assert len(chars) - lines - len(chars) // PORT_LOG_ENTRIES <= through
        assert through <= len(chars) - lines
    # the watcher saw each phase and console record at the instruction that made it
    assert len(seen) == sum(1 for r in plain if r[3] in (Kind.PHASE, Kind.CONSOLE))
    assert all(called == made for made, called in seen)
    assert_same_boot((logged, log_lines), (plain, plain_lines))
    assert_same_boot((phased, phased_lines), (plain, plain_lines))


# -- Xen's line rules, whichever path the characters take ---------------------------------
def _xen_hvm_print_line(data: bytes) -> list[str]:
    """xen/arch/x86/hvm/hvm.c hvm_print_line, transcribed: only is_console_printable
    bytes (isprint in Xen's Latin-1 ctype, newline, tab) are kept; a newline or the
    199th character of DOMAIN_PBUF_SIZE (200) prints the line."""
    lines, pbuf = [], bytearray()
    for c in data:
        if not (0x20 <= c <= 0x7E or c >= 0xA0 or c in (0x09, 0x0A)):
            continue
        if c != 0x0A:
            pbuf.append(c)
        if len(pbuf) == 199 or c == 0x0A:
            lines.append(pbuf.decode("latin-1"))
            pbuf.clear()
    return lines


def _paused_hvm(tmp: Path) -> tuple[object, object]:
    from xenlab.lab import Lab

    FW = Path(__file__).resolve().parents[1] / "images" / "firmware"
    tmp.mkdir(parents=True)
    cfg = tmp / "hvm.cfg"
    cfg.write_text(f'name = "boot"\ntype = "hvm"\nmemory = 32\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={FW / 'bootdisk.img'}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create -p {cfg}")
    return lab, lab.domain("boot")


def test_debug_port_lines_are_xens_whichever_path(tmp_path: Path) -> None:
    """Control bytes dropped, tabs and Latin-1 kept, a newline or the 199th character ends
    a line (Xen's DOMAIN_PBUF_SIZE): one character at a time through the port's
    handler, and in hand-overs of the native log of any size (``handle_pio_log``: all at
    once when no line ends among them, one by one otherwise), the same lines and records."""
    import random

    from xenlab.xen.hvm.io import handle_pio_log

    rng = random.Random(14)
    alphabet = b"ab \t\r\n\x00\x1b\x7f\x85\xa0\xe9" + bytes(range(0x41, 0x5B))
    data = (b"x" * 450 + b"\r\nshort\n" + b"tab\there \x1b[0m caf\xe9\n"
            + bytes(rng.choice(alphabet) for _ in range(3000)) + b"\n")
    expected = _xen_hvm_print_line(data)
    assert [len(line) for line in expected[:3]] == [199, 199, 52]
    assert expected[3:5] == ["short", "tab\there [0m caf\xe9"]

    outcomes = []
    for way in ("exits", "handed over"):
        lab, d = _paused_hvm(tmp_path / way.replace(" ", "-"))
        hvm, cpu = d.hvm, d.vcpus[0].cpu
        if way == "exits":
            for c in data:
                hvm.debug_port(0xE9, True, c)
        else:
            pos, sizes = 0, [199, 198, 53, 1, 250, 2]   # then at random
            while pos < len(data):
                n = sizes.pop(0) if sizes else rng.choice((1, 2, 7, 40, 198, 199, 250))
                handle_pio_log(lab.host, d, hvm, [(0, c) for c in data[pos:pos + n]], cpu)
                pos += n
        lines = [line[len("(d1) "):] for line in lab.host.log.lines if line.startswith("(d1) ")]
        records = [r.args["line"] for r in lab.trace.records
                   if r.kind is Kind.CONSOLE and r.name == "debug_port"]
        outcomes.append((lines, records))
    assert outcomes[0] == outcomes[1] == (expected, expected)


def test_the_line_takes_room_characters_before_one_prints_it(tmp_path: Path) -> None:
    """``debug_line_room`` (the native log's capacity): that many characters only join
    the line; the one after them prints it."""
    lab, d = _paused_hvm(tmp_path / "room")
    hvm = d.hvm
    for text in (b"", b"abc", b"y" * 150):
        for c in text:
            hvm.debug_port(0xE9, True, c)
        room = hvm.debug_line_room()
        assert room == 198 - len(text)
        before = len(lab.host.log.lines)
        for _ in range(room):
            hvm.debug_port(0xE9, True, ord("z"))
        assert len(lab.host.log.lines) == before
        hvm.debug_port(0xE9, True, ord("z"))
        assert lab.host.log.lines[before:] == ["(d1) " + (text + b"z" * (room + 1)).decode()]
