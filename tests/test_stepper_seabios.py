"""The boot stepper over the real firmware (issue 14, item 6): Debian's hvmloader and
SeaBIOS to the boot sector (about 6 M instructions), and Debian's PVH GRUB to ``grub>``.

Run to a phase or an event at full speed; Back to any instruction (restore the nearest
checkpoint, replay an exact instruction count): the registers, memory and trace are
those of the first pass there; forward again, the same trace records. How fast:
``make bench`` (BENCHMARKS.md, "The boot stepper on SeaBIOS"), never asserted here.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from xenlab.lab import Lab
from xenlab.views.stepper import Stepper
from xenlab.xen.trace import Kind

SEABIOS = Lab.missing("seabios")
PVH_GRUB = Lab.missing("pvh-grub")


def _ram(st: Stepper) -> str:
    h = hashlib.sha256()
    for ext in st.d.extents:
        h.update(st.host.mem.read(ext.mfn << 12, ext.count << 12))
    return h.hexdigest()


def _mark(st: Stepper) -> tuple[dict[str, int], str, int, str]:
    return (st.cpu.registers(), _ram(st), st.host.trace.dropped + len(st.host.trace),
            st.serial_text())


def _timeline(st: Stepper) -> list[tuple[object, ...]]:
    return [(r.seq, r.time, r.dom, r.vcpu, r.kind, r.name, repr(r.args), repr(r.ret))
            for r in st.host.trace.records]


@pytest.mark.slow     # 3-5 s here: the boot, fifteen jumps, a RAM hash at each
@pytest.mark.skipif(SEABIOS is not None, reason=str(SEABIOS))
def test_seabios_to_the_boot_sector_and_back_to_any_instruction() -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl_output(f"create -p {Lab.image('hvm-seabios.cfg')}")
    st = Stepper(lab, "hvm-seabios")
    assert "Booting from " in st.phases() and "xenlab BIOS: POST" not in st.phases()
    rec = st.run_to_phase("Booting from 0000")
    assert rec is not None and rec.name == "Booting from 0000:7c00"
    boot = st.position
    assert boot > 4_000_000 and len(st.checkpoints) >= 2   # (taken by wall time)
    assert "SeaBIOS (version" in st.screen_text()
    # stops of the first pass: the phase, the boot sector's first instruction (SeaBIOS
    # leaves 32-bit mode for it), single steps, an event
    marks = {boot: _mark(st)}
    assert st.run_to(0x7C00) and st.cs_ip() == "0000:7C00"
    assert "mode: real" in st.registers_text()
    marks[st.position] = _mark(st)
    for _ in range(3):
        st.step()
        marks[st.position] = _mark(st)
    event = st.run_to_next_event()
    assert event is not None and event.kind in (Kind.VMEXIT, Kind.IOREQ)
    marks[st.position] = _mark(st)
    end = st.run_to_end()                                # the boot sector prints, halts
    assert "hvm-hello: done" in st.serial_text()
    whole = _timeline(st)
    # Back to random instructions of the whole run, then to the first pass's stops again
    rng = random.Random(14)
    for p in sorted(rng.randrange(end) for _ in range(4)):
        st.back_to(p)
        assert st.position == p
        marks[p] = _mark(st)
        assert _timeline(st) == whole[:len(st.host.trace)]
    for p in sorted(marks, reverse=True):
        st.back_to(p)
        assert _mark(st) == marks[p], p
    # forward after Back: the same records, times and all
    st.back_to(boot)
    assert st.run_to_end() == end
    assert _timeline(st) == whole
    assert st.replay.divergences == []


@pytest.mark.skipif(PVH_GRUB is not None, reason=str(PVH_GRUB))
def test_pvh_grub_to_its_prompt_and_back() -> None:
    """type = "pvh": no firmware and no device model; GRUB enters at its PVH entry in
    32-bit flat mode, maps its grant table and shared_info over RAM pages (a Back to
    before that puts the RAM pages back), and prints ``grub>`` on the PV console."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl_output(f"create -p {Lab.image('pvh-grub.cfg')}")
    st = Stepper(lab, "pvh-grub")
    assert st.phases() == [] and st.dm is None
    assert st.cs_ip() == "0008:00100000"
    # xenconsoled notifies the guest after each chunk it takes from the ring: an event
    # record of the guest's, with the chunk already on the console
    assert st.run_until(lambda r: "grub>" in lab.console("pvh-grub"), kinds=(Kind.EVENT,),
                        max_instructions=40_000_000) is not None
    prompt, screen = st.position, lab.console("pvh-grub")
    whole, regs = _timeline(st), st.cpu.registers()
    assert screen.rstrip().endswith("grub>") and "GNU GRUB" in screen
    early = 2_000
    st.back_to(early)
    assert st.position == early and "grub>" not in lab.console("pvh-grub")
    assert _timeline(st) == whole[:len(st.host.trace)]
    st.back_to(prompt)
    assert st.cpu.registers() == regs and lab.console("pvh-grub") == screen
    assert _timeline(st) == whole
    assert st.replay.divergences == []


@pytest.mark.slow     # ~1 s: the boot to its sector, then a dozen events
@pytest.mark.skipif(SEABIOS is not None, reason=str(SEABIOS))
def test_each_port_access_event_stops_right_after_its_own_instruction() -> None:
    """After the boot sector's line, SeaBIOS reads the RTC: ``out 0x70`` then ``in 0x71``
    in one block. The counter counts whole blocks and the CPU ends up after both; the
    stop for the ``out``'s record goes back to right after the ``out`` (the block
    replayed one instruction at a time), the next one right after the ``in``."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl_output(f"create -p {Lab.image('hvm-seabios.cfg')}")
    st = Stepper(lab, "hvm-seabios")
    st.run_to_phase("Booting from 0000")
    ports = []
    for _ in range(12):
        rec = st.run_to_next_event()
        assert rec is not None
        if rec.kind is Kind.VMEXIT and rec.name == "io":
            insn = st._decode(st.replay.counter.recent(1)[-1])
            assert insn is not None
            mnemonic, _, operands = insn[1].partition(" ")
            assert mnemonic == rec.args["dir"], (rec.args, insn)
            if "dx" not in operands:
                assert rec.args["port"] in operands, (rec.args, insn)
            ports.append(rec.args["port"])
    assert ports[:2] == ["0x70", "0x71"]
    assert st.replay.divergences == []
