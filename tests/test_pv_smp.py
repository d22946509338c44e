"""A PV kernel brings up its second vCPU itself: VCPUOP_initialise, then VCPUOP_up.

vCPU 0 of a tiny PV kernel (tests/elfgen.py, its code assembled with GNU as) hands Xen a
``vcpu_guest_context`` for vCPU 1, as Linux's cpu_initialize_context does, and the test
checks what Xen answers at each step (xen/common/domain.c default_initialise_vcpu,
xen/arch/x86/domain.c arch_set_info_guest) and that vCPU 1 then runs with exactly the
registers, stack, GS base and virtual IDT the context gave it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from elfgen import CODE_VA, DATA_VA, RESULTS_VA, VIRT_BASE, create, new_host, results

from xenlab.labkit import assemble, have_binutils
from xenlab.public.errno import Errno
from xenlab.public.vcpu import VcpuGuestContext, VcpuOp, VGCF_in_kernel
from xenlab.public.xen import Hypercall
from xenlab.xen.page_alloc import PAGE_SIZE

pytestmark = pytest.mark.skipif(not have_binutils(), reason="needs GNU as (binutils)")

HYPERCALL_PAGE = VIRT_BASE + 0x1000
CTX_VA = RESULTS_VA + PAGE_SIZE            # bss pages 1-2: the good context
BAD_VA = RESULTS_VA + 3 * PAGE_SIZE        # bss pages 3-4: a context with a bad cr3
STACK_TOP = RESULTS_VA + 6 * PAGE_SIZE     # bss page 5: vCPU 1's stack
GS_VALUE = 0xC0FFEE_1234

GUEST = f"""
        .set    HP, {HYPERCALL_PAGE:#x}
        .macro  HC nr
        mov     $HP + \\nr * 32, %rax
        call    *%rax
        .endm
        .macro  VCPU_OP cmd, arg, slot
        mov     $\\cmd, %rdi
        mov     $1, %rsi
        mov     $\\arg, %rdx
        HC      {int(Hypercall.vcpu_op)}
        mov     %rax, {RESULTS_VA:#x} + 8 * \\slot
        .endm
        VCPU_OP {int(VcpuOp.VCPUOP_up)}, 0, 0                  # not initialised yet
        VCPU_OP {int(VcpuOp.VCPUOP_initialise)}, {BAD_VA:#x}, 1
        VCPU_OP {int(VcpuOp.VCPUOP_initialise)}, {CTX_VA:#x}, 2
        VCPU_OP {int(VcpuOp.VCPUOP_initialise)}, {CTX_VA:#x}, 3  # once only
        VCPU_OP {int(VcpuOp.VCPUOP_is_up)}, 0, 4
        VCPU_OP {int(VcpuOp.VCPUOP_up)}, 0, 5
1:      mov     {RESULTS_VA + 8 * 10:#x}, %rax                   # wait for vCPU 1
        test    %rax, %rax
        jnz     2f
        mov     $0, %rdi                                          # SCHEDOP_yield
        xor     %esi, %esi
        HC      {int(Hypercall.sched_op)}
        jmp     1b
2:      VCPU_OP {int(VcpuOp.VCPUOP_is_up)}, 0, 6
        push    $0                                                # SCHEDOP_shutdown
        mov     %rsp, %rsi
        mov     $2, %rdi
        HC      {int(Hypercall.sched_op)}
        .org    0x400                          # vcpu1: CODE_VA + 0x400
vcpu1:  mov     %gs:0, %rax                   # the GS base the context gave it
        mov     %rax, {RESULTS_VA + 8 * 10:#x}
        mov     %rsp, {RESULTS_VA + 8 * 11:#x}
        mov     %rdi, {RESULTS_VA + 8 * 12:#x}
        mov     %rbx, {RESULTS_VA + 8 * 13:#x}
        ud2                                   # its own trap table's #UD handler
3:      jmp     3b
        .org    0x480                          # ud: CODE_VA + 0x480
ud:     movq    $0x6d6d, {RESULTS_VA + 8 * 14:#x}
4:      mov     $1, %rdi                       # SCHEDOP_block, for good
        xor     %esi, %esi
        HC      {int(Hypercall.sched_op)}
        jmp     4b
"""


def _put(host, d, va: int, data: bytes) -> None:
    while data:
        pfn, off = divmod(va - VIRT_BASE, PAGE_SIZE)
        n = min(len(data), PAGE_SIZE - off)
        host.mem.write(d.maddr(pfn) + off, data[:n])
        data, va = data[n:], va + n


def test_a_pv_kernel_brings_up_its_second_vcpu() -> None:
    code = assemble(GUEST, bits=64, org=CODE_VA)
    vcpu1, ud = CODE_VA + 0x400, CODE_VA + 0x480                     # the .org lines
    host = new_host()
    d = create(host, code, bss=6 * PAGE_SIZE, vcpus=2, unpause=False)
    cr3 = d.vcpus[0].cpu.reg("cr3")

    c = VcpuGuestContext()
    c.flags = VGCF_in_kernel
    c.user_regs.rip, c.user_regs.rsp = vcpu1, STACK_TOP - 64
    c.user_regs.rdi, c.user_regs.rbx = 0x1234, 0x5678
    c.ctrlreg[3] = cr3
    c.kernel_ss, c.kernel_sp = 0xE02B, STACK_TOP
    c.gs_base_kernel = DATA_VA + 0x800
    c.event_callback_eip = c.failsafe_callback_eip = ud
    c.trap_ctxt[0].vector, c.trap_ctxt[0].cs, c.trap_ctxt[0].address = 6, 0xE033, ud
    _put(host, d, CTX_VA, bytes(c))
    bad = VcpuGuestContext.from_buffer_copy(bytes(c))
    bad.ctrlreg[3] = d.maddr((DATA_VA - VIRT_BASE) >> 12)           # a data page, no L4
    _put(host, d, BAD_VA, bytes(bad))
    _put(host, d, DATA_VA + 0x800, GS_VALUE.to_bytes(8, "little"))

    host.domain_unpause(d)
    host.run(max_instructions=5_000_000)
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    got = results(host, d, 15)
    assert got[0] == -Errno.EINVAL          # VCPUOP_up before VCPUOP_initialise
    assert got[1] == -Errno.EINVAL          # ctrlreg[3] is not an L4 of the domain
    assert got[2] == 0
    assert got[3] == -Errno.EEXIST          # a vCPU is initialised once
    assert got[4] == 0                      # ... and stays down until VCPUOP_up
    assert got[5] == 0
    assert got[6] == 1                      # up, and running
    assert got[10] == GS_VALUE              # %gs:0 through gs_base_kernel
    assert got[11] & (1 << 64) - 1 == STACK_TOP - 64  # its rsp (results are signed)
    assert (got[12], got[13]) == (0x1234, 0x5678)  # the context's registers
    assert got[14] == 0x6D6D                # ud2 went to the context's trap_ctxt[6]
    refused = [r for r in host.trace.select(dom=d.domid)
               if r.name == "vcpu_op" and r.args.get("cmd") == "VCPUOP_initialise"]
    assert "not an L4 table of the domain" in refused[0].args["refused"]
    assert d.vcpus[1].vcpu_id == 1 and d.vcpus[1].cpu_time > 0
    host.check_invariants()


CACHE = Path(os.environ.get("XENLAB_REAL_GUESTS") or "~/.cache/xenlab/real-guests").expanduser()


@pytest.mark.slow
@pytest.mark.skipif(not (CACHE / "linux-pv.cfg").is_file(),
                    reason=f"no real guests in {CACHE}: run `make real-guests`")
def test_debians_linux_brings_up_two_vcpus(tmp_path: Path) -> None:
    """vcpus = 2: Linux's cpu_initialize_context and VCPUOP_up, then both CPUs online."""
    from xenlab.lab import Lab

    cfg = (CACHE / "linux-pv.cfg").read_text().replace('name = "linux-pv"',
                                                        'name = "linux-smp"\nvcpus = 2')
    (tmp_path / "linux-smp.cfg").write_text(cfg)
    lab = Lab()
    lab.xl(f"create {tmp_path / 'linux-smp.cfg'}")
    d = lab.domain("linux-smp")
    lab.host.run(max_instructions=6_000_000_000, max_time_ns=30 * 10**9,
                 until=lambda: b"/ # " in d.console[-64:] or d.is_crashed)
    text = lab.console("linux-smp")
    assert "smp: Brought up 1 node, 2 CPUs" in text, text[-2000:]
    start = len(d.console)
    lab.console_input("linux-smp", "cat /sys/devices/system/cpu/online\n")
    lab.host.run(max_instructions=800_000_000, max_time_ns=5 * 10**9,
                 until=lambda: b"/ # " in d.console[start + 30:])
    assert "\n0-1" in lab.console("linux-smp")[start:]
    assert all(v.online and v.cpu_time > 0 for v in d.vcpus)
    assert ctypes.sizeof(VcpuGuestContext) == 5168


RUNSTATE_GUEST = f"""
        .set    HP, {HYPERCALL_PAGE:#x}
        .macro  HC nr
        mov     $HP + \\nr * 32, %rax
        call    *%rax
        .endm
        movq    ${RESULTS_VA + 0x100:#x}, {DATA_VA:#x}        # the area's address
        mov     ${int(VcpuOp.VCPUOP_register_runstate_memory_area)}, %rdi
        xor     %esi, %esi                                      # vCPU 0
        mov     ${DATA_VA:#x}, %rdx
        HC      {int(Hypercall.vcpu_op)}
        mov     %rax, {RESULTS_VA:#x}
        mov     {RESULTS_VA + 0x100 + 16 + 8 * 2:#x}, %rax       # time[blocked] before
        mov     %rax, {RESULTS_VA + 8:#x}
        movq    $3000000, {DATA_VA + 0x20:#x}                   # sched_poll.timeout: 3 ms
        mov     $3, %rdi                                        # SCHEDOP_poll, no ports
        mov     ${DATA_VA + 0x10:#x}, %rsi
        HC      {int(Hypercall.sched_op)}
        mov     {RESULTS_VA + 0x100:#x}, %eax                   # state, seen running again
        mov     %rax, {RESULTS_VA + 16:#x}
        mov     {RESULTS_VA + 0x100 + 16 + 8 * 2:#x}, %rax       # time[blocked] after
        mov     %rax, {RESULTS_VA + 24:#x}
        push    $0
        mov     %rsp, %rsi
        mov     $2, %rdi
        HC      {int(Hypercall.sched_op)}
"""


def test_the_runstate_area_is_kept_current_on_every_context_switch() -> None:
    """Xen writes vcpu_runstate_info into the registered area whenever the vCPU is
    switched (update_runstate_area): after SCHEDOP_poll until 3 ms, the kernel reads
    its own blocked time there, and that it is running again."""
    code = assemble(RUNSTATE_GUEST, bits=64, org=CODE_VA)
    host = new_host()
    d = create(host, code, unpause=True)
    host.run(max_instructions=2_000_000)
    assert d.is_shut_down and not d.is_crashed, d.crash_reason
    rc, blocked_before, state, blocked_after = results(host, d, 4)
    assert rc == 0 and blocked_before == 0
    assert state == 0                                   # RUNSTATE_running
    assert 2_900_000 < blocked_after <= 3_000_000       # ns blocked, by Xen's clock
