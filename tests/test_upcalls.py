"""Event upcalls: set_callbacks, the bounce frame into the guest's handler, HYPERVISOR_iret.

The guest (real machine code, built with tests/elfgen.py) maps shared_info,
registers an event callback, binds VIRQ_TIMER, arms a timer, unmasks events
and spins. Xen bounces it into the handler, which records that it ran,
acknowledges the event and returns to the spinning loop with
HYPERVISOR_iret; the loop sees the flag and shuts down.
"""

from __future__ import annotations

import struct

from elfgen import RESULTS_VA, VIRT_BASE, Asm, boot, hypercall, results

from xenlab.public.event_channel import EvtchnOp
from xenlab.public.xen import Hypercall as H

SI_VA = VIRT_BASE + 0x200000       # an ordinary page of the guest, remapped to shared_info
DATA_VA = VIRT_BASE + 0x2000       # struct evtchn_bind_virq {virq, vcpu, port}


def _disp32(va: int) -> bytes:
    return struct.pack("<i", va - (1 << 64) if va >= 1 << 63 else va)


def _guest(handler_offset: int = 0x400) -> bytes:
    a = Asm()
    a.raw("4889f3")                                          # mov %rsi, %rbx (start_info)
    a.raw("488b7328")                                        # mov 0x28(%rbx), %rsi
    a.raw("4883ce07")                                        # or $7, %rsi (P|RW|US)
    a.mov("rdi", SI_VA).mov("rdx", 2)                        # UVMF_INVLPG
    a.code += hypercall(H.update_va_mapping, a.here)         # update_va_mapping(SI_VA, pte)
    a.store_rax(0)
    a.call(H.set_callbacks, VIRT_BASE + handler_offset, 0, 0).store_rax(1)
    a.call(H.event_channel_op, EvtchnOp.EVTCHNOP_bind_virq, DATA_VA).store_rax(2)
    a.call(H.set_timer_op, 1000).store_rax(3)                # already due
    a.code += b"\xc6\x04\x25" + _disp32(SI_VA + 1) + b"\x00"  # movb $0, upcall_mask
    loop = a.here
    a.code += b"\x48\x83\x3c\x25" + _disp32(RESULTS_VA + 8 * 5) + b"\x01"  # cmpq $1, flag
    a.raw("75" + f"{(loop - (a.here + 2)) & 0xFF:02x}")      # jne loop
    a.shutdown(0)
    assert len(a.code) < handler_offset
    a.code += b"\x90" * (handler_offset - len(a.code))
    # the event handler: flag = 1, ack the upcall, return with HYPERVISOR_iret
    a.mov("rax", 1).store_rax(5)
    a.code += b"\xc6\x04\x25" + _disp32(SI_VA) + b"\x00"      # movb $0, upcall_pending
    a.raw("59")                                              # pop %rcx
    a.raw("415b")                                            # pop %r11
    a.raw("6a00")                                            # push $0 (flags)
    target = VIRT_BASE + 0x1000 + 32 * H.iret
    a.code += b"\xe9" + struct.pack("<i", target - (a.here + 5))  # jmp hypercall_iret
    return a.bytes()


def test_event_upcall_and_iret() -> None:
    host, d = boot(_guest(), max_instructions=5_000_000)
    assert results(host, d, 6)[:4] == [0, 0, 0, 0]
    assert results(host, d, 6)[5] == 1               # the handler ran
    names = [(r.kind.value, r.name) for r in host.trace if r.dom == d.domid]
    assert ("event", "upcall") in names
    assert ("hypercall", "iret") in names
    assert d.is_shut_down and d.shutdown_code == 0   # the loop resumed and saw the flag
    upcall = next(r for r in host.trace if r.name == "upcall")
    assert upcall.args["handler"] == hex(VIRT_BASE + 0x400)
    host.check_invariants()


def test_callbacks_refuse_bad_addresses() -> None:
    a = Asm()
    a.call(H.set_callbacks, 0x0000_8000_0000_0000, 0, 0).store_rax(0)  # non-canonical
    a.call(H.set_callbacks, 0xFFFF_8000_0000_1000, 0, 0).store_rax(1)  # inside Xen
    a.shutdown(0)
    host, d = boot(a.bytes())
    assert results(host, d, 2) == [-22, -22]
