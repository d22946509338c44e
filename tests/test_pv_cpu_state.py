"""A PV kernel's CPU state through Xen: forced-emulation CPUID, set_gdt and
update_descriptor with Xen's descriptor checks, and the answers (values or Xen's
errnos) to the hypercalls a 64-bit PV kernel makes for its CPU, its devices and the
privileged interfaces it may not use.

Guests are real machine code (tests/elfgen.py); the expected values are Xen 4.17's,
written out here from its sources (pv/emul-inv-op.c, pv/descriptor-tables.c,
pv/misc-hypercalls.c, physdev.c, xsm/dummy.h), not computed by xenlab.
"""

from __future__ import annotations

import struct

from elfgen import DATA_VA, RESULTS_VA, VIRT_BASE, Asm, boot, results
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn import x86_const as X

from xenlab.public.xen import Hypercall as H

EPERM, ESRCH, EFAULT, EBUSY, EACCES, EINVAL, ENODEV, ENOSPC, ENOSYS = (
    -1, -3, -14, -16, -13, -22, -19, -28, -38)
EOPNOTSUPP = -95
FORCED_CPUID = "0f0b78656e0fa2"    # ud2; .ascii "xen"; cpuid


def _store(a: Asm, reg: str, slot: int) -> None:
    """mov %reg, RESULTS_VA + 8*slot (via rax)."""
    code = {"rax": "", "rbx": "4889d8", "rcx": "4889c8", "rdx": "4889d0"}[reg]
    a.raw(code).store_rax(slot)


def _native_cpuid(leaf: int) -> tuple[int, int, int, int]:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, b"\x0f\xa2")
    uc.reg_write(X.UC_X86_REG_RAX, leaf)
    uc.reg_write(X.UC_X86_REG_RCX, 0)
    uc.emu_start(0x1000, 0x1002)
    return tuple(uc.reg_read(r) & 0xFFFFFFFF for r in (  # type: ignore[return-value]
        X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX))


def test_forced_emulation_prefix_gives_xens_cpuid_and_skips_it() -> None:
    a = Asm()
    for k, leaf in enumerate((0x40000000, 0x40000001, 1)):
        a.mov("rax", leaf).mov("rcx", 0)
        a.raw(FORCED_CPUID)
        for j, reg in enumerate(("rax", "rbx", "rcx", "rdx")):
            _store(a, reg, 4 * k + j)
    a.mov("rax", 0x77).store_rax(12)          # reached: RIP went past the sequence
    a.shutdown(0)
    host, d = boot(a.bytes())
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    r = [x & 0xFFFFFFFF for x in results(host, d, 13)]
    # leaf 0x40000000: max leaf, "XenVMMXenVMM"; 0x40000001: version 4.17
    assert r[0:4] == [0x40000005, 0x566E6558, 0x65584D4D, 0x4D4D566E]
    assert r[4] == (4 << 16) | 17
    eax, ebx, ecx, _edx = _native_cpuid(1)
    assert r[8:10] == [eax, ebx]
    assert r[10] & (1 << 31)                  # the hypervisor bit
    assert not r[10] & ((1 << 5) | (1 << 3))  # no VMX, no MONITOR for a PV guest
    # MONITOR, DS-CPL, VMX, SMX, EST, TM2, PDCM, x2APIC, TSC-deadline; FMA, XSAVE,
    # OSXSAVE, AVX, F16C (no xsetbv for PV in xenlab) and RDRAND (determinism)
    hidden_ecx = (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (
        1 << 15) | (1 << 21) | (1 << 24) | (1 << 12) | (1 << 26) | (1 << 27) | (
        1 << 28) | (1 << 29) | (1 << 30)
    assert not r[10] & hidden_ecx             # whatever this machine's CPU has
    assert r[10] & ~hidden_ecx & ~(1 << 31) == ecx & ~hidden_ecx & ~(1 << 31)
    assert r[12] == 0x77
    assert [x.args["leaf"] for x in host.trace if x.name == "forced_cpuid"] == [
        "0x40000000", "0x40000001", "0x1"]


# ---------------------------------------------------------------- descriptor tables
GDT_VA = VIRT_BASE + 0x4000          # extra bss page 1 (pfn 4): the GDT
BAD_VA = VIRT_BASE + 0x5000          # extra bss page 2 (pfn 5): a page with a bad entry
CODE64_DPL0 = 0x00AF9A000000FFFF     # 64-bit code, DPL 0
DATA_DPL0 = 0x00CF92000000FFFF       # data, DPL 0
TSS64 = 0x0000890000000067           # an available 64-bit TSS: never in a PV GDT
GATE_TO_XEN = 0x0000EC00E0080000     # a call gate (DPL 3) to Xen's own CS 0xe008
GATE_OK = 0x0000EC00E0330000         # a call gate to the flat kernel CS


def _mfn_of(a: Asm, pfn: int, reg_slot: int) -> None:
    """rax = mfn_list[pfn] (start_info->mfn_list, kept in %r15), stored at a slot."""
    a.raw("498b4768")                          # mov 0x68(%r15), %rax (mfn_list)
    a.raw("488b80" + struct.pack("<i", 8 * pfn).hex())  # mov 8*pfn(%rax), %rax
    a.store_rax(reg_slot)


def _write_desc(a: Asm, va: int, index: int, desc: int) -> None:
    a.mov("rax", desc)
    a.code += b"\x48\xa3" + struct.pack("<Q", va + 8 * index)   # movabs %rax, va+8*i


def _remap_ro(a: Asm, va: int, mfn_slot: int) -> None:
    """update_va_mapping(va, mfn << 12 | P | US, UVMF_INVLPG): read-only now."""
    a.code += b"\x48\xa1" + struct.pack("<Q", RESULTS_VA + 8 * mfn_slot)  # movabs slot, %rax
    a.raw("48c1e00c")                          # shl $12, %rax
    a.raw("4883c805")                          # or $5, %rax
    a.raw("4889c6")                            # mov %rax, %rsi
    a.mov("rdi", va).mov("rdx", 2)
    from elfgen import hypercall
    a.code += hypercall(H.update_va_mapping, a.here)


def _call_with_slot(a: Asm, nr: int, arg0_slot: int, shift: int, add: int, *rest: int) -> None:
    """A hypercall whose first argument is (results[slot] << shift) + add."""
    a.code += b"\x48\xa1" + struct.pack("<Q", RESULTS_VA + 8 * arg0_slot)
    if shift:
        a.raw(f"48c1e0{shift:02x}")            # shl $shift, %rax
    a.mov("rdi", add).raw("4801c7")            # mov $add, %rdi; add %rax, %rdi
    from elfgen import ARG_REGS, hypercall
    for reg, value in zip(ARG_REGS[1:], rest, strict=False):
        a.mov(reg, value)
    a.code += hypercall(nr, a.here)


def test_set_gdt_and_update_descriptor_check_every_descriptor() -> None:
    a = Asm()
    a.raw("4989f7")                            # mov %rsi, %r15 (start_info)
    _mfn_of(a, 4, 40)
    _mfn_of(a, 5, 41)
    _write_desc(a, GDT_VA, 1, CODE64_DPL0)     # accepted, DPL raised to 3
    _write_desc(a, GDT_VA, 2, DATA_DPL0)
    _write_desc(a, GDT_VA, 3, GATE_OK)         # a gate: DPL forced to 0
    _write_desc(a, BAD_VA, 1, GATE_TO_XEN)
    # the frame list for set_gdt at DATA_VA: [mfn of GDT_VA]
    a.code += b"\x48\xa1" + struct.pack("<Q", RESULTS_VA + 8 * 40)
    a.code += b"\x48\xa3" + struct.pack("<Q", DATA_VA)
    a.code += b"\x48\xa1" + struct.pack("<Q", RESULTS_VA + 8 * 41)
    a.code += b"\x48\xa3" + struct.pack("<Q", DATA_VA + 8)
    a.call(H.set_gdt, DATA_VA, 512).store_rax(0)        # still mapped writable: refused
    _remap_ro(a, GDT_VA, 40)
    a.store_rax(1)
    _remap_ro(a, BAD_VA, 41)
    a.store_rax(2)
    a.call(H.set_gdt, DATA_VA, 14 * 512 + 1).store_rax(3)   # too many entries
    a.call(H.set_gdt, DATA_VA + 8, 512).store_rax(4)        # a gate into Xen: refused
    a.call(H.set_gdt, DATA_VA, 512).store_rax(5)            # accepted
    _call_with_slot(a, H.update_descriptor, 40, 12, 8 * 5, DATA_DPL0)
    a.store_rax(6)                                          # slot 5: data, DPL fixed up
    _call_with_slot(a, H.update_descriptor, 40, 12, 8 * 6, TSS64)
    a.store_rax(7)                                          # a TSS: refused
    _call_with_slot(a, H.update_descriptor, 40, 12, 8 * 6 + 4, DATA_DPL0)
    a.store_rax(8)                                          # misaligned: refused
    a.raw("498b4758").store_rax(42)                         # mov 0x58(%r15),%rax: pt_base
    _call_with_slot(a, H.update_descriptor, 42, 0, 0, DATA_DPL0)
    a.store_rax(9)           # pt_base is a virtual address: refused as not a frame of its
    a.shutdown(0)
    host, d = boot(a.bytes(), bss=2 * 4096)
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    r = results(host, d, 10)
    assert r == [EINVAL, 0, 0, EINVAL, EINVAL, 0, 0, EINVAL, EINVAL, EINVAL], r
    gdt = d.pfn_to_mfn(4) << 12
    descs = struct.unpack("<8Q", host.mem.read(gdt, 64))
    assert (descs[1] >> 45) & 3 == 3 and descs[1] & ~(3 << 45) == CODE64_DPL0
    assert (descs[2] >> 45) & 3 == 3
    assert (descs[3] >> 45) & 3 == 0 and (descs[3] >> 16) & 0xFFFF == 0xE033  # RPL = DPL 3
    assert (descs[5] >> 45) & 3 == 3 and descs[5] & ~(3 << 45) == DATA_DPL0
    assert descs[6] == 0
    assert d.vcpus[0].pv.gdt_frames == [d.pfn_to_mfn(4)]
    host.check_invariants()
    host.domain_destroy(d)                                  # the GDT's references go
    host.check_invariants()
    assert d.domid not in host.zombies


# ---------------------------------------------------------------- the other hypercalls
def _data(*chunks: tuple[int, bytes]) -> bytes:
    page = bytearray(4096)
    for off, blob in chunks:
        page[off:off + len(blob)] = blob
    return bytes(page)


CASES: list[tuple[str, int, tuple[int, ...], int]] = [
    ("stack_switch", H.stack_switch, (0xE02B, VIRT_BASE + 0x3F00), 0),
    ("set_segment_base FS", H.set_segment_base, (0, 0x7000_0000_0000), 0),
    ("set_segment_base FS non-canonical", H.set_segment_base, (0, 0x8000_0000_0000), EINVAL),
    ("set_segment_base GS kernel", H.set_segment_base, (2, VIRT_BASE), 0),
    ("set_segment_base 4", H.set_segment_base, (4, 0), EINVAL),
    ("fpu_taskswitch", H.fpu_taskswitch, (0,), 0),
    ("vm_assist writable_pagetables", H.vm_assist, (0, 2), 0),
    ("vm_assist m2p_strict", H.vm_assist, (0, 32), 0),
    ("vm_assist type 6", H.vm_assist, (0, 6), EINVAL),
    ("vm_assist cmd 7", H.vm_assist, (7, 2), ENOSYS),
    ("set_debugreg dr0 into Xen", H.set_debugreg, (0, 0xFFFF_8000_0000_0000), EPERM),
    ("set_debugreg dr0", H.set_debugreg, (0, 0x1000), 0),
    ("get_debugreg dr0", H.get_debugreg, (0,), 0x1000),
    ("get_debugreg dr6", H.get_debugreg, (6,), 0xFFFF0FF0),
    ("set_debugreg dr6 high", H.set_debugreg, (6, 1 << 32), EINVAL),
    ("set_debugreg dr7 GD", H.set_debugreg, (7, 1 << 13), EPERM),
    ("set_debugreg dr7 I/O", H.set_debugreg, (7, 1 | (2 << 16)), EPERM),
    ("set_debugreg dr8", H.set_debugreg, (8, 0), ENODEV),
    ("physdev set_iopl 4", H.physdev_op, (6, DATA_VA + 0x00), EINVAL),
    ("physdev set_iopl 3", H.physdev_op, (6, DATA_VA + 0x08), 0),
    ("physdev apic_read", H.physdev_op, (8, DATA_VA + 0x10), EPERM),
    ("physdev map_pirq", H.physdev_op, (13, DATA_VA + 0x10), EPERM),
    ("physdev get_free_pirq", H.physdev_op, (23, DATA_VA + 0x20), 0),
    ("physdev irq_status_query 200", H.physdev_op, (5, DATA_VA + 0x30), EINVAL),
    ("physdev eoi unbound", H.physdev_op, (12, DATA_VA + 0x10), EINVAL),
    ("physdev 99", H.physdev_op, (99, DATA_VA), ENOSYS),
    ("physdev_op_compat set_iopl", H.physdev_op_compat, (DATA_VA + 0x40,), 0),
    ("sched_op_compat yield", H.sched_op_compat, (0, 0), 0),
    ("sched_op_compat 9", H.sched_op_compat, (9, 0), ENOSYS),
    ("sysctl", H.sysctl, (DATA_VA + 0x60,), EPERM),
    ("sysctl old version", H.sysctl, (DATA_VA + 0x70,), EACCES),
    ("domctl", H.domctl, (DATA_VA + 0x60,), EPERM),
    ("platform_op", H.platform_op, (DATA_VA + 0x80,), EPERM),
    ("kexec_op", H.kexec_op, (0, 0), EPERM),
    ("hypfs_op", H.hypfs_op, (0, 0, 0, 0, 0), EPERM),
    ("dm_op self", H.dm_op, (0x7FF0, 1, DATA_VA), EPERM),
    ("dm_op nobody", H.dm_op, (0x1234, 1, DATA_VA), ESRCH),
    ("xenpmu_op", H.xenpmu_op, (0, DATA_VA), EOPNOTSUPP),
    ("nmi_op register", H.nmi_op, (0, DATA_VA + 0x90), 0),
    ("callback_op unregister event", H.callback_op, (1, DATA_VA + 0xA0), EINVAL),
    ("callback_op register syscall32", H.callback_op, (0, DATA_VA + 0xB0), 0),
    ("vcpu_op set_periodic_timer 1us", H.vcpu_op, (6, 0, DATA_VA + 0xC0), EINVAL),
    ("vcpu_op set_periodic_timer 10ms", H.vcpu_op, (6, 0, DATA_VA + 0xC8), 0),
    ("vcpu_op get_physid", H.vcpu_op, (12, 0, DATA_VA), EINVAL),
    ("event_channel_op_compat alloc_unbound", H.event_channel_op_compat, (DATA_VA + 0xD0,),
     0),
    ("mca", H.mca, (DATA_VA + 0xE0,), EPERM),
    ("mca old version", H.mca, (DATA_VA + 0xE8,), EACCES),
    ("update_va_mapping_otherdomain dom0", H.update_va_mapping_otherdomain,
     (VIRT_BASE + 0x5000, 0, 0, 0), EPERM),
    ("update_va_mapping_otherdomain self unmapped", H.update_va_mapping_otherdomain,
     (0x1000, 0, 0, 0x7FF0), EINVAL),
]
DATA = _data(
    (0x00, struct.pack("<I", 4)),                       # set_iopl {4}
    (0x08, struct.pack("<I", 3)),                       # set_iopl {3}
    (0x20, struct.pack("<iI", 1, 0)),                   # get_free_pirq {GSI}
    (0x30, struct.pack("<II", 200, 0)),                 # irq_status_query {200}
    (0x40, struct.pack("<I4xI", 6, 2)),                 # physdev_op {set_iopl, {2}}
    (0x60, struct.pack("<II", 1, 0x15)),                # sysctl/domctl {cmd 1, version}
    (0x70, struct.pack("<II", 1, 0x14)),                # an older interface version
    (0x80, struct.pack("<II", 1, 0x03000001)),          # platform_op {cmd, version}
    (0x90, struct.pack("<Q", VIRT_BASE + 0x800)),       # xennmi_callback {handler}
    (0xA0, struct.pack("<H", 0)),                       # callback_unregister {event}
    (0xB0, struct.pack("<HH4xQ", 7, 1, VIRT_BASE + 0x900)),  # register syscall32
    (0xC0, struct.pack("<Q", 1000)),                    # period 1 us
    (0xC8, struct.pack("<Q", 10_000_000)),              # period 10 ms
    (0xD0, struct.pack("<IHHI", 6, 0x7FF0, 0, 0)),     # evtchn_op {alloc_unbound, {self, 0}}
    (0xE0, struct.pack("<II", 0, 0x01ECC003)),          # xen_mc {XEN_MC_fetch, version}
    (0xE8, struct.pack("<II", 0, 0x01ECC002)),
)


def test_every_pv_cpu_and_device_hypercall_answers_as_xen() -> None:
    a = Asm()
    for k, (_name, nr, args, _want) in enumerate(CASES):
        a.call(nr, *args).store_rax(k)
    a.shutdown(0)
    host, d = boot(a.bytes(), data=DATA, max_instructions=5_000_000)
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    got = results(host, d, len(CASES))
    wrong = [(name, g, want) for (name, _nr, _a, want), g in zip(CASES, got, strict=True)
             if g != want]
    assert not wrong, wrong
    # get_free_pirq wrote the first free GSI pirq back: 16
    assert struct.unpack("<iI", host.mem.read(d.maddr(2) + 0x20, 8)) == (1, 16)
    pv = d.vcpus[0].pv
    assert (pv.kernel_ss, pv.kernel_sp) == (0xE02B, VIRT_BASE + 0x3F00)
    assert d.vcpus[0].cpu.msr_read(0xC0000100) == 0x7000_0000_0000   # FS base
    assert pv.vm_assist == (1 << 2) | (1 << 32)
    assert d.vcpus[0].callbacks["syscall32"] == VIRT_BASE + 0x900
    assert pv.trap_ctxt[2].address == VIRT_BASE + 0x800             # the NMI callback


def test_a_guest_crashed_by_its_nmi_bounce_runs_no_more_code() -> None:
    """An NMI sent to a vCPU whose NMI callback is at address 0: create_bounce_frame
    finds no handler and crashes the domain when Xen next enters the guest. Nothing of
    the guest runs after that (found by the PV fuzzer: the crashed vCPU ran a whole
    slice more, and its set_timer_op left a timer armed on a dead domain)."""
    a = Asm()
    a.call(H.nmi_op, 0, DATA_VA).store_rax(0)           # XENNMI_register_callback {0}
    a.call(H.vcpu_op, 11, 0, 0).store_rax(1)            # VCPUOP_send_nmi to itself
    a.mov("rax", 0x77).store_rax(2)
    a.call(H.set_timer_op, 1 << 40).store_rax(3)
    a.shutdown(0)
    host, d = boot(a.bytes(), data=_data((0x00, struct.pack("<Q", 0))))
    assert d.is_crashed and d.crash_reason == "create_bounce_frame: no handler for the NMI"
    assert results(host, d, 4) == [0, 0, 0, 0]           # not even send_nmi's return
    assert d.vcpus[0].timer_deadline is None
    host.check_invariants()
    assert [r.name for r in host.trace if r.dom == d.domid and r.name in (
        "nmi_op", "vcpu_op", "set_timer_op", "crash")] == ["nmi_op", "vcpu_op", "crash"]


# ---------------------------------------------------------------- the emulated TSC
RDTSC_TO_RAX = "0f31" "48c1e220" "4809d0"          # rdtsc; shl $32,%rdx; or %rdx,%rax
RDTSCP_TO_RAX = "0f01f9" "48c1e220" "4809d0"       # rdtscp; ...


def _dirty(a: Asm) -> Asm:
    """Upper halves a 64-bit rdtsc must clear (it writes EAX and EDX, zero-extended)."""
    return a.mov("rax", 0xDEAD_BEEF_0000_0000).mov("rdx", 0xCAFE_BABE_0000_0000).mov(
        "rcx", 0x5555_5555_5555_5555)


def _tsc_guest() -> bytes:
    a = Asm()
    _dirty(a).raw(RDTSC_TO_RAX).store_rax(0)
    _dirty(a).raw(RDTSCP_TO_RAX).store_rax(1)
    _store(a, "rcx", 2)                           # rdtscp's ECX: TSC_AUX, 0
    _dirty(a).raw(RDTSC_TO_RAX).store_rax(3)
    a.shutdown(0)
    return a.bytes()


def _tsc_run() -> tuple[list[int], int]:
    host, d = boot(_tsc_guest())
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    return results(host, d, 4), host.elapsed()


def test_a_pv_guests_tsc_is_virtual_time_whichever_way_xen_sees_the_rdtsc(
        monkeypatch: object) -> None:
    """Xen emulates a PV guest's TSC (tsc_mode "always_emulate": CR4.TSD set, rdtsc a #GP
    that emul-priv-op answers): the value is system time at 1 GHz, as vcpu_time_info's
    tsc_to_system_mul = 2**31, tsc_shift = 1 says, so the guest's clock and its timers
    agree, and two runs read the same values. xenlab also traps rdtsc in new code (no
    #GP, the slice goes on): with that trap off, the #GP path gives the same clock.
    On the old code Linux read the host's cycle counter: its clock ran at the host's
    speed, 20 times virtual time, and its soft-lockup watchdog fired; and a trapped
    rdtsc left RAX's upper half as it was (Linux's first timer was due in 2**63 ns)."""
    from xenlab.cpu.x86 import X86Vcpu

    first, elapsed = _tsc_run()
    assert _tsc_run()[0] == first                  # deterministic
    t0, t1, aux, t2 = first
    assert 0 < t0 < t1 < t2 <= elapsed < 10_000_000, first   # ns since the host booted
    assert t2 - t0 < 10_000                        # a few instructions apart
    assert aux == 0
    monkeypatch.setattr(X86Vcpu, "_trap_rdtsc", lambda self, pc, code: False)  # type: ignore[attr-defined]
    via_gp, elapsed = _tsc_run()
    u0, u1, aux, u2 = via_gp
    assert 0 < u0 < u1 < u2 <= elapsed < 10_000_000 and aux == 0, via_gp
