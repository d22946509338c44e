"""Exceptions bounced to a PV guest's own handlers (set_trap_table, create_bounce_frame).

The guest (real machine code, tests/elfgen.py) maps shared_info, registers a
trap table, then takes one exception after another: a page fault reading and
one writing an unmapped address, a divide error, ``int $0x80`` through a DPL 3
entry, ``int3``, ``int $0x81`` through a DPL 0 entry (a #GP), and ``ud2``.
Before each it loads RCX and R11 with marker values, sets its event mask, and
records RFLAGS and RSP; each handler copies Xen's frame, CR2 from vcpu_info,
its upcall mask and its own RSP into the results page, moves the saved RIP
past the faulting instruction and returns with HYPERVISOR_iret.

The expected frames are computed here from those recorded registers and
create_bounce_frame's layout (entry.S), not by calling xenlab's code.
"""

from __future__ import annotations

import struct

from elfgen import DATA_VA, RESULTS_VA, VIRT_BASE, Asm, boot, hypercall, results

from xenlab.public.xen import Hypercall as H

SI_VA = VIRT_BASE + 0x200000       # an ordinary page of the guest, remapped to shared_info
UNMAPPED = 0x0000_4000_0000_1238   # no L4 entry there
HANDLERS = 0x600                   # handler code starts here in the code page
IRET_STUB = VIRT_BASE + 0x1000 + 32 * H.iret
RCX_MARK, R11_MARK = 0x1111_2222_3333_4444, 0x5555_6666_7777_8888
KERNEL_CS_RPL0 = 0xE030            # FLAT_KERNEL_CS (0xe033) with RPL 0: "kernel interrupted"
FLAT_KERNEL_SS = 0xE02B
EFLAGS_IF = 1 << 9


def _disp32(va: int) -> bytes:
    return struct.pack("<i", va - (1 << 64) if va >= 1 << 63 else va)


def _jmp(a: Asm, target: int) -> None:
    a.code += b"\xe9" + struct.pack("<i", target - (a.here + 5))   # jmp target


def _handler(a: Asm, *, errcode: bool, skip: int) -> int:
    """A handler recording its frame at [r14]: returns its address."""
    at = a.here
    a.raw("4c89f7")                                   # mov %r14, %rdi
    a.raw("4889e6")                                   # mov %rsp, %rsi
    a.raw("b908000000")                               # mov $8, %ecx
    a.raw("f348a5")                                   # rep movsq (8 quadwords of the frame)
    a.code += b"\x48\xa1" + struct.pack("<Q", SI_VA + 16)   # movabs SI_VA+16, %rax (arch.cr2)
    a.raw("49894640")                                 # mov %rax, 64(%r14)
    a.code += b"\xa0" + struct.pack("<Q", SI_VA + 1)        # movabs SI_VA+1, %al (upcall_mask)
    a.raw("0fb6c0")                                   # movzbl %al, %eax
    a.raw("49894648")                                 # mov %rax, 72(%r14)
    a.raw("49896650")                                 # mov %rsp, 80(%r14)
    rip_at = 16 + (8 if errcode else 0)
    a.raw(f"48834424{rip_at:02x}{skip:02x}")          # addq $skip, rip_at(%rsp)
    a.raw("59")                                       # pop %rcx
    a.raw("415b")                                     # pop %r11
    if errcode:
        a.raw("4883c408")                             # add $8, %rsp (the error code)
    a.raw("6a00")                                     # push $0 (iret flags)
    _jmp(a, IRET_STUB)                                # jmp hypercall_page + iret
    return at


# case: (vector, error code?, instruction bytes, setup bytes, upcall mask before)
CASES = [
    ("pf_read", 14, True, "488b00", "48b8" + UNMAPPED.to_bytes(8, "little").hex(), 0),
    ("pf_write", 14, True, "488918", "48b8" + UNMAPPED.to_bytes(8, "little").hex(), 1),
    ("divide", 0, False, "f7f3", "31d2b80100000031db", 0),   # xor edx; mov $1,eax; xor ebx
    ("int80", 0x80, False, "cd80", "", 0),
    ("int3", 3, False, "cc", "", 1),
    ("int81_dpl0", 13, True, "cd81", "", 0),
    ("ud2", 6, False, "0f0b", "", 0),
]
SLOT = 16  # quadwords of results per case


def _guest() -> tuple[bytes, bytes]:
    a = Asm()
    a.raw("4889f3")                                   # mov %rsi, %rbx (start_info)
    a.raw("488b7328")                                 # mov 0x28(%rbx), %rsi (shared_info)
    a.raw("4883ce07")                                 # or $7, %rsi
    a.mov("rdi", SI_VA).mov("rdx", 2)
    a.code += hypercall(H.update_va_mapping, a.here)  # update_va_mapping(SI_VA, pte, INVLPG)
    a.store_rax(500)
    a.call(H.set_trap_table, DATA_VA).store_rax(501)
    for k, (_name, _vec, _ec, insn, setup, mask) in enumerate(CASES):
        a.mov("r14", RESULTS_VA + 8 * SLOT * k)
        a.code += b"\xc6\x04\x25" + _disp32(SI_VA + 1) + bytes([mask])  # movb $mask, mask
        a.raw(setup)
        a.raw("9c" "415c")                            # pushfq; pop %r12
        a.raw("4989e5")                               # mov %rsp, %r13
        a.mov("rcx", RCX_MARK).mov("r11", R11_MARK)   # (movabs leaves the flags alone)
        fault_at = a.here
        a.raw(insn)
        a.raw("4d896658")                             # mov %r12, 88(%r14)
        a.raw("4d896e60")                             # mov %r13, 96(%r14)
        a.mov("rax", fault_at).raw("49894668")        # mov %rax, 104(%r14)
    a.shutdown(0)
    assert len(a.code) < HANDLERS, len(a.code)
    a.code += b"\x90" * (HANDLERS - len(a.code))
    addr = {
        14: _handler(a, errcode=True, skip=3),
        0: _handler(a, errcode=False, skip=2),
        0x80: _handler(a, errcode=False, skip=0),
        3: _handler(a, errcode=False, skip=0),
        13: _handler(a, errcode=True, skip=2),
        6: _handler(a, errcode=False, skip=2),
        0x81: _handler(a, errcode=False, skip=0),   # never reached: DPL 0
    }
    # struct trap_info {vector, flags (DPL | 4: events off), cs, address}, zero-terminated
    flags = {14: 4, 0: 0, 0x80: 3, 3: 0, 13: 0, 6: 0, 0x81: 0}
    table = b"".join(struct.pack("<BBH4xQ", vec, flags[vec], 0xE033, addr[vec]) for vec in addr)
    return a.bytes(), table + bytes(16)


def _boot():
    code, table = _guest()
    return boot(code, data=table, max_instructions=5_000_000)


def test_each_exception_reaches_its_handler_with_xens_frame() -> None:
    host, d = _boot()
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    assert d.shutdown_code == 0
    assert results(host, d, 502)[500:502] == [0, 0]
    for k, (name, vector, errcode, insn, _setup, mask) in enumerate(CASES):
        raw = results(host, d, SLOT * (k + 1))[SLOT * k: SLOT * (k + 1)]
        words = [w & (2**64 - 1) for w in raw]
        rflags, rsp, fault_at = words[11], words[12], words[13]
        software = name in ("int80", "int3")   # traps: RIP after the instruction
        rip = fault_at + (len(bytes.fromhex(insn)) if software else 0)
        expected = [RCX_MARK, R11_MARK]
        if errcode:
            ec = {"pf_read": 0, "pf_write": 2, "int81_dpl0": (0x81 << 3) | 2}[name]
            expected.append(ec)
        expected += [rip, KERNEL_CS_RPL0 | (mask << 32),
                     (rflags & ~EFLAGS_IF) | (0 if mask else EFLAGS_IF), rsp, FLAT_KERNEL_SS]
        frame = words[: len(expected)]
        assert frame == expected, (name, [hex(w) for w in frame], [hex(w) for w in expected])
        # the frame sits right below the 16-byte aligned stack pointer
        assert words[10] == (rsp & ~0xF) - 8 * len(expected), name
        if vector == 14:
            assert words[8] == UNMAPPED, name       # vcpu_info.arch.cr2
        # trap_info flags bit 2 (#PF here) masks events in the handler; others keep the mask
        assert words[9] == (1 if vector == 14 else mask), name
    traps = [r.args for r in host.trace if r.dom == d.domid and r.name == "trap"]
    assert [t["vector"] for t in traps] == [14, 14, 0, 0x80, 3, 13, 6]
    host.check_invariants()


def test_a_fault_without_a_handler_crashes_only_its_domain() -> None:
    """Next to a guest whose handlers take every fault, one without a handler for its
    fault (a trap table with only #DB, or none) crashes with today's log line."""
    from elfgen import create, new_host

    code, table = _guest()
    for insn, setup, want in (
            ("488b00", "48b8" + UNMAPPED.to_bytes(8, "little").hex(), "#PF page fault"),
            ("f7f3", "31d2b80100000031db", "#DE divide error"),
            ("0f0b", "", "invalid opcode"),
            ("cd80", "", "interrupt 0x80")):
        for with_table in (True, False):
            host = new_host()
            good = create(host, code, data=table, name="handles")
            a = Asm()
            if with_table:
                a.call(H.set_trap_table, DATA_VA).store_rax(0)
            a.raw(setup).raw(insn).shutdown(0)
            only_db = struct.pack("<BBH4xQ", 1, 0, 0xE033, VIRT_BASE + 0x800) + bytes(16)
            bad = create(host, a.bytes(), data=only_db, name="crashes")
            host.run(max_instructions=5_000_000)
            assert bad.is_crashed and want in bad.crash_reason, (insn, bad.crash_reason)
            assert any(line.startswith(f"(XEN) d{bad.domid}v0 Unhandled ")
                       for line in host.log.lines)
            assert results(host, bad, 1) == [0]
            assert good.is_shut_down and not good.is_crashed, good.crash_reason
            assert good.shutdown_code == 0
            host.check_invariants()


def test_set_trap_table_refuses_non_canonical_handlers() -> None:
    a = Asm()
    a.call(H.set_trap_table, DATA_VA).store_rax(0)
    a.shutdown(0)
    table = struct.pack("<BBH4xQ", 14, 0, 0xE033, 0x0000_8000_0000_0000) + bytes(16)
    host, d = boot(a.bytes(), data=table)
    assert results(host, d, 1) == [-22]


def test_a_frame_that_cannot_be_written_crashes_the_domain() -> None:
    """create_bounce_frame on a stack that is not mapped: domain_crash (as Xen's
    exception fixup in create_bounce_frame does), nothing else touched."""
    a = Asm()
    a.call(H.set_trap_table, DATA_VA).store_rax(0)
    a.mov("rsp", UNMAPPED + 0x1000)
    a.raw("0f0b")                                     # ud2 with a bad kernel stack
    a.shutdown(0)
    table = struct.pack("<BBH4xQ", 6, 0, 0xE033, VIRT_BASE + 0x800) + bytes(16)
    host, d = boot(a.bytes(), data=table)
    assert d.is_crashed
    assert "create_bounce_frame" in d.crash_reason
    host.check_invariants()


def test_a_fault_after_a_stopping_hypercall_is_reported_as_itself() -> None:
    """unicorn never delivers exceptions, so QEMU's old_exception kept the vector of one
    the CPU dropped when a hook stopped it, and the guest's next divide error or page
    fault came out as a double fault (X86Vcpu.forget_exceptions)."""
    for insn, setup, want in (
            ("f7f3", "31d2b80100000031db", "#DE divide error [#0]"),
            ("488918", "48b8" + UNMAPPED.to_bytes(8, "little").hex(), "#PF page fault")):
        a = Asm()
        # HYPERVISOR_iret to the next instruction: a hypercall that stops the vCPU
        a.raw("4889e0" "6a2b" "50" "9c")             # mov %rsp,%rax; push ss, rsp, rflags
        a.raw("6830e00000")                          # push $0xe030 (kernel CS, RPL 0)
        a.raw("488d050f000000" "50" "6a00")          # lea 1f(%rip),%rax; push %rax; push $0
        _jmp(a, IRET_STUB)
        a.raw("90" * 15)                             # 1: (lea's target is in here)
        a.raw(setup).raw(insn).shutdown(0)
        host, d = boot(a.bytes())
        assert [r.name for r in host.trace if r.dom == d.domid
                and r.kind.value == "hypercall"] == ["iret"]
        assert d.is_crashed and want in d.crash_reason, d.crash_reason


# ---------------------------------------------------------------- user mode and syscall
KSTACK_TOP = VIRT_BASE + 0x6000      # extra bss page (pfn 5): the kernel stack
USTACK_TOP = VIRT_BASE + 0x5000      # extra bss page (pfn 4): the user stack
SYSCALL_HANDLER = 0x700
PF_HANDLER = 0x780
USER_CODE = 0x500
VGCF_in_syscall = 1 << 8


def _user_guest() -> bytes:
    from elfgen import ARG_REGS

    a = Asm()
    a.raw("4989f7")                                   # mov %rsi, %r15 (start_info)
    a.raw("4c89fb")                                   # mov %r15, %rbx
    a.raw("488b7328")                                 # mov 0x28(%rbx), %rsi (shared_info)
    a.raw("4883ce07")                                 # or $7, %rsi
    a.mov("rdi", SI_VA).mov("rdx", 2)
    a.code += hypercall(H.update_va_mapping, a.here)
    a.store_rax(60)
    # callback_register {CALLBACKTYPE_syscall, CALLBACKF_mask_events, handler} at DATA_VA
    a.call(H.callback_op, 0, DATA_VA).store_rax(61)
    a.call(H.set_trap_table, DATA_VA + 0x20).store_rax(62)       # #PF only
    a.call(H.stack_switch, 0xE02B, KSTACK_TOP).store_rax(63)
    # mmuext_op {MMUEXT_NEW_USER_BASEPTR, mfn of the L4 (pt_base)} at DATA_VA + 0x60
    a.raw("498b4758")                                 # mov 0x58(%r15), %rax (pt_base)
    a.mov("rcx", VIRT_BASE).raw("4829c8")             # sub %rcx, %rax
    a.raw("48c1e80c")                                 # shr $12, %rax (its pfn)
    a.raw("498b4f68")                                 # mov 0x68(%r15), %rcx (mfn_list)
    a.raw("488b04c1")                                 # mov (%rcx,%rax,8), %rax
    a.code += b"\x48\xa3" + struct.pack("<Q", DATA_VA + 0x68)    # movabs %rax, op.arg1
    a.call(H.mmuext_op, DATA_VA + 0x60, 1, 0, 0x7FF0).store_rax(64)
    a.mov("r14", RESULTS_VA)                          # where the handlers record
    # HYPERVISOR_iret to user mode: iret_context {rax r11 rcx flags rip cs rflags rsp ss}
    a.raw("6a2b")                                     # push $0x2b (ss: RPL 3 forced)
    a.mov("rax", USTACK_TOP).raw("50")                # push user rsp
    a.raw("6802020000")                               # push $0x202 (rflags)
    a.raw("6833e00000")                               # push $0xe033 (user CS, RPL 3)
    a.mov("rax", VIRT_BASE + USER_CODE).raw("50")     # push user rip
    a.raw("6a00")                                     # push $0 (flags)
    _jmp(a, IRET_STUB)
    assert len(a.code) < USER_CODE, len(a.code)
    a.code += b"\x90" * (USER_CODE - len(a.code))
    # ---- user mode
    a.raw("4989e4")                                   # mov %rsp, %r12 (user rsp)
    a.mov("rax", 0x42)
    a.raw("0f05")                                     # syscall
    user_ret = a.here
    a.code += b"\x48\xa3" + struct.pack("<Q", RESULTS_VA + 8 * 40)   # movabs %rax, [20]
    a.raw("4889c8").code += b"\x48\xa3" + struct.pack("<Q", RESULTS_VA + 8 * 41)  # rcx
    a.raw("4c89d8").code += b"\x48\xa3" + struct.pack("<Q", RESULTS_VA + 8 * 42)  # r11
    a.mov("rax", user_ret).code += b"\x48\xa3" + struct.pack("<Q", RESULTS_VA + 8 * 43)
    a.code += hypercall(H.xen_version, a.here)        # a "hypercall" from user mode
    a.code += b"\x48\xa3" + struct.pack("<Q", RESULTS_VA + 8 * 44)
    a.mov("rcx", RCX_MARK).mov("r11", R11_MARK)
    a.mov("rax", UNMAPPED)
    pf_at = a.here
    a.raw("488b00")                                   # a page fault in user mode
    a.spin()
    assert len(a.code) < SYSCALL_HANDLER
    a.code += b"\x90" * (SYSCALL_HANDLER - len(a.code))
    # ---- the kernel's syscall callback: record the frame, return with iret(in_syscall)
    a.raw("4989c5")                                   # mov %rax, %r13 (the call's number)
    a.raw("4c89f7" "4889e6" "b907000000" "f348a5")    # copy 7 quadwords to [r14]
    a.code += b"\xa0" + struct.pack("<Q", SI_VA + 1)  # movabs SI_VA+1, %al (upcall_mask)
    a.raw("0fb6c0" "49894640")                        # movzbl; mov %rax, 64(%r14)
    a.raw("49896648")                                 # mov %rsp, 72(%r14)
    a.raw("4d896e50")                                 # mov %r13, 80(%r14)
    a.raw("4d896658")                                 # mov %r12, 88(%r14) (user rsp)
    a.raw("4983c660")                                 # add $96, %r14 (the next record)
    a.raw("59" "415b")                                # pop %rcx; pop %r11
    a.raw("6800010000")                               # push $VGCF_in_syscall
    a.mov("rax", 0x5678)
    _jmp(a, IRET_STUB)
    assert len(a.code) < PF_HANDLER
    a.code += b"\x90" * (PF_HANDLER - len(a.code))
    # ---- the #PF handler: record the frame and CR2, then shut down
    a.mov("r14", RESULTS_VA + 8 * 70)
    a.raw("4c89f7" "4889e6" "b908000000" "f348a5")    # copy 8 quadwords to [r14] (70..77)
    a.code += b"\x48\xa1" + struct.pack("<Q", SI_VA + 16)
    a.raw("49894640")                                 # cr2 -> 64(%r14)
    a.raw("49896648")                                 # mov %rsp, 72(%r14)
    a.mov("rax", pf_at).raw("49894650")
    a.shutdown(0)
    assert ARG_REGS
    return a.bytes()


def _user_data() -> bytes:
    page = bytearray(4096)
    page[0:16] = struct.pack("<HH4xQ", 2, 1, VIRT_BASE + SYSCALL_HANDLER)  # syscall, masked
    page[0x20:0x40] = struct.pack("<BBH4xQ", 14, 0, 0xE033, VIRT_BASE + PF_HANDLER)
    page[0x60:0x78] = struct.pack("<I4xQQ", 15, 0, 0)                      # NEW_USER_BASEPTR
    return bytes(page)


def test_syscall_from_user_mode_enters_the_kernel_and_iret_returns() -> None:
    host, d = boot(_user_guest(), data=_user_data(), bss=2 * 4096,
                   max_instructions=5_000_000)
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    r = [w & (2**64 - 1) for w in results(host, d, 81)]
    assert r[60:65] == [0, 0, 0, 0, 0]
    user_ret = r[43]
    ustack = USTACK_TOP
    frame_at = (KSTACK_TOP & ~0xF) - 7 * 8
    # the first syscall: Xen's frame on the kernel stack from stack_switch
    rflags = r[4]                       # the frame's RFLAGS: IF from !upcall_mask (0)
    assert r[0:7] == [user_ret, rflags, user_ret, 0xE033, rflags, ustack, 0xE02B]
    assert rflags & (1 << 9)
    assert r[8] == 1                    # CALLBACKF_mask_events: events masked in the handler
    assert r[9] == frame_at and r[10] == 0x42 and r[11] == ustack
    # back in user mode with sysret's registers: RAX from the frame, RCX = RIP, R11 = RFLAGS
    assert r[40] == 0x5678 and r[41] == user_ret and r[42] & ~(1 << 16) == rflags
    # the hypercall page from user mode is just a syscall: the kernel saw number 17
    assert r[12 + 10] == 17 and r[44] == 0x5678
    # a page fault in user mode: the kernel stack, CS RPL 3, error code with U set
    pf = r[70:81]
    assert pf[0:8] == [RCX_MARK, R11_MARK, 4, pf[10], 0xE033, pf[5], ustack, 0xE02B]
    assert pf[8] == UNMAPPED
    assert pf[9] == (KSTACK_TOP & ~0xF) - 8 * 8
    hcs = [x.name for x in host.trace if x.dom == d.domid and x.kind.value == "hypercall"]
    assert "xen_version" not in hcs     # never a hypercall from user mode
    assert [x.name for x in host.trace if x.dom == d.domid and x.name == "syscall"] == [
        "syscall", "syscall"]
    host.check_invariants()


def test_iret_to_user_mode_without_user_page_tables_crashes() -> None:
    a = Asm()
    a.raw("6a2b").mov("rax", USTACK_TOP).raw("50")
    a.raw("6802020000" "6833e00000").mov("rax", VIRT_BASE + 0x800).raw("50" "6a00")
    _jmp(a, IRET_STUB)
    _host, d = boot(a.bytes(), bss=2 * 4096)
    assert d.is_crashed and "no user page tables" in d.crash_reason
