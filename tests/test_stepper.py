"""The Stepper (xenlab/views/stepper.py): single steps, runs to events and phases, and Back.

hvm-hello is created paused; the Stepper moves it from hvmloader's entry (32-bit
flat, EIP 0x100000) into the BIOS's real-mode POST and on to the end of the boot,
an exact number of instructions at a time. Tests click the view's buttons and
read the model's panel strings. The real firmware (SeaBIOS, PVH GRUB):
tests/test_stepper_seabios.py.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from xenlab.errors import UsageError
from xenlab.lab import IMAGES, Lab
from xenlab.views.stepper import REGISTER_LINE, TEACHING_PHASES, Stepper, StepperView
from xenlab.xen.trace import Kind, TraceRecord

CFG = IMAGES / "hvm-hello.cfg"


@pytest.fixture
def stepper(tmp_path: Path) -> Stepper:
    # the cfg's disk is access=ro, so the shipped image is safe to use in place
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    out = lab.xl_output(f"create -p {CFG}")
    assert "Created domain" in out, out
    assert lab.domain("hvm-hello").paused
    return Stepper(lab, "hvm-hello")


def _state(s: Stepper) -> tuple[dict[str, int], str, int, list[int], str]:
    h = hashlib.sha256()
    for ext in s.d.extents:
        h.update(s.host.mem.read(ext.mfn << 12, ext.count << 12))
    return (s.cpu.registers(), h.hexdigest(), len(s.host.trace.records),
            [p.time for p in s.host.pcpus], s.serial_text())


def test_first_step_at_hvmloader_entry(stepper: Stepper) -> None:
    assert not stepper.d.paused  # the Stepper unpaused it (xl unpause) and drives it
    before = stepper.registers_text()
    assert "mode: protected" in before and "0008:00100000" in before
    assert stepper.cpu.reg("eip") == 0x100000
    assert stepper.disassembly_text().startswith("=> 00100000")
    view = StepperView(stepper)
    view.step_button.click()
    assert stepper.position == 1 and stepper.replay.counter.recent(2) == [0x100000]
    after = stepper.registers_text()
    assert after != before and "mode: protected" in after
    assert stepper.cpu.reg("eip") != 0x100000
    assert "=>" in stepper.disassembly_text() and stepper.disassembly_text().strip()
    assert view.slider.max == 1 and view.slider.value == 1


def test_run_to_phase_post_is_real_mode(stepper: Stepper) -> None:
    view = stepper.widget()
    view.phase_choice.value = "xenlab BIOS: POST"
    view.phase_button.click()
    assert "xenlab BIOS: POST" in view.status.value
    regs = stepper.registers_text()
    assert "mode: real" in regs
    assert stepper.cs_ip().startswith("F000:")
    assert "POST" in stepper.phase_text() and "src/post.c" in stepper.phase_text()
    # 16-bit disassembly, addressed as CS:IP
    assert "=> F000:" in stepper.disassembly_text()
    assert "RAM" in stepper.e820_text()
    assert "0xe9" in stepper.port_io_text()  # the phase line went out through port E9


def test_run_to_next_event_and_step_over(stepper: Stepper) -> None:
    n = len(stepper.host.trace.records)
    rec = stepper.run_to_next_event()
    assert rec is not None and rec.dom == stepper.d.domid
    assert rec.kind in (Kind.VMEXIT, Kind.IOREQ, Kind.HYPERCALL, Kind.PHASE, Kind.EVENT)
    assert rec.seq >= n
    view = stepper.widget()
    view.event_button.click()
    assert view.status.value.startswith("stopped at ")
    # step over hvmloader's first call: lands on the instruction after it
    for _ in range(200):
        insn = stepper._decode(stepper.linear_pc())
        if insn is not None and insn[1].startswith("call"):
            break
        stepper.step()
    assert insn is not None and insn[1].startswith("call")
    after = stepper.linear_pc() + insn[0]
    view.step_over_button.click()
    assert stepper.linear_pc() == after


def test_back_is_exact_and_forward_reproduces(stepper: Stepper) -> None:
    stepper.run_to_phase("xenlab BIOS: IVT")
    start, p0 = _state(stepper), stepper.position
    for _ in range(5):
        stepper.step()
    stepper.forward(2495)
    end = _state(stepper)
    assert end != start
    stepper.back(2500)
    assert stepper.position == p0 and _state(stepper) == start
    stepper.forward(2500)
    assert _state(stepper) == end
    view = stepper.widget()
    view.back_count.value = 7
    view.back_button.click()
    assert stepper.position == p0 + 2500 - 7
    view.slider.value = p0 + 10  # the slider goes to any recorded position
    assert stepper.position == p0 + 10
    view.slider.value = p0 + 2500
    assert _state(stepper) == end


def test_screen_after_the_whole_boot(stepper: Stepper) -> None:
    total = stepper.run_to_end()
    assert total > 50_000
    screen = stepper.screen_text()
    assert "hvm-hello: boot sector at 0000:7C00" in screen
    assert "protected mode: wrote VGA memory directly" in screen
    assert "hvm-hello: done" in stepper.serial_text()
    assert "jump to 0000:7C00" in stepper.phase_text() and "src/boot.c" in stepper.phase_text()


def test_stepper_on_a_pv_guest() -> None:
    """The stepper works on PV guests too: long mode, 64-bit disassembly, hypercalls."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl_output(f"create -p {Lab.image('pv-hello.cfg')}")
    st = Stepper(lab, "pv-hello")
    for _ in range(5):
        st.step()
    assert st.registers_text().startswith("mode: long")
    assert "=> FFFFFFFF80000012" in st.disassembly_text(after=1)
    event = st.run_to_next_event()
    assert event is not None and event.name == "console_io"
    where = st.position
    st.back(3)
    assert st.position == where - 3


def _timeline(s: Stepper) -> list[tuple[object, ...]]:
    return [(r.seq, r.time, r.dom, r.vcpu, r.kind, r.name, repr(r.args), repr(r.ret))
            for r in s.host.trace.records]


def test_stopping_and_going_back_do_not_change_the_timeline(stepper: Stepper) -> None:
    """The boot run to its end in one go, and the same boot stopped at every kind of stop
    (steps, next events, a phase, Back, Forward, the slider) on the way: the same trace
    records, times and all, and the same instruction count. A stop never ends a slice of
    the guest's: Xen's clock at every exit is the one of the run that did not stop."""
    whole = Lab(memory_mib=256, dom0_mem_mib=64)
    whole.xl_output(f"create -p {CFG}")
    one_go = Stepper(whole, "hvm-hello")
    total = one_go.run_to_end()
    for _ in range(3):
        stepper.step()
    rec = stepper.run_to_next_event()
    assert rec is not None and rec.kind is Kind.VMEXIT and rec.args["handler"] == "xen"
    stepper.run_to_phase("xenlab BIOS: POST")
    here = stepper.position
    stepper.back(1000)
    stepper.forward(300)
    stepper.widget().slider.value = here + 50
    assert stepper.run_to_end() == total
    assert _timeline(stepper) == _timeline(one_go)
    assert stepper.replay.divergences == [] == one_go.replay.divergences


# ---------------------------------------------------------------- issue 15: the stepper list
def test_run_to_an_unknown_phase_is_a_typed_error_listing_the_phases(stepper: Stepper) -> None:
    with pytest.raises(UsageError, match=r"no phase 'no such phase'.*xenlab BIOS: POST"):
        stepper.run_to_phase("no such phase")
    assert stepper.position == 0   # it did not run (it used to step to the end)
    view = stepper.widget()
    view._do(lambda: stepper.run_to_phase("SeaBIOS"))   # another firmware's phase
    assert view.status.value.startswith("run_to_phase: no phase 'SeaBIOS'")
    assert stepper.position == 0


def test_run_to_the_current_phase_says_so_instead_of_running_to_the_end(
        stepper: Stepper) -> None:
    view = stepper.widget()
    view.phase_choice.value = "xenlab BIOS: POST"
    view.phase_button.click()
    assert "xenlab BIOS: POST" in view.status.value
    here = stepper.position
    view.phase_button.click()          # the phase it is in, again
    assert stepper.position == here    # not stepped to the end of the boot
    assert "already passed phase 'xenlab BIOS: POST'" in view.status.value
    assert "\n" not in view.status.value
    with pytest.raises(UsageError, match="once per boot"):
        stepper.run_to_phase("HVM Loader")   # an earlier one
    assert stepper.run_to_phase("xenlab BIOS: IVT") is not None  # the next one still runs


def test_only_phases_the_teaching_firmware_reaches_are_offered(stepper: Stepper) -> None:
    offered = list(stepper.widget().phase_choice.options)
    assert offered == list(TEACHING_PHASES) == stepper.phases()
    assert not {"SeaBIOS", "Booting from ", "Writing SMBIOS", "Loading ACPI"} & set(offered)
    free = Lab(memory_mib=256, dom0_mem_mib=64)     # a free run of the same guest
    free.xl_output(f"create {CFG}")
    free.run()
    reached = [r.name for r in free.trace.select(kind="phase")]
    for phase in offered:
        assert any(name.startswith(phase) for name in reached), phase


def test_register_values_are_never_cut_in_two(stepper: Stepper) -> None:
    """Lines short enough for the panel, and the panel's HTML never wraps a line."""
    texts = [stepper.registers_text()]            # protected mode
    stepper.run_to_phase("xenlab BIOS: POST")
    texts.append(stepper.registers_text())        # real mode
    for text in texts:
        for line in text.splitlines()[1:]:
            assert len(line) <= REGISTER_LINE, line
            assert re.fullmatch(r"(\s*\w+ 0x[0-9a-f]{8}(?:[0-9a-f]{8})?)+", line), line
    html = stepper.widget().registers.value
    assert "white-space:pre" in html and "overflow-x:auto" in html


def test_run_until_any_predicate_stops_where_a_watched_kind_does(stepper: Stepper) -> None:
    """``run_until`` with a predicate alone tries it on each slice's new records and then
    replays to the record that matched; with the record's kinds given it watches them as
    they are emitted. Both stop right after the instruction that made the record."""
    def done(r: TraceRecord) -> bool:
        return r.kind is Kind.PHASE and r.name.startswith("xenlab BIOS: PIC")

    rec = stepper.run_until(done)
    other = Lab(memory_mib=256, dom0_mem_mib=64)
    other.xl_output(f"create -p {CFG}")
    watched = Stepper(other, "hvm-hello")
    rec2 = watched.run_until(done, kinds=(Kind.PHASE,))
    assert rec is not None and rec2 is not None and rec.to_dict() == rec2.to_dict()
    assert stepper.position == watched.position
    assert stepper.cpu.registers() == watched.cpu.registers()
    assert stepper.last_event is rec


def test_each_event_stops_right_after_the_instruction_that_made_it(stepper: Stepper) -> None:
    """The counter counts whole blocks; a record's stop still lands right after its
    instruction: straight away when that ``in``/``out`` is the last one that ran in the
    block, else by replaying the block one instruction at a time (two ports in a row,
    the RTC's index and data, say)."""
    stepper.run_to_phase("xenlab BIOS: POST")
    seen = set()
    for _ in range(40):
        rec = stepper.run_to_next_event()
        assert rec is not None
        if rec.kind is Kind.VMEXIT and rec.name == "io":
            insn = stepper._decode(stepper.replay.counter.recent(1)[-1])
            assert insn is not None and insn[1].split()[0] in ("in", "out"), insn
            seen.add(insn[1].split()[0])
    assert "out" in seen
