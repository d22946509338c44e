/* pv-bench: a PV guest that measures how fast xenlab runs guest code.
 *
 * Build (from the repository root):   make -C images
 *   which runs, inside images/:  as --64 -I include -o obj/pv-bench.o pv-bench/pv-bench.S
 *        ld -T include/pv-kernel.lds --build-id=none --discard-all -o pv-bench/pv-bench.elf obj/pv-bench.o
 *
 * The workload comes from the kernel command line (start_info.cmd_line):
 *
 *     cmdline = "loop=50000000 hypercalls=200000"
 *
 * (two decimal numbers; a missing key counts as 0).  `python -m xenlab.bench`
 * (make bench, see BENCHMARKS.md) boots it and times each phase.
 *
 *   phase 1: a compute loop of exactly `loop` iterations of FOUR instructions
 *            (add, imul, dec, jnz: see bench_loop_start), then
 *                pv-bench: loop done sum=0x...
 *            The loop code lies between the global symbols bench_loop_start
 *            and bench_loop_end, so the bench can run the very same bytes in a
 *            bare unicorn engine (RCX = iterations, RAX = 0 on entry; the
 *            sum is RAX on exit, identical in both).
 *   phase 2: `hypercalls` round trips of the cheapest hypercall,
 *            xen_version(XENVER_version, NULL), through hypercall_page, then
 *                pv-bench: hypercalls done
 *   then it powers off: sched_op(SCHEDOP_shutdown, SHUTDOWN_poweroff).
 */
        .include "xenlab-guest.inc"

        XEN_ELF_NOTES "xenlab-pv-bench"

        .set    LOOP_INSNS, 4           /* instructions per loop iteration */

        .section .text.head, "ax"
        .globl  _start
_start:
        lea     boot_stack_top(%rip), %rsp      /* our own stack, in .bss */
        mov     %rsi, %rbx                      /* RBX = start_info, kept all along */

        lea     key_loop(%rip), %rdi
        call    parse_arg
        mov     %rax, %r12                      /* R12 = loop iterations */
        lea     key_hypercalls(%rip), %rdi
        call    parse_arg
        mov     %rax, %r13                      /* R13 = hypercall round trips */

        PRINT   "pv-bench: loop="
        PRINT_UDEC %r12
        PRINT   " hypercalls="
        PRINT_UDEC %r13
        PRINTLN

        /* ---- phase 1: compute.  RCX counts down, RAX is the running sum.
         * Guard: with RCX = 0 the loop would run 2^64 times. */
        mov     %r12, %rcx
        xor     %eax, %eax
        test    %rcx, %rcx
        jz      bench_loop_end

        .globl  bench_loop_start
bench_loop_start:                               /* 4 instructions, 12 bytes: */
        add     %rcx, %rax                      /* 1  sum += i              */
        imul    $31, %rax, %rax                 /* 2  sum *= 31  (mod 2^64) */
        dec     %rcx                            /* 3                        */
        jnz     bench_loop_start                /* 4                        */
        .globl  bench_loop_end
bench_loop_end:

        PRINT   "pv-bench: loop done sum="
        PRINT_HEX %rax
        PRINTLN

        /* ---- phase 2: hypercall round trips.  R12 survives HYPERCALL. */
        mov     %r13, %r12
        test    %r12, %r12
        jz      hypercalls_done
        .globl  bench_hypercall_loop
bench_hypercall_loop:
        mov     $XENVER_version, %edi           /* arg 1: cmd           */
        xor     %esi, %esi                      /* arg 2: NULL (unused) */
        HYPERCALL __HYPERVISOR_xen_version      /* RAX = major << 16 | minor */
        dec     %r12
        jnz     bench_hypercall_loop
        .globl  hypercalls_done
hypercalls_done:
        PRINTLN "pv-bench: hypercalls done"

        SHUTDOWN SHUTDOWN_poweroff

/* parse_arg: RDI = a key such as "loop=" (NUL-terminated).  Look for it at the
 * start of a space-separated word of start_info.cmd_line (RBX = start_info)
 * and return in RAX the decimal number that follows it (digits up to the
 * first non-digit); RAX = 0 when the key is absent.  Clobbers RCX, RSI. */
        .globl  parse_arg
parse_arg:
        lea     start_info_cmd_line(%rbx), %rsi /* RSI = start of the current word */
.Lword:
        xor     %ecx, %ecx                      /* RCX = bytes of the key matched */
.Lcompare:
        movzbl  (%rdi,%rcx), %eax
        test    %al, %al
        jz      .Lmatched                       /* the whole key matched */
        cmp     (%rsi,%rcx), %al
        jne     .Lnext_word
        inc     %rcx
        jmp     .Lcompare
.Lnext_word:                                    /* skip past the next space */
        movzbl  (%rsi), %eax
        test    %al, %al
        jz      .Labsent                        /* end of the command line */
        inc     %rsi
        cmp     $' ', %al
        jne     .Lnext_word
        jmp     .Lword
.Lmatched:
        add     %rcx, %rsi                      /* RSI = first digit */
        xor     %eax, %eax
.Ldigit:
        movzbl  (%rsi), %ecx
        sub     $'0', %ecx
        cmp     $9, %ecx                        /* unsigned: not '0'..'9' -> done */
        ja      .Ldone
        imul    $10, %rax, %rax
        add     %rcx, %rax
        inc     %rsi
        jmp     .Ldigit
.Labsent:
        xor     %eax, %eax
.Ldone:
        ret

        .section .rodata
key_loop:       .asciz  "loop="
key_hypercalls: .asciz  "hypercalls="
