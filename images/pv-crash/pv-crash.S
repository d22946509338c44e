/* pv-crash: a PV guest that tries to act like a ring-0 kernel, and dies.
 *
 * Build (from the repository root):   make -C images
 *   which runs, inside images/:  as --64 -I include -o obj/pv-crash.o pv-crash/pv-crash.S
 *        ld -T include/pv-kernel.lds --build-id=none --discard-all -o pv-crash/pv-crash.elf obj/pv-crash.o
 *
 * What it shows: a 64-bit PV kernel runs in ring 3.  A privileged
 * instruction such as `hlt` raises #GP; with no trap table registered
 * (HYPERVISOR_set_trap_table) Xen cannot bounce the fault to the guest, so
 * it crashes the domain.  The config says on_crash = "preserve", so the dead
 * domain stays around to be inspected.  A PV kernel that wants to idle must
 * ask Xen instead: sched_op(SCHEDOP_block) -- see pv-spin.
 */
        .include "xenlab-guest.inc"

        XEN_ELF_NOTES "xenlab-pv-crash"

        .section .text.head, "ax"
        .globl  _start
_start:
        lea     boot_stack_top(%rip), %rsp
        CONSOLE_INIT                            /* print to the PV console ring */

        PRINTLN "pv-crash: a PV kernel runs in ring 3, not ring 0."
        PRINTLN "pv-crash: executing hlt, a privileged instruction; a PV guest must ask Xen instead (SCHEDOP_block)"

        .globl  crash_here
crash_here:
        hlt                             /* #GP in ring 3 -> Xen crashes the domain */

        PRINTLN "pv-crash: still alive?!"       /* never printed */
        SHUTDOWN SHUTDOWN_poweroff
