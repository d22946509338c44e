/* pv-bench: a PV guest that measures how fast xenlab runs guest code.
 *
 * Build (from the repository root):   make -C images
 *   which runs, inside images/:  as --64 -I include -o obj/pv-bench.o pv-bench/pv-bench.S
 *        ld -T include/pv-kernel.lds --build-id=none --discard-all -o pv-bench/pv-bench.elf obj/pv-bench.o
 *
 * The workload comes from the kernel command line (start_info.cmd_line):
 *
 *     cmdline = "loop=50000000 hypercalls=200000 mmu_updates=100000"
 *
 * (decimal numbers; a missing key counts as 0).  `python -m xenlab.bench`
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
 *   phase 3: `mmu_updates` round trips of mmu_update: the L1 entry that maps
 *            mmu_scratch, found by walking the page tables from start_info.pt_base,
 *            rewritten with the value it has (each one a full mod_l1_entry
 *            validation of a real entry), then
 *                pv-bench: mmu_updates done
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

        /* ---- phase 3: mmu_update round trips.  Walk L4 -> L1 for mmu_scratch: each
         * table's machine frame -> its pfn through the read-only M2P table at
         * HYPERVISOR_VIRT_START -> VIRT_BASE + pfn * 4096, where the builder mapped
         * every bootstrap page table.  R11 keeps the current table's machine address. */
        lea     key_mmu_updates(%rip), %rdi
        call    parse_arg
        mov     %rax, %r12                      /* R12 = mmu_update round trips */
        test    %r12, %r12
        jz      mmu_updates_done
        lea     mmu_scratch(%rip), %r14         /* the VA whose L1 entry is rewritten */
        mov     start_info_pt_base(%rbx), %r15  /* R15 = the current table's VA (L4) */
        mov     $39, %ecx                       /* the current level's index shift */
        lea     _text(%rip), %r9                /* VIRT_BASE */
        movabs  $0xFFFF800000000000, %r8        /* the M2P table */
        movabs  $0x000FFFFFFFFFF000, %r10       /* an entry's address bits */
.Lwalk:
        mov     %r14, %rax
        shr     %cl, %rax
        and     $511, %eax
        lea     (%r15,%rax,8), %rsi             /* RSI = the entry's VA */
        mov     (%rsi), %rdx                    /* RDX = the entry */
        cmp     $12, %ecx
        je      .Lfound                         /* an L1 entry */
        and     %r10, %rdx                      /* the next table's machine address */
        mov     %rdx, %r11
        shr     $12, %rdx
        mov     (%r8,%rdx,8), %rdx              /* M2P: its pfn */
        shl     $12, %rdx
        lea     (%r9,%rdx), %r15                /* its VA */
        sub     $9, %ecx
        jmp     .Lwalk
.Lfound:
        mov     %rdx, mmu_req + 8(%rip)         /* val: the entry as it is */
        sub     %r15, %rsi
        add     %r11, %rsi
        mov     %rsi, mmu_req(%rip)             /* ptr: MMU_NORMAL_PT_UPDATE (low bits 0) */
        .globl  bench_mmu_update_loop
bench_mmu_update_loop:
        lea     mmu_req(%rip), %rdi             /* arg 1: the request */
        mov     $1, %esi                        /* arg 2: count */
        xor     %edx, %edx                      /* arg 3: pdone = NULL */
        mov     $DOMID_SELF, %r10d              /* arg 4: foreigndom */
        HYPERCALL __HYPERVISOR_mmu_update
        test    %rax, %rax
        jnz     mmu_update_failed
        dec     %r12
        jnz     bench_mmu_update_loop
        .globl  mmu_updates_done
mmu_updates_done:
        PRINTLN "pv-bench: mmu_updates done"
        SHUTDOWN SHUTDOWN_poweroff
mmu_update_failed:
        PRINTLN "pv-bench: mmu_update failed"

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
key_mmu_updates: .asciz "mmu_updates="

        .data
        .balign 16
mmu_req:        .quad   0, 0                    /* struct mmu_update { ptr; val; } */
        .balign 4096
mmu_scratch:    .skip   4096                    /* the page whose L1 entry is rewritten */
