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
 * To know the time and to acknowledge the timer event it maps the
 * shared_info page, as Mini-OS does: update_va_mapping() points one of its
 * own pages (the page-aligned `shared_info` buffer) at the machine frame
 * start_info->shared_info names.  There it reads vcpu_info[0].time.system_time
 * and clears the event's pending bits after waking up.
 * Every printed number depends only on the computation and on virtual time,
 * so runs are reproducible.
 */
        .include "xenlab-guest.inc"

        XEN_ELF_NOTES "xenlab-pv-spin"

        .set    ROUNDS, 5
        .set    ITERATIONS, 2000000     /* per round */
        .set    SLEEP_NS, 1000000       /* 1 ms of Xen system time */

        /* Offsets in shared_info (xen/include/public/xen.h, x86-64) */
        .set    VCPU0_UPCALL_PENDING, 0                 /* vcpu_info[0].evtchn_upcall_pending */
        .set    VCPU0_PENDING_SEL, 8                    /* vcpu_info[0].evtchn_pending_sel */
        .set    VCPU0_SYSTEM_TIME, vcpu_info_time + vcpu_time_info_system_time
        .set    EVTCHN_PENDING, shared_info_evtchn_pending
        .set    UVMF_INVLPG, 2                          /* flush this VA from the TLB */
        .set    PTE_P_RW_US, 7                          /* present, writable, user */

        .section .text.head, "ax"
        .globl  _start
_start:
        lea     boot_stack_top(%rip), %rsp
        CONSOLE_INIT                            /* print to the PV console ring */

        /* Map shared_info over our own page `shared_info`:
         * update_va_mapping(va, machine address | P|RW|US, UVMF_INVLPG) */
        lea     shared_info(%rip), %rdi
        mov     start_info_shared_info(%rsi), %rsi
        or      $PTE_P_RW_US, %rsi
        mov     $UVMF_INVLPG, %edx
        HYPERCALL __HYPERVISOR_update_va_mapping
        test    %rax, %rax
        js      map_failed

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

        /* --- 3. sleep 1 ms: now = shared_info.vcpu_info[0].time.system_time */
        call    get_time
        lea     SLEEP_NS(%rax), %rdi            /* absolute deadline, ns */
        HYPERCALL __HYPERVISOR_set_timer_op
3:      mov     $SCHEDOP_block, %edi            /* sleep until an event is pending */
        xor     %esi, %esi
        HYPERCALL __HYPERVISOR_sched_op
        /* Woken by *an* event: the console's (xenconsoled says it drained our
         * output) or our timer's.  Forget the upcall flag and check our port;
         * not ours yet: block again (the console's bit stays pending, so it
         * cannot wake us a second time). */
        movb    $0, shared_info + VCPU0_UPCALL_PENDING(%rip)
        mov     bind_virq + evtchn_bind_virq_port(%rip), %eax
        bt      %rax, shared_info + EVTCHN_PENDING(%rip)
        jnc     3b
        call    ack_timer
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

        .globl  map_failed
map_failed:
        PRINT   "pv-spin: update_va_mapping(shared_info) failed: "
        PRINT_SDEC %rax
        PRINTLN
        SHUTDOWN SHUTDOWN_crash

/* get_time: RAX = Xen system time in ns, as Xen last published it in
 * shared_info->vcpu_info[0].time (the version field is odd while Xen is
 * writing: read again until it is even and unchanged). */
        .globl  get_time
get_time:
        push    %rcx
1:      mov     shared_info + VCPU0_TIME_VERSION(%rip), %ecx
        test    $1, %ecx
        jnz     1b
        mov     shared_info + VCPU0_SYSTEM_TIME(%rip), %rax
        cmp     shared_info + VCPU0_TIME_VERSION(%rip), %ecx
        jne     1b
        pop     %rcx
        ret

/* ack_timer: acknowledge the timer event, like an event-channel upcall
 * handler does: clear vcpu_info[0].evtchn_upcall_pending, the selector bit
 * and the port's bit in shared_info->evtchn_pending[].  Otherwise the next
 * SCHEDOP_block would return at once (an event is still pending). */
        .globl  ack_timer
ack_timer:
        movb    $0, shared_info + VCPU0_UPCALL_PENDING(%rip)
        mov     bind_virq + evtchn_bind_virq_port(%rip), %eax
        mov     %eax, %ecx
        shr     $6, %ecx                                /* word = port / 64 */
        lock btr %rcx, shared_info + VCPU0_PENDING_SEL(%rip)
        lock btr %rax, shared_info + EVTCHN_PENDING(%rip)
        ret

        .set    VCPU0_TIME_VERSION, vcpu_info_time + vcpu_time_info_version

        .bss
        .balign 4096
        .globl  shared_info
shared_info:    .skip 4096                      /* remapped onto Xen's shared_info page */
        .balign 8
        .globl  bind_virq
bind_virq:      .skip evtchn_bind_virq_SIZE     /* struct evtchn_bind_virq */
