/* frames.S: a PVH guest that takes exceptions and interrupts in its own handlers, in
 * 32-bit protected mode and in long mode, from ring 0 and from ring 3, and prints
 * every frame the CPU pushed on port 0xE9 (Xen's and QEMU's debug console).
 *
 * The same image boots on xenlab (type = "pvh") and on qemu-system-x86_64 (-kernel:
 * QEMU reads the same XEN_ELFNOTE_PHYS32_ENTRY), so the two lists of frames can be
 * compared line by line: tests/test_exception_frames.py does.
 *
 * Each line: the mode and ring the CPU was in, the vector, the error code (0 where the
 * vector has none), then what the CPU pushed: EIP/RIP, CS, EFLAGS/RFLAGS, and ESP, SS
 * when it switched stacks (always in long mode), CR2 for a #PF, and where the CPU left
 * the stack pointer ("at"): the TSS's ESP0/RSP0, an IST stack, or the same stack.
 *
 *   32-bit protected mode, 4 MiB pages:   ring 0: #DE, #UD, #GP(selector), #PF (write,
 *     not present), int3, #NP and #GP for gates the CPU cannot use, a #DF (a #DE whose
 *     gate is not present), the PIT's IRQ 0 through the 8259A, the local APIC timer;
 *     ring 3: #UD, #GP(0) (cli), #PF (read of a supervisor page), int $0x80 (a DPL 3
 *     trap gate), int $0x81 (a DPL 0 gate: #GP(0x40a)), int3, the APIC timer.
 *   Long mode, 2 MiB pages, the same list (#GP(0) for a non-canonical address, #UD on
 *     the IST1 stack), a syscall from ring 3 and its sysret, then a shutdown:
 *     SCHEDOP_shutdown on Xen, the isa-debug-exit port on QEMU.
 *
 * Build: as --32 (xenlab.labkit.assemble(source, bits=32, org=0x100000)), then an ELF
 * with the PVH note (tests/test_pvh_physmap.py's pvh_elf).
 */
        /* the handlers add ``skip`` to a fault's EIP: the size of the faulting
           instruction, measured between two labels */
        .macro  SKIP insn:vararg
        movl    $(9f - 8f), skip
8:      \insn
9:
        .endm
        .code32
start:
        cli
        lgdt    gdt_ptr
        ljmp    $0x08, $1f
1:      mov     $0x10, %eax
        mov     %eax, %ds
        mov     %eax, %es
        mov     %eax, %ss
        mov     %eax, %fs
        mov     %eax, %gs
        mov     $kstack_top, %esp
        call    fill_tss_descriptors
        mov     $0x38, %ax
        ltr     %ax
        /* the 8259A: vectors 0x20.. and 0x28.., everything masked */
        mov     $0x11, %al
        out     %al, $0x20
        out     %al, $0xa0
        mov     $0x20, %al
        out     %al, $0x21
        mov     $0x28, %al
        out     %al, $0xa1
        mov     $0x04, %al
        out     %al, $0x21
        mov     $0x02, %al
        out     %al, $0xa1
        mov     $0x01, %al
        out     %al, $0x21
        out     %al, $0xa1
        mov     $0xff, %al
        out     %al, $0x21
        out     %al, $0xa1
        /* the local APIC: on, LINT0 the PIC's virtual wire, the timer on vector 0x30 */
        movl    $0x1ff, 0xfee000f0
        movl    $0x700, 0xfee00350
        movl    $0x0b, 0xfee003e0               /* divide by 1 */
        /* the 32-bit IDT */
        mov     $pm_gates, %esi
2:      mov     (%esi), %ecx                    /* vector */
        cmp     $0xffffffff, %ecx
        je      3f
        mov     4(%esi), %eax                   /* handler */
        mov     8(%esi), %edx                   /* type and DPL: 0x8e00, 0xee00, 0xef00 */
        lea     pm_idt(,%ecx,8), %edi
        mov     %ax, (%edi)
        movw    $0x08, 2(%edi)
        mov     %dx, 4(%edi)
        shr     $16, %eax
        mov     %ax, 6(%edi)
        add     $12, %esi
        jmp     2b
3:      lidt    pm_idt_ptr
        /* 32-bit paging: 0-4 MiB user, 4-8 MiB supervisor, the APICs' 4 MiB uncached */
        mov     $pd32, %eax
        mov     %eax, %cr3
        mov     %cr4, %eax
        or      $0x10, %eax                     /* PSE */
        mov     %eax, %cr4
        mov     %cr0, %eax
        or      $0x80010000, %eax               /* PG, WP */
        mov     %eax, %cr0

        mov     $msg_pm, %esi
        call    puts32
/* ---- 32-bit, ring 0 */
        xor     %edx, %edx
        xor     %ecx, %ecx
        mov     $1, %eax
        SKIP    div %ecx                        /* #DE */
        SKIP    ud2                             /* #UD */
        mov     $0x1237, %ax
        SKIP    mov %ax, %ds                    /* #GP(0x1234): beyond the GDT */
        mov     $0x50000000, %eax
        SKIP    movl $1, (%eax)                 /* #PF: write, not present */
        int3                                    /* #BP: a trap, no skip */
        SKIP    int $0x55                       /* a gate not present: #NP(0x55 * 8 + 2) */
        SKIP    int $0x56                       /* an empty entry: #GP(0x56 * 8 + 2) */
        andb    $0x7f, pm_idt + 5               /* #DE's gate not present: */
        xor     %ecx, %ecx
        SKIP    div %ecx                        /* #DE, then #NP: a #DF */
        /* IRQ 0: the PIT every 10 ms, waited for in hlt */
        movb    $0x34, %al
        out     %al, $0x43
        movb    $0x9c, %al
        out     %al, $0x40
        movb    $0x2e, %al
        out     %al, $0x40
        movb    $0xfe, %al
        out     %al, $0x21
        movl    $0, ticks
        sti
        hlt
        cli
        movb    $0xff, %al
        out     %al, $0x21
        /* the local APIC timer, one-shot, waited for in hlt */
        movl    $0x30, 0xfee00320
        movl    $200000, 0xfee00380
        sti
        hlt
        cli
/* ---- 32-bit, ring 3 */
        mov     $0x2b, %ax
        mov     %ax, %ds
        mov     %ax, %es
        pushl   $0x2b                           /* SS */
        pushl   $ustack_top                     /* ESP */
        pushl   $0x202                          /* EFLAGS: IF */
        pushl   $0x23                           /* CS */
        pushl   $pm_user
        iret
pm_user:
        SKIP    ud2                             /* #UD */
        SKIP    cli                             /* #GP(0): IOPL 0 */
        SKIP    mov 0x400000, %eax              /* #PF: read of a supervisor page */
        int     $0x80                           /* a DPL 3 trap gate */
        SKIP    int $0x81                       /* a DPL 0 gate: #GP(0x81 * 8 + 2) */
        int3
        xor     %eax, %eax                      /* the wait loop's flags (ZF, PF), */
        movl    $0x30, %eax                     /* kept by int and iret: the APIC */
        int     $0x80                           /* timer from ring 3, waited for */
pm_loop:
        cmpl    $0, ticks
        je      pm_loop
pm_loop_end:
        mov     $0xe0, %eax                     /* back to ring 0 */
        int     $0x80
pm_after_user:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es

/* ---- long mode */
        mov     %cr0, %eax
        and     $0x7fffffff, %eax
        mov     %eax, %cr0
        mov     %cr4, %eax
        or      $0x20, %eax                     /* PAE */
        mov     %eax, %cr4
        mov     $pml4, %eax
        mov     %eax, %cr3
        mov     $0xc0000080, %ecx
        rdmsr
        or      $0x100, %eax                    /* LME */
        wrmsr
        mov     %cr0, %eax
        or      $0x80000000, %eax
        mov     %eax, %cr0
        ljmp    $0x18, $long64

        .code64
long64:
        mov     $0x10, %eax
        mov     %eax, %ss
        mov     $kstack_top, %rsp
        mov     $0x40, %ax
        ltr     %ax
        mov     $lm_gates, %rsi
2:      mov     (%rsi), %ecx
        cmp     $0xffffffff, %ecx
        je      3f
        mov     4(%rsi), %eax
        mov     8(%rsi), %edx                   /* type, DPL and IST */
        shl     $4, %ecx
        lea     lm_idt(%rcx), %rdi
        mov     %ax, (%rdi)
        movw    $0x18, 2(%rdi)
        mov     %dx, 4(%rdi)
        shr     $16, %eax
        mov     %ax, 6(%rdi)
        movq    $0, 8(%rdi)
        add     $12, %rsi
        jmp     2b
3:      lidt    lm_idt_ptr
        mov     $msg_lm, %esi
        call    puts64
/* ---- 64-bit, ring 0 */
        xor     %edx, %edx
        xor     %ecx, %ecx
        mov     $1, %eax
        SKIP    div %ecx                        /* #DE */
        SKIP    ud2                             /* #UD, on the IST1 stack */
        movabs  $0x0000800000000000, %rax
        SKIP    mov (%rax), %rbx                /* #GP(0): not canonical */
        mov     $0x50000000, %eax
        SKIP    movl $1, (%rax)                 /* #PF: write, not present */
        int3
        SKIP    int $0x55
        SKIP    int $0x56
        andb    $0x7f, lm_idt + 5
        xor     %ecx, %ecx
        SKIP    div %ecx                        /* #DE, then #NP: a #DF */
        movb    $0xfe, %al                      /* the PIT again */
        out     %al, $0x21
        movq    $0, ticks
        sti
        hlt
        cli
        movb    $0xff, %al
        out     %al, $0x21
        mov     $0xfee00000, %r11d
        movl    $0x30, 0x320(%r11)
        movl    $200000, 0x380(%r11)
        sti
        hlt
        cli
/* ---- 64-bit, ring 3; syscall and sysret first set up */
        mov     $0xc0000081, %ecx               /* STAR: sysret 0x20 (+16 | 3, +8 | 3), */
        xor     %eax, %eax                      /*       syscall 0x50 (and 0x58)       */
        mov     $0x00200050, %edx
        wrmsr
        mov     $0xc0000082, %ecx               /* LSTAR */
        mov     $lm_syscall, %eax
        xor     %edx, %edx
        wrmsr
        mov     $0xc0000084, %ecx               /* SFMASK: IF */
        mov     $0x200, %eax
        wrmsr
        mov     $0xc0000080, %ecx               /* EFER.SCE */
        rdmsr
        or      $1, %eax
        wrmsr
        pushq   $0x2b                           /* SS */
        pushq   $ustack_top                     /* RSP */
        pushq   $0x202                          /* RFLAGS: IF */
        pushq   $0x33                           /* CS: 64-bit, DPL 3 */
        pushq   $lm_user
        iretq
lm_user:
        SKIP    ud2
        SKIP    cli
        SKIP    mov 0x400000, %eax              /* a supervisor page */
        int     $0x80
        SKIP    int $0x81
        int3
        xor     %eax, %eax
        mov     $0x30, %eax
        int     $0x80
lm_loop:
        cmpq    $0, ticks
        je      lm_loop
lm_loop_end:
        syscall                                 /* into the kernel at LSTAR, and back */
        mov     $0xe0, %eax
        int     $0x80
lm_after_user:
        mov     $msg_done, %esi
        call    puts64
        /* Xen: SCHEDOP_shutdown(SHUTDOWN_poweroff); QEMU: isa-debug-exit */
        mov     $0x40000000, %eax
        cpuid
        cmp     $0x566e6558, %ebx               /* "XenV" */
        jne     4f
        mov     $29, %eax                       /* __HYPERVISOR_sched_op */
        mov     $2, %edi                        /* SCHEDOP_shutdown */
        mov     $shutdown_reason, %esi
        vmcall
4:      mov     $0, %al
        out     %al, $0xf4
5:      cli
        hlt
        jmp     5b

lm_syscall:                     /* print what SYSCALL left: RCX, R11, CS, SS, RFLAGS */
        push    %rcx
        push    %r11
        mov     $msg_syscall, %esi
        call    puts64
        mov     $msg_rcx, %esi
        mov     8(%rsp), %rax
        mov     $16, %ecx
        call    field64
        mov     $msg_r11, %esi
        mov     (%rsp), %rax
        mov     $8, %ecx
        call    field64
        mov     $msg_cs, %esi
        mov     %cs, %eax
        mov     $4, %ecx
        call    field64
        mov     $msg_ss, %esi
        mov     %ss, %eax
        mov     $4, %ecx
        call    field64
        mov     $msg_fl, %esi
        pushfq
        pop     %rax
        mov     $8, %ecx
        call    field64
        mov     $'\n', %al
        call    putc64
        pop     %r11
        pop     %rcx
        sysretq

/* ---- 64-bit handlers: stub (RSP as the CPU left it, a dummy error code, the vector),
        then the common part prints the line and returns */
        .macro  LM_STUB name, vector, err
\name:  mov     %rsp, entry_sp
        .if     \err == 0
        pushq   $0
        .endif
        pushq   $\vector
        jmp     lm_common
        .endm
        LM_STUB lm_de, 0, 0
        LM_STUB lm_bp, 3, 0
        LM_STUB lm_ud, 6, 0
        LM_STUB lm_df, 8, 1
        LM_STUB lm_np, 11, 1
        LM_STUB lm_gp, 13, 1
        LM_STUB lm_pf, 14, 1
        LM_STUB lm_pit, 0x20, 0
        LM_STUB lm_apic, 0x30, 0
        LM_STUB lm_sys, 0x80, 0
        LM_STUB lm_81, 0x81, 0
lm_common:                      /* vector, error, RIP, CS, RFLAGS, RSP, SS */
        cli                         /* a trap gate left IF set: no timer inside */
        push    %rax
        push    %rsi
        push    %rcx
        push    %rbp
        mov     %rsp, %rbp          /* RBP, RCX, RSI, RAX at 0..24, the vector at 32 */
        mov     $msg_lm_line, %esi
        call    puts64
        mov     56(%rbp), %rax                  /* CS: the ring */
        and     $3, %eax
        add     $'0', %eax
        call    putc64
        mov     $msg_v, %esi
        mov     32(%rbp), %rax
        mov     $2, %ecx
        call    field64
        mov     $msg_e, %esi
        mov     40(%rbp), %rax
        mov     $8, %ecx
        call    field64
        mov     48(%rbp), %rax                  /* RIP, the ring-3 wait loop as one */
        cmp     $lm_loop, %rax
        jb      1f
        cmp     $lm_loop_end, %rax
        jae     1f
        mov     $lm_loop, %eax
1:      mov     $msg_ip, %esi
        mov     $16, %ecx
        call    field64
        mov     $msg_cs, %esi
        mov     56(%rbp), %rax
        mov     $4, %ecx
        call    field64
        mov     $msg_fl, %esi
        mov     64(%rbp), %rax
        mov     $8, %ecx
        call    field64
        mov     $msg_sp, %esi
        mov     72(%rbp), %rax
        mov     $16, %ecx
        call    field64
        mov     $msg_ss, %esi
        mov     80(%rbp), %rax
        mov     $4, %ecx
        call    field64
        cmpq    $14, 32(%rbp)
        jne     1f
        mov     $msg_cr2, %esi
        mov     %cr2, %rax
        mov     $16, %ecx
        call    field64
1:      mov     $msg_at, %esi
        mov     entry_sp, %rax
        mov     $16, %ecx
        call    field64
        mov     $'\n', %al
        call    putc64
        mov     32(%rbp), %rax
        cmp     $8, %rax
        jne     1f
        orb     $0x80, lm_idt + 5               /* #DF: #DE's gate present again */
1:      cmp     $0x20, %rax
        jne     1f
        mov     $0x20, %al                      /* the PIC's EOI */
        out     %al, $0x20
        incq    ticks
1:      cmp     $0x30, %rax
        jne     1f
        mov     $0xfee00000, %r11d
        movl    $0, 0x0b0(%r11)                  /* the APIC's EOI */
        incq    ticks
1:      cmp     $0x80, %rax
        jne     2f
        mov     24(%rbp), %rax                  /* the caller's RAX */
        cmp     $0xe0, %rax
        jne     1f
        mov     $kstack_top, %rsp               /* back to ring 0 for good */
        jmp     lm_after_user
1:      cmp     $0x30, %rax                     /* arm the APIC timer */
        jne     2f
        mov     $0xfee00000, %r11d
        movl    $0x30, 0x320(%r11)
        movl    $200000, 0x380(%r11)
        movq    $0, ticks
2:      mov     32(%rbp), %rax
        cmp     $3, %rax                        /* traps and interrupts: no skip */
        je      1f
        cmp     $0x20, %rax
        jae     1f
        mov     skip, %rax
        add     %rax, 48(%rbp)
1:      pop     %rbp
        pop     %rcx
        pop     %rsi
        pop     %rax
        add     $16, %rsp
        iretq

field64:                        /* print (%esi), then RAX in %ecx hex digits */
        push    %rax
        call    puts64
        pop     %rax
        /* fall through */
hex64:                          /* RAX in %ecx hex digits (1..16) */
        push    %rdx
        push    %rbx
        mov     %rax, %rbx
        mov     %ecx, %edx
        mov     $16, %ecx
        sub     %edx, %ecx
        shl     $2, %ecx
        shl     %cl, %rbx
        mov     %edx, %ecx
1:      rol     $4, %rbx
        mov     %ebx, %eax
        and     $0xf, %eax
        mov     hexdigits(%rax), %al
        out     %al, $0xe9
        loop    1b
        pop     %rbx
        pop     %rdx
        ret
puts64:
        lodsb
        test    %al, %al
        jz      1f
        out     %al, $0xe9
        jmp     puts64
1:      ret
putc64:
        out     %al, $0xe9
        ret

/* ---- 32-bit handlers, the same way */
        .code32
        .macro  PM_STUB name, vector, err
\name:  mov     %esp, entry_sp
        .if     \err == 0
        pushl   $0
        .endif
        pushl   $\vector
        jmp     pm_common
        .endm
        PM_STUB pm_de, 0, 0
        PM_STUB pm_bp, 3, 0
        PM_STUB pm_ud, 6, 0
        PM_STUB pm_df, 8, 1
        PM_STUB pm_np, 11, 1
        PM_STUB pm_gp, 13, 1
        PM_STUB pm_pf, 14, 1
        PM_STUB pm_pit, 0x20, 0
        PM_STUB pm_apic, 0x30, 0
        PM_STUB pm_sys, 0x80, 0
        PM_STUB pm_81, 0x81, 0
pm_common:                      /* vector, error, EIP, CS, EFLAGS, [ESP, SS] */
        cli
        push    %eax
        push    %esi
        push    %ecx
        push    %ebp
        push    %ds
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %esp, %ebp          /* DS, EBP, ECX, ESI, EAX at 0..16, the vector at 20 */
        mov     $msg_pm_line, %esi
        call    puts32
        mov     32(%ebp), %eax                  /* CS: the ring */
        and     $3, %eax
        add     $'0', %eax
        call    putc32
        mov     $msg_v, %esi
        mov     20(%ebp), %eax
        mov     $2, %ecx
        call    field32
        mov     $msg_e, %esi
        mov     24(%ebp), %eax
        mov     $8, %ecx
        call    field32
        mov     28(%ebp), %eax
        cmp     $pm_loop, %eax
        jb      1f
        cmp     $pm_loop_end, %eax
        jae     1f
        mov     $pm_loop, %eax
1:      mov     $msg_ip, %esi
        mov     $8, %ecx
        call    field32
        mov     $msg_cs, %esi
        mov     32(%ebp), %eax
        mov     $4, %ecx
        call    field32
        mov     $msg_fl, %esi
        mov     36(%ebp), %eax
        mov     $8, %ecx
        call    field32
        testl   $3, 32(%ebp)                    /* from ring 3: ESP and SS too */
        jz      1f
        mov     $msg_sp, %esi
        mov     40(%ebp), %eax
        mov     $8, %ecx
        call    field32
        mov     $msg_ss, %esi
        mov     44(%ebp), %eax
        mov     $4, %ecx
        call    field32
1:      cmpl    $14, 20(%ebp)
        jne     1f
        mov     $msg_cr2, %esi
        mov     %cr2, %eax
        mov     $8, %ecx
        call    field32
1:      mov     $msg_at, %esi
        mov     entry_sp, %eax
        mov     $8, %ecx
        call    field32
        mov     $'\n', %al
        call    putc32
        mov     20(%ebp), %eax
        cmp     $8, %eax
        jne     1f
        orb     $0x80, pm_idt + 5               /* #DF: #DE's gate present again */
1:      cmp     $0x20, %eax
        jne     1f
        mov     $0x20, %al
        out     %al, $0x20
        incl    ticks
1:      cmp     $0x30, %eax
        jne     1f
        movl    $0, 0xfee000b0
        incl    ticks
1:      cmp     $0x80, %eax
        jne     2f
        mov     16(%ebp), %eax                  /* the caller's EAX */
        cmp     $0xe0, %eax
        jne     1f
        mov     $kstack_top, %esp
        jmp     pm_after_user
1:      cmp     $0x30, %eax
        jne     2f
        movl    $0x30, 0xfee00320
        movl    $200000, 0xfee00380
        movl    $0, ticks
2:      mov     20(%ebp), %eax
        cmp     $3, %eax
        je      1f
        cmp     $0x20, %eax
        jae     1f
        mov     skip, %eax
        add     %eax, 28(%ebp)
1:      pop     %ds
        pop     %ebp
        pop     %ecx
        pop     %esi
        pop     %eax
        add     $8, %esp
        iret

field32:
        push    %eax
        call    puts32
        pop     %eax
hex32:                          /* EAX in %ecx hex digits (1..8) */
        push    %edx
        push    %ebx
        mov     %eax, %ebx
        mov     %ecx, %edx
        mov     $8, %ecx
        sub     %edx, %ecx
        shl     $2, %ecx
        shl     %cl, %ebx
        mov     %edx, %ecx
1:      rol     $4, %ebx
        mov     %ebx, %eax
        and     $0xf, %eax
        mov     hexdigits(%eax), %al
        out     %al, $0xe9
        loop    1b
        pop     %ebx
        pop     %edx
        ret
puts32:
        lodsb
        test    %al, %al
        jz      1f
        out     %al, $0xe9
        jmp     puts32
1:      ret
putc32:
        out     %al, $0xe9
        ret

fill_tss_descriptors:           /* the TSS descriptors' bases, and the stacks in the TSSs */
        mov     $tss32, %eax
        mov     %ax, gdt + 0x38 + 2
        shr     $16, %eax
        mov     %al, gdt + 0x38 + 4
        mov     %ah, gdt + 0x38 + 7
        movl    $kstack_top, tss32 + 4          /* ESP0 */
        movl    $0x10, tss32 + 8                /* SS0 */
        mov     $tss64, %eax
        mov     %ax, gdt + 0x40 + 2
        shr     $16, %eax
        mov     %al, gdt + 0x40 + 4
        mov     %ah, gdt + 0x40 + 7
        movl    $kstack_top, tss64 + 4          /* RSP0 */
        movl    $ist_top, tss64 + 0x24          /* IST1 */
        ret

        .balign 8
gdt:
        .quad   0
        .quad   0x00CF9A000000FFFF              /* 0x08 ring 0 code, 32-bit */
        .quad   0x00CF92000000FFFF              /* 0x10 ring 0 data */
        .quad   0x00AF9A000000FFFF              /* 0x18 ring 0 code, 64-bit */
        .quad   0x00CFFA000000FFFF              /* 0x20 ring 3 code, 32-bit */
        .quad   0x00CFF2000000FFFF              /* 0x28 ring 3 data */
        .quad   0x00AFFA000000FFFF              /* 0x30 ring 3 code, 64-bit */
        .quad   0x0000890000000067              /* 0x38 32-bit TSS (base filled in) */
        .quad   0x0000890000000067, 0           /* 0x40 64-bit TSS */
        .quad   0x00AF9A000000FFFF              /* 0x50 ring 0 code, 64-bit: STAR's */
        .quad   0x00CF92000000FFFF              /* 0x58 ring 0 data: STAR's + 8 */
gdt_ptr:
        .word   gdt_ptr - gdt - 1
        .long   gdt
pm_gates:                       /* vector, handler, type: 0x8e00 interrupt gate DPL 0, */
        .long   0, pm_de, 0x8e00                /* 0xee00 DPL 3, 0xef00 trap gate DPL 3 */
        .long   3, pm_bp, 0xee00
        .long   6, pm_ud, 0x8e00
        .long   8, pm_df, 0x8e00
        .long   11, pm_np, 0x8e00
        .long   0x55, pm_de, 0x0e00             /* an interrupt gate, not present */
        .long   13, pm_gp, 0x8e00
        .long   14, pm_pf, 0x8e00
        .long   0x20, pm_pit, 0x8e00
        .long   0x30, pm_apic, 0x8e00
        .long   0x80, pm_sys, 0xef00
        .long   0x81, pm_81, 0x8e00
        .long   0xffffffff
lm_gates:                       /* the same in long mode; #UD takes IST1 */
        .long   0, lm_de, 0x8e00
        .long   3, lm_bp, 0xee00
        .long   6, lm_ud, 0x8e01
        .long   8, lm_df, 0x8e00
        .long   11, lm_np, 0x8e00
        .long   0x55, lm_de, 0x0e00
        .long   13, lm_gp, 0x8e00
        .long   14, lm_pf, 0x8e00
        .long   0x20, lm_pit, 0x8e00
        .long   0x30, lm_apic, 0x8e00
        .long   0x80, lm_sys, 0xef00
        .long   0x81, lm_81, 0x8e00
        .long   0xffffffff
pm_idt_ptr:
        .word   0x82 * 8 - 1
        .long   pm_idt
lm_idt_ptr:
        .word   0x82 * 16 - 1
        .quad   lm_idt
hexdigits:      .ascii  "0123456789abcdef"
msg_pm:         .asciz  "frames: 32-bit protected mode\n"
msg_lm:         .asciz  "frames: long mode\n"
msg_done:       .asciz  "frames: done\n"
msg_pm_line:    .asciz  "pm ring "
msg_lm_line:    .asciz  "lm ring "
msg_v:          .asciz  " v="
msg_e:          .asciz  " e="
msg_ip:         .asciz  " ip="
msg_cs:         .asciz  " cs="
msg_fl:         .asciz  " fl="
msg_sp:         .asciz  " sp="
msg_ss:         .asciz  " ss="
msg_cr2:        .asciz  " cr2="
msg_at:         .asciz  " at="
msg_syscall:    .asciz  "lm syscall"
msg_rcx:        .asciz  " rcx="
msg_r11:        .asciz  " r11="
        .balign 8
skip:           .quad   0
ticks:          .quad   0
entry_sp:       .quad   0
shutdown_reason: .long  0                       /* SHUTDOWN_poweroff */

        .balign 4096
pd32:                           /* 32-bit page directory, 4 MiB pages */
        .long   0x00000087                      /* 0: user, writable */
        .long   0x00400083                      /* 4 MiB: supervisor only */
        .fill   0x3fb - 2, 4, 0
        .long   0xfec00093                      /* the APICs: uncached, supervisor */
        .fill   1024 - 0x3fc, 4, 0
pml4:
        .quad   pdpt + 7
        .fill   511, 8, 0
pdpt:
        .quad   pd64 + 7
        .quad   0, 0
        .quad   pd64_apic + 3
        .fill   508, 8, 0
pd64:                           /* 2 MiB pages */
        .quad   0x00000087                      /* 0-2 MiB: user */
        .quad   0x00200087                      /* 2-4 MiB: user */
        .quad   0x00400083                      /* 4-6 MiB: supervisor only */
        .fill   509, 8, 0
pd64_apic:
        .fill   0x1f6, 8, 0
        .quad   0xfec00093                      /* the IO-APIC */
        .quad   0xfee00093                      /* the local APIC */
        .fill   512 - 0x1f8, 8, 0
pm_idt:         .fill   0x82, 8, 0
        .balign 16
lm_idt:         .fill   0x82 * 2, 8, 0
        .balign 16
tss32:          .fill   0x68, 1, 0
        .balign 16
tss64:          .fill   0x68, 1, 0
        .balign 16
                .fill   1024, 1, 0
ist_top:
                .fill   1024, 1, 0
ustack_top:
                .fill   2048, 1, 0
kstack_top:
