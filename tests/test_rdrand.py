"""``rdrand`` draws xenlab's numbers, not the host's: the same guest, the same values.

unicorn executes RDRAND with the host's randomness (two runs of the same three
instructions give different values), which made a guest that uses it differ from run to
run. Xen does not intercept RDRAND; xenlab hides it in CPUID leaf 1 and, for a guest that
executes it anyway, answers it from a code trap (x86.rdrand_value: the vCPU's name, the
virtual TSC and the instruction's address), found in new code by the same scan as the
other code traps, natively or in Python.
"""

from __future__ import annotations

import pytest
from elfgen import Asm, boot, results
from test_port_log import Exits

from xenlab.cpu import x86
from xenlab.cpu.x86 import X86Vcpu, rdrand_value

M64 = 0xFFFF_FFFF_FFFF_FFFF
CF, FLAGS_CLEARED = 1, (1 << 11) | (1 << 7) | (1 << 6) | (1 << 4) | (1 << 2)  # OF SF ZF AF PF

# Real mode at 0000:0000 (linear = the offset). The first block, then one after a jump.
REAL_MODE = bytes.fromhex(
    "0fc7f0"      # 00 rdrand ax      (16-bit code: the low half only)
    "0fc7f3"      # 03 rdrand bx
    "660fc7f1"    # 06 rdrand ecx     (66: 32 bits)
    "eb00"        # 0A jmp 0C         (a new block)
    "0fc7f2"      # 0C rdrand dx
    "f30fc7f6"    # 0F rep rdrand si  (#UD: left to the CPU)
)


def _machine(*, native: bool = True, name: str = "d1v0") -> X86Vcpu:
    """REAL_MODE loaded, about to run its first instruction, new code watched."""
    cpu = X86Vcpu(Exits(), long_mode=False, name=name,  # type: ignore[arg-type]
                  native_budget=native)
    cpu.map_bytes(0, REAL_MODE.ljust(0x2000, b"\0"), writable=True)
    cpu.setup_real_mode(0, 0)
    cpu.watch_new_code_for_wrmsr()
    cpu.identity_tlb_until_paging()
    return cpu


def _real_mode(*, native: bool = True, name: str = "d1v0") -> tuple[X86Vcpu, object]:
    cpu = _machine(native=native, name=name)
    cpu.set_reg("eax", 0x1234_0000)
    cpu.set_reg("ebx", 0xABCD_0000)
    cpu.set_reg("eflags", 0x2 | FLAGS_CLEARED)
    return cpu, cpu.run(10_000_000)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_rdrand_in_real_mode_is_xenlabs_value(native: bool) -> None:
    """Each rdrand gets rdrand_value(vCPU, TSC, address) (the test's hypervisor reads the
    TSC as 0), the width its operand size says (a 16-bit write keeps the upper half), CF
    set and OF SF ZF AF PF clear; a REP prefix is the CPU's #UD."""
    cpu, result = _real_mode(native=native)
    want = [rdrand_value("d1v0", 0, at) for at in (0x00, 0x03, 0x06, 0x0C)]
    assert cpu.reg("eax") == 0x1234_0000 | want[0] & 0xFFFF
    assert cpu.reg("ebx") == 0xABCD_0000 | want[1] & 0xFFFF
    assert cpu.reg("ecx") == want[2] & 0xFFFF_FFFF
    assert cpu.reg("edx") == want[3] & 0xFFFF
    assert cpu.reg("eflags") & (CF | FLAGS_CLEARED) == CF
    assert result.reason is x86.ExitReason.FAULT and result.vector == 6   # #UD
    assert cpu.reg("eip") == 0x0F
    # a trap wherever the instruction may start: each prefix and the 0F
    assert sorted(cpu._rdrand_hooks) == [0x00, 0x03, 0x06, 0x07, 0x0C, 0x0F, 0x10]


def test_rdrand_is_the_same_every_run_and_differs_between_vcpus() -> None:
    """Two runs draw the same numbers; another vCPU (another seed) draws others."""
    regs = ("eax", "ebx", "ecx", "edx")
    first = [_real_mode()[0].reg(r) for r in regs]
    assert [_real_mode()[0].reg(r) for r in regs] == first
    other = [_real_mode(name="d2v0")[0].reg(r) for r in regs]
    assert all(a != b for a, b in zip(first, other, strict=True))
    assert len({v & 0xFFFF for v in first}) == 4


def test_rdrand_with_the_native_filter_off_is_trapped_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The block after the jump reaches Python's new-block hook through the native
    filter (its pattern includes rdrand) or without it: the same traps, the same values."""
    cpu, _ = _real_mode()
    with_filter = (sorted(cpu._rdrand_hooks), cpu.reg("edx"), cpu.native_new_blocks())
    monkeypatch.setattr(x86, "_native_newtb", lambda: None)
    plain, _ = _real_mode()
    assert (sorted(plain._rdrand_hooks), plain.reg("edx")) == with_filter[:2]
    assert plain.native_new_blocks() == 0


# -- a PV guest (64-bit code): REX.W, REX.B, and 32-bit writes that zero-extend --------
DIRTY = 0xDEAD_BEEF_0000_0000


def _pv_guest() -> bytes:
    a = Asm()
    a.mov("rax", DIRTY).raw("480fc7f0").store_rax(0)      # rdrand rax
    a.mov("rax", DIRTY).raw("0fc7f0").store_rax(1)        # rdrand eax: zero-extended
    a.mov("rax", DIRTY).raw("660fc7f0").store_rax(2)      # rdrand ax: upper bits kept
    a.mov("r9", DIRTY).raw("490fc7f1" "4c89c8").store_rax(3)   # rdrand r9; mov rax, r9
    a.raw("9c58").store_rax(4)                            # pushf; pop rax
    a.shutdown(0)
    return a.bytes()


def _pv_run() -> tuple[list[int], list[int]]:
    host, d = boot(_pv_guest())
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    return [v & M64 for v in results(host, d, 5)], sorted(d.vcpus[0].cpu._rdrand_hooks)


def test_rdrand_in_a_pv_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    values, traps = _pv_run()
    full, low32, low16, r9, flags = values
    assert len(traps) >= 4
    assert low32 < 1 << 32 and low16 >> 16 == DIRTY >> 16
    assert len({full, low32, low16 & 0xFFFF, r9}) == 4
    assert flags & (CF | FLAGS_CLEARED) == CF
    assert _pv_run() == (values, traps)                    # the same every run
    monkeypatch.setattr(x86, "_native_newtb64", lambda: None)
    assert _pv_run() == (values, traps)                    # and without the PV filter


def test_the_stepper_sees_the_same_rdrand_values() -> None:
    """An instruction counter attached (the stepper) takes the code traps over: stopping
    before every instruction, or single-stepping that many, leaves the same registers.
    (Each rdrand here is emulated and moves the program counter on, so unicorn starts
    a new block inside the counted one: counted twice and trapped twice, the third
    instruction was skipped, until the counter stopped adding a second code hook over
    bytes a first one covers, BlockCounter._uncovered.)"""
    from xenlab.cpu.icount import counter_for

    for n in range(7):      # up to the REP RDRAND that raises #UD
        cpu = _machine()
        counter = counter_for(cpu)
        counter.stop_before(n)
        cpu.run(10_000_000)
        assert counter.count == n
        stepped = _machine()
        for _ in range(n):
            stepped.step()
        assert cpu.registers() == stepped.registers(), n
