"""The port exits an HVM vCPU answers natively (X86Vcpu.answer_ports): the same exits, the
same values, the same order and virtual times as one trip to Python each.

Xen answers many port exits from what it decided earlier, not from state Python must
see at once: Xen's null handler for a port no ioreq server claimed (port 0x92, a PCI
scan of empty slots), the PCI address latch 0xCF8, the ACPI PM timer read whole
(SeaBIOS's delays) and the RTC's index register (reads 0xff). Some 2,700 of a SeaBIOS
boot's exits are such; the vCPU answers them from a table the hypervisor gives it
(``hvm_native_ports``, made again at every claim) and hands them over, as it hands over
the debug port's characters, before its next exit reaches Python and when its run ends.
The CPUID leaves Xen leaves to the CPU model (all but its own and leaf 1: GRUB asks
leaf 0 at every poll of its prompt) are kept the same way (X86Vcpu.answer_cpuid).
These tests hold that to a hypervisor that answers every exit in Python, at the CPU
layer (every kind, a full log, slices that end mid-program), for the table's contents
as the device model claims and gives back, and for whole firmware boots.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from firmware_boot import FIRMWARES, assert_same_boot, boot_bootdisk
from test_port_log import _run as _run_slices

from xenlab.cpu.x86 import (
    PORT_CLOCK,
    PORT_LATCH,
    PORT_LOG_ENTRIES,
    PORT_NULL,
    PORT_ONES,
    PORT_PYTHON,
    PORT_WINDOW,
    ExitReason,
    X86Vcpu,
)
from xenlab.labkit import assemble, have_binutils
from xenlab.public.domctl import IoRangeType
from xenlab.xen.hvm.hvm import HvmTraps
from xenlab.xen.hvm.io import (
    hvm_native_ports,
    ioreq_server_map_io_range,
    ioreq_server_set_state,
    ioreq_server_unmap_io_range,
)
from xenlab.xen.trace import Kind

pytestmark = pytest.mark.skipif(not have_binutils(), reason="needs binutils (as, ld)")

COST = 1_000
MUL, DIV, MASK = 3_579_545, 1_000_000_000, 0xFFFFFF      # the PM timer's
CLAIMED = 0x0008                   # 00:01.0 is someone's; 00:00.0 and the rest nobody's
LOOP = PORT_LOG_ENTRIES + 40       # more kept exits than the log holds

# Real mode at 0000:1000: every kind of port, each way and size, between the debug
# port's characters and exits Python answers; each value read stored at 0x500 on.
PROGRAM = rf"""
    .code16
    mov $0x500, %di
    mov $0x5a, %al
    out %al, $0x92              # nobody's: dropped
    in $0x92, %al               # nobody's: all ones
    stosb
    in $0x92, %ax
    stosw
    mov $0x80000800, %eax       # the latch: 00:01.0 register 0 (someone's: Python's)
    mov $0xcf8, %dx
    out %eax, %dx
    xor %eax, %eax
    in %dx, %eax                # read back natively
    stosl
    mov $0xcfc, %dx
    in %dx, %eax                # a claimed function: Python's
    stosl
    mov $0x80001000, %eax       # 00:02.0: nobody's
    mov $0xcf8, %dx
    out %eax, %dx
    mov $0xcfe, %dx
    in %dx, %ax                 # the null handler, natively
    stosw
    mov $0x61, %al
    out %al, $0xe9              # a debug character
    mov $0, %eax                # the latch disabled: the window is Python's
    mov $0xcf8, %dx
    out %eax, %dx
    mov $0xcfc, %dx
    in %dx, %al
    stosb
    mov $0xcf8, %dx
    in %dx, %al                 # a byte of the latch: Python's
    stosb
    in $0x70, %al               # all ones, natively
    stosb
    out %al, $0x70              # a write: Python's
    in $0x70, %ax               # a word: Python's
    stosw
    mov $0xb008, %dx
    in %dx, %eax                # the clock
    stosl
    in %dx, %al                 # a byte of it: Python's
    stosb
    out %al, $0x80              # Python's
    xor %eax, %eax
    cpuid                       # leaf 0: the CPU model's, kept natively
    mov $0x40000000, %eax
    cpuid                       # Xen's leaf: Python's
    mov $0x80000001, %eax
    cpuid                       # the CPU model's
    mov $0x62, %al
    out %al, $0xe9
    mov ${LOOP}, %cx
1:  in $0x92, %al
    mov $0xb008, %dx
    in %dx, %eax
    mov $0x78, %al
    out %al, $0xe9
    loop 1b
    mov $0xb008, %dx
    in %dx, %eax
    stosl
    hlt
"""


class Xen:
    """A hypervisor that answers every port in Python as ``handle_pio`` does for the
    kinds above, and writes down each exit with the slice's virtual time at it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int, int, int]] = []
        self.latch = 0
        self.origin = 0         # the virtual time at the slice's start
        self.answered = 0       # exits handed over by the vCPU
        self.python = 0         # exits answered here

    def _clock(self, vcpu: X86Vcpu) -> int:
        return (self.origin + vcpu.elapsed()) * MUL // DIV & MASK

    def io_in(self, vcpu: X86Vcpu, port: int, size: int) -> int:
        self.python += 1
        ones = (1 << (8 * size)) - 1
        if port == 0xB008 and size == 4:
            value = self._clock(vcpu)
        elif port == 0xCF8 and size == 4:
            value = self.latch
        elif 0xCFC <= port <= 0xCFF and self.latch >> 31:
            value = 0x12345678 & ones if (self.latch >> 8) & 0xFFFF == CLAIMED else ones
        elif port in (0xCF8, 0xCFC, 0xCFD, 0xCFE, 0xCFF):
            value = 0x42 & ones           # the device model's, while the latch is off
        elif port == 0x70 and size == 1:
            value = 0xFF
        elif port in (0x70, 0x61, 0xB008):
            value = 0x20 & ones
        else:
            value = ones
        self.events.append(("in", port, size, value, vcpu.elapsed()))
        vcpu.charge(COST)
        return value

    def io_out(self, vcpu: X86Vcpu, port: int, size: int, value: int) -> None:
        self.python += 1
        self.events.append(("out", port, size, value, vcpu.elapsed()))
        if port == 0xCF8 and size == 4:
            self.latch = value
            vcpu.port_latch = value       # as HvmTraps.io_out does
        vcpu.charge(COST)

    def log(self, writes: list[tuple[int, int]]) -> None:
        self.events.extend(("out", 0xE9, 1, value, elapsed) for elapsed, value in writes)

    def answers(self, exits: list[tuple[int, int, int, bool, int]]) -> None:
        self.answered += len(exits)
        for elapsed, port, size, out, value in exits:
            if out and port == 0xCF8:
                self.latch = value
            self.events.append(("out" if out else "in", port, size, value, elapsed))

    def cpuid(self, vcpu: X86Vcpu, leaf: int, subleaf: int) -> None:
        self.python += 1
        self.events.append(("cpuid", leaf, 0, 0, vcpu.elapsed()))
        vcpu.charge(COST)           # the CPU model's answer: unicorn's own CPUID

    def cpuids(self, exits: list[tuple[int, int]]) -> None:
        self.answered += len(exits)
        self.events.extend(("cpuid", leaf, 0, 0, elapsed) for elapsed, leaf in exits)

    def interrupt(self, vcpu: X86Vcpu, vector: int) -> bool: return False
    def hypercall(self, vcpu: X86Vcpu, via: str) -> None: ...
    def msr_write(self, vcpu: X86Vcpu, msr: int, value: int) -> bool: return True
    def msr_read(self, vcpu: X86Vcpu, msr: int) -> int | None: return None
    def io_rep(self, vcpu: X86Vcpu, port: int, size: int, count: int, addr: int,
               write: bool) -> int: return 0
    def tsc(self, vcpu: X86Vcpu) -> int: return 0


def _kinds() -> bytes:
    kinds = bytearray([PORT_NULL]) * 0x10000
    for port in (0x61, 0x71, 0x80):
        kinds[port] = PORT_PYTHON
    kinds[0xCF8] = PORT_LATCH
    kinds[0xCFC:0xD00] = bytes([PORT_WINDOW]) * 4
    kinds[0xB008] = PORT_CLOCK
    kinds[0x70] = PORT_ONES
    return bytes(kinds)


def _functions() -> bytes:
    bits = bytearray(0x2000)
    bits[CLAIMED >> 3] |= 1 << (CLAIMED & 7)
    return bytes(bits)


def _machine(*, answered: bool) -> tuple[X86Vcpu, Xen]:
    xen = Xen()
    cpu = X86Vcpu(xen, long_mode=False)  # type: ignore[arg-type]
    code = assemble(PROGRAM, bits=16, org=0x1000)
    memory = bytearray(0x10000)
    memory[0x1000:0x1000 + len(code)] = code
    cpu.map_bytes(0, bytes(memory), writable=True)
    cpu.setup_real_mode(0, 0x1000)
    cpu.set_reg("esp", 0x7000)
    if not cpu.log_port_writes(0xE9, COST, xen.log):
        pytest.skip("the native callbacks cannot run here")
    if answered:
        assert cpu.answer_ports(COST, xen.answers)
        assert cpu.answer_cpuid([0, 0x80000001], COST, xen.cpuids)
        cpu.set_port_kinds(_kinds())
        cpu.set_port_functions(_functions())
        cpu.set_port_clock(MUL, DIV, MASK)
    return cpu, xen


def _run(cpu: X86Vcpu, xen: Xen, budget: int) -> list[tuple[ExitReason, int, int]]:
    """Slices of ``budget`` until the program halts, the clock port's origin moving on."""
    return _run_slices(cpu, budget, clock=xen)


@pytest.mark.parametrize("budget", [10_000_000, 2_500, 700])
def test_answered_exits_are_the_exits_python_would_answer(budget: int) -> None:
    """Whole program in one slice, and slices that end every few exits: the same exits
    with the same values in the same order at the same virtual times, the same slices,
    the same values in the guest's registers and memory."""
    cpu, xen = _machine(answered=False)
    plain = _run(cpu, xen, budget)
    native_cpu, native = _machine(answered=True)
    assert _run(native_cpu, native, budget) == plain
    assert native.events == xen.events
    assert native_cpu.mem(0x500, 40) == cpu.mem(0x500, 40)
    assert native_cpu.registers() == cpu.registers()
    # what the program read: the null handler's ones, the latch back, the claimed
    # function from Python, the empty slot's ones, the clock
    stored = cpu.mem(0x500, 12)
    assert stored[:3] == b"\xff\xff\xff" and stored[3:7] == (0x80000800).to_bytes(4, "little")
    assert stored[7:11] == (0x12345678).to_bytes(4, "little") and stored[11] == 0xFF
    ins = [e for e in xen.events if e[0] == "in" and e[1] == 0xB008 and e[2] == 4]
    assert len(ins) == LOOP + 2 and ins[-1][3] > ins[0][3]
    # nearly every exit the table names answered natively, in several hand-overs; the
    # rest (a full log, the word and byte accesses) in Python
    # (8 in Python by their kind, size or function, Xen's CPUID leaf, and one each time
    # the log is full; the other two CPUID leaves kept)
    assert native.answered >= 2 * LOOP + 2
    assert native.python <= 9 + 3 * LOOP // PORT_LOG_ENTRIES + 1
    assert xen.python == len(xen.events) - LOOP - 2     # all but the debug characters
    assert [e[1] for e in native.events if e[0] == "cpuid"] == [0, 0x40000000, 0x80000001]


def test_nothing_is_answered_when_switched_off_or_single_stepped() -> None:
    """``log_ports`` false (someone wants the exits' records as they are made), or single
    steps: every exit is Python's, with the same values."""
    cpu, xen = _machine(answered=True)
    cpu.log_ports = False
    _run(cpu, xen, 10_000_000)
    plain_cpu, plain = _machine(answered=False)
    _run(plain_cpu, plain, 10_000_000)
    assert xen.answered == 0 and xen.events == plain.events
    cpu, xen = _machine(answered=True)
    for _ in range(8):
        cpu.step()
    assert xen.answered == 0 and [e[:4] for e in xen.events] == [
        ("out", 0x92, 1, 0x5A), ("in", 0x92, 1, 0xFF), ("in", 0x92, 2, 0xFFFF)]


def test_the_latch_python_wrote_is_the_one_read_natively() -> None:
    """A latch write answered in Python (the log switched off) reaches the vCPU's copy:
    the next run reads it back natively."""
    cpu, xen = _machine(answered=True)
    cpu.log_ports = False
    while not xen.latch:        # to the latch write, one instruction at a time
        cpu.step()
    assert xen.latch == cpu.port_latch == 0x80000800 and xen.answered == 0
    cpu.log_ports = True
    _run(cpu, xen, 10_000_000)
    assert cpu.mem(0x503, 4) == (0x80000800).to_bytes(4, "little")
    assert xen.answered > 0


def test_the_api_refuses_what_the_callbacks_cannot_do() -> None:
    cpu, xen = _machine(answered=True)
    with pytest.raises(ValueError, match="65,536"):
        cpu.set_port_kinds(bytes(10))
    with pytest.raises(ValueError, match="65,536"):
        cpu.set_port_functions(bytes(10))
    with pytest.raises(ValueError, match="slower"):
        cpu.set_port_clock(5, 0, 1)
    with pytest.raises(ValueError, match="1000 ns"):
        cpu.answer_ports(COST + 1, xen.answers)
    with pytest.raises(ValueError, match="neither"):
        cpu.answer_cpuid([0x40000000], COST, xen.cpuids)


# -- the table the hypervisor gives its vCPUs ----------------------------------------------
def _seabios_domain(tmp_path: Path, *, paused: bool = True) -> tuple[object, object]:
    from firmware_boot import SEABIOS_OK

    from xenlab.lab import Lab

    if not SEABIOS_OK:
        pytest.skip("needs Debian's xen-utils-4.17 and seabios")
    disk = Path(__file__).resolve().parents[1] / "images" / "firmware" / "bootdisk.img"
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "boot.cfg"
    cfg.write_text('name = "boot"\ntype = "hvm"\nmemory = 32\nbios = "seabios"\nvga = "none"\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {'-p ' if paused else ''}{cfg}")
    return lab, lab.domain("boot")


def _vcpu_kinds(d: object) -> bytes:
    cpu = d.vcpus[0].cpu  # type: ignore[attr-defined]
    return bytes(cpu._plog.kinds)


def test_the_table_follows_the_claims(tmp_path: Path) -> None:
    """Xen's own devices are Python's, and so is each port the device model claimed;
    the PCI latch, its window, the PM timer, the RTC index and every port nobody claimed
    are answered natively; only claimed functions leave the window. A range given back
    becomes nobody's at once, and a disabled server claims nothing."""
    lab, d = _seabios_domain(tmp_path)
    hvm = d.hvm
    dm = hvm.ioreq_emulator
    kinds, functions = hvm_native_ports(hvm)
    expect = {0x92: PORT_NULL, 0x402: PORT_NULL, 0xCF8: PORT_LATCH, 0xCFC: PORT_WINDOW,
              0xCFF: PORT_WINDOW, 0xB008: PORT_CLOCK, 0x70: PORT_ONES, 0x71: PORT_PYTHON,
              0x20: PORT_PYTHON, 0x40: PORT_PYTHON, 0xB000: PORT_PYTHON, 0x3F8: PORT_PYTHON,
              0x1F0: PORT_PYTHON, 0x60: PORT_PYTHON, 0xE9: PORT_PYTHON}
    assert {port: kinds[port] for port in expect} == expect
    claimed = {sbdf for start, end in hvm.ioreq_ranges[int(IoRangeType.XEN_DMOP_IO_RANGE_PCI)]
               .ranges() for sbdf in range(start, end + 1)}
    assert claimed and {n for n in range(0x10000) if functions[n >> 3] >> (n & 7) & 1} == claimed
    # the vCPU has it, but its own logged port (the debug port)
    native = _vcpu_kinds(d)
    assert native[:0xE9] == kinds[:0xE9] and native[0xEA:] == kinds[0xEA:]
    port = int(IoRangeType.XEN_DMOP_IO_RANGE_PORT)
    assert ioreq_server_unmap_io_range(lab.host, d, hvm, dm, port, 0x3F8, 0x3FF) == 0
    assert _vcpu_kinds(d)[0x3F8] == PORT_NULL == _vcpu_kinds(d)[0x3FF]
    assert ioreq_server_map_io_range(lab.host, d, hvm, dm, port, 0x3F8, 0x3FF) == 0
    assert _vcpu_kinds(d)[0x3F8] == PORT_PYTHON
    assert ioreq_server_set_state(lab.host, d, hvm, dm, False) == 0
    off = _vcpu_kinds(d)
    assert off[0x3F8] == off[0x1F0] == PORT_NULL and off[0x71] == PORT_PYTHON
    assert not any(bytes(d.vcpus[0].cpu._plog.functions))


@pytest.mark.parametrize("bios", FIRMWARES)
def test_a_firmware_boot_is_the_same_with_answers_in_python(
        tmp_path: Path, bios: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A boot whose vCPU answers what it can natively and one with every exit in Python
    (``answer_ports`` and ``answer_cpuid`` refused): the same records and console log;
    and SeaBIOS's boot
    then sends most of its port exits through the native answers."""
    answered = [0]
    original = HvmTraps.answered_ports

    def counted(self: HvmTraps, exits: list[tuple[int, int, int, bool, int]]) -> None:
        answered[0] += len(exits)
        original(self, exits)

    monkeypatch.setattr(HvmTraps, "answered_ports", counted)
    native = boot_bootdisk(tmp_path / "a", bios)
    through, answered[0] = answered[0], 0
    monkeypatch.setattr(X86Vcpu, "answer_ports", lambda self, cost, sink: False)
    monkeypatch.setattr(X86Vcpu, "answer_cpuid", lambda self, leaves, cost, sink: False)
    plain = boot_bootdisk(tmp_path / "b", bios)
    assert answered[0] == 0
    assert_same_boot(native[:2], plain[:2])
    exits = [r for r in plain[0] if r[3] is Kind.VMEXIT and r[4] == "io"
             and r[5].get("port") != "0xe9"]
    if bios:       # SeaBIOS: the PCI scans, the PM timer delays, port 0x92
        assert through > 2_500 and through > len(exits) * 3 // 4
    else:
        assert through > 0


def test_a_watcher_that_comes_and_goes_sees_the_same_boot(tmp_path: Path) -> None:
    """Someone watches VM exits (every exit then Python's) for a while in the middle of
    a SeaBIOS boot, from inside hvmloader's PCI setup: the latch and the clock carry
    over both ways, and the boot is the one watched all along."""
    boots = []
    for name, all_along in (("coming", False), ("watched", True)):
        lab, _d = _seabios_domain(tmp_path / name, paused=False)
        stop = lab.trace.watch((Kind.VMEXIT,), lambda r: None) if all_along else None
        lab.run(max_seconds=0.0015)
        if stop is None:
            stop = lab.trace.watch((Kind.VMEXIT,), lambda r: None)
            lab.run(max_seconds=0.0015)
            stop()
        else:
            lab.run(max_seconds=0.0015)
        lab.run(max_seconds=3.0)
        boots.append(([(r.time, r.dom, r.vcpu, r.kind, r.name, r.args, r.ret)
                       for r in lab.trace.records], list(lab.host.log.lines)))
    assert_same_boot(boots[0], boots[1])
