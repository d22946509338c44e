/* pv-spin: a PV guest that gives the scheduler something to do.
 *
 * Build (from the repository root):   make -C images
 *   which runs, inside images/:  as --64 -I include -o obj/pv-spin.o pv-spin/pv-spin.S
 *        ld -T include/pv-kernel.lds --build-id=none --discard-all -o pv-spin/pv-spin.elf obj/pv-spin.o
 *
 * What it shows: the three ways a vCPU leaves the CPU.
 *   1. it computes until its time slice runs out (preempted: "runnable");
 *   2. it gives the CPU away voluntarily: sched_op(SCHEDOP_yield);
 *   3. it sleeps until an event: set_timer_op(deadline) arms VIRQ_TIMER,
 *      sched_op(SCHEDOP_block) sleeps ("blocked") until that event channel
 *      is pending.  This is what a PV kernel does instead of `hlt`.
 * Every printed number depends only on the computation and on virtual time,
 * so runs are reproducible.
 */
        .include "xenlab-guest.inc"

        XEN_ELF_NOTES "xenlab-pv-spin"

        .set    ROUNDS, 5
        .set    ITERATIONS, 2000000     /* per round */
        .set    SLEEP_NS, 1000000       /* 1 ms of Xen system time */

        /* struct vcpu_runstate_info (xen/include/public/vcpu.h) */
        .set    runstate_state, 0               /* int32_t: RUNSTATE_running, ... */
        .set    runstate_state_entry_time, 8    /* uint64_t: ns, when it entered state */
        .set    runstate_time, 16               /* uint64_t[4]: ns spent in each state */
        .set    runstate_SIZE, 48

        .section .text.head, "ax"
        .globl  _start
_start:
        lea     boot_stack_top(%rip), %rsp

        /* event_channel_op(EVTCHNOP_bind_virq, &{virq, vcpu, port OUT}) */
        movl    $VIRQ_TIMER, bind_virq + evtchn_bind_virq_virq(%rip)
        movl    $0, bind_virq + evtchn_bind_virq_vcpu(%rip)
        mov     $EVTCHNOP_bind_virq, %edi
        lea     bind_virq(%rip), %rsi
        HYPERCALL __HYPERVISOR_event_channel_op
        test    %rax, %rax
        js      bind_failed
        PRINT   "pv-spin: VIRQ_TIMER bound to event channel port "
        mov     bind_virq + evtchn_bind_virq_port(%rip), %eax
        PRINT_UDEC %rax
        PRINTLN

        mov     $1, %r12d                       /* R12 = round number */
        movabs  $0x0123456789abcdef, %r13       /* R13 = LCG state, carried over */

        .globl  round
round:
        /* --- 1. compute: ITERATIONS steps of a 64-bit LCG (Knuth's MMIX
         *        constants), summing the high halves.  Pure integer work. */
        movabs  $6364136223846793005, %r14      /* multiplier */
        movabs  $1442695040888963407, %r15      /* increment  */
        xor     %ebx, %ebx                      /* RBX = sum */
        mov     $ITERATIONS, %ecx
1:      imul    %r14, %r13                      /* x = x * a + c  (mod 2^64) */
        add     %r15, %r13
        mov     %r13, %rax
        shr     $32, %rax
        add     %rax, %rbx                      /* sum += x >> 32 */
        dec     %ecx
        jnz     1b

        PRINT   "pv-spin: round "
        PRINT_UDEC %r12
        PRINT   " sum="
        PRINT_HEX %rbx
        PRINTLN

        /* --- 2. yield: "let someone else run, I am still runnable" */
        mov     $SCHEDOP_yield, %edi
        xor     %esi, %esi
        HYPERCALL __HYPERVISOR_sched_op

        /* --- 3. sleep 1 ms: now = runstate.state_entry_time (we became
         *        "running" when this very hypercall entered Xen) */
        call    get_time
        lea     SLEEP_NS(%rax), %rdi            /* absolute deadline, ns */
        HYPERCALL __HYPERVISOR_set_timer_op
        mov     $SCHEDOP_block, %edi            /* sleep until an event is pending */
        xor     %esi, %esi
        HYPERCALL __HYPERVISOR_sched_op
        call    get_time
        PRINT   "pv-spin: woke at "
        PRINT_UDEC %rax
        PRINTLN " ns"

        inc     %r12d
        cmp     $ROUNDS, %r12d
        jbe     round

        PRINTLN "pv-spin: done, powering off."
        SHUTDOWN SHUTDOWN_poweroff

        .globl  bind_failed
bind_failed:
        PRINT   "pv-spin: EVTCHNOP_bind_virq failed: "
        PRINT_SDEC %rax
        PRINTLN
        SHUTDOWN SHUTDOWN_crash

/* get_time: RAX = current Xen system time in ns, via
 * vcpu_op(VCPUOP_get_runstate_info, vcpu 0, &runstate).  Clobbers the
 * hypercall argument registers. */
        .globl  get_time
get_time:
        mov     $VCPUOP_get_runstate_info, %edi
        xor     %esi, %esi                      /* vcpu 0 */
        lea     runstate(%rip), %rdx
        HYPERCALL __HYPERVISOR_vcpu_op
        mov     runstate + runstate_state_entry_time(%rip), %rax
        ret

        .bss
        .balign 8
        .globl  bind_virq
bind_virq:      .skip evtchn_bind_virq_SIZE     /* struct evtchn_bind_virq */
        .balign 8
        .globl  runstate
runstate:       .skip runstate_SIZE             /* struct vcpu_runstate_info */
