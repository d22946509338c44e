/*
 * The native callbacks of xenlab's CPU layer, as source. xenlab/cpu/x86.py and
 * xenlab/cpu/icount.py carry them as bytes (no assembler at run time: they are copied
 * into an executable page, and unicorn calls them as hook callbacks with the System V
 * x86-64 ABI); tests/test_cpu.py assembles this file with GNU as and checks that every
 * section is, byte for byte, the constant named beside it. Change both together.
 *
 * Real Xen: none (an emulator's fast paths). The callbacks stand in for what QEMU does
 * inside cpu_exec: accel/tcg's icount budget (gen_tb_start), target/i386's
 * do_interrupt_real, helper_rdtsc.
 */
        .intel_syntax noprefix

/* x86._THUNK: UC_HOOK_BLOCK, the budget in virtual instructions.
 * void cb(uc_engine *uc, uint64_t addr, uint32_t size, struct _Budget *b)
 * _Budget: left 0, stop 8 (uc_emu_stop), window 16, reg_read 24, eflags 32, uc 40,
 * stopped_at 48, eflags_at 56 (the engine's own EFLAGS word, or 0: x86._eflags_word) */
        .section .text.budget, "ax"
budget:
        mov     eax, edx                        /* the block's size in bytes */
        add     eax, 3
        shr     eax, 2                          /* ~instructions = ceil(bytes / 4) */
        sub     [rcx], rax                      /* b->left -= cost */
        jle     1f
        cmp     qword ptr [rcx+16], 0           /* the interrupt window armed? */
        jne     3f
        ret
3:      mov     rax, [rcx+56]                   /* b->eflags_at: IF read in place */
        test    rax, rax
        jz      2f
        test    dword ptr [rax], 0x200          /* IF set: the window is open */
        jnz     1f
        ret
2:      push    rbx                             /* (keeps the stack 16-byte aligned) */
        mov     rbx, rcx
        mov     [rbx+40], rdi                   /* b->uc = uc */
        mov     esi, 25                         /* UC_X86_REG_EFLAGS */
        lea     rdx, [rbx+32]                   /* &b->eflags */
        call    qword ptr [rbx+24]              /* uc_reg_read(uc, EFLAGS, &eflags) */
        mov     rcx, rbx
        mov     rdi, [rbx+40]
        pop     rbx
        test    dword ptr [rcx+32], 0x200       /* IF set: the window is open */
        jnz     1f
        ret
1:      mov     [rcx+48], rsi                   /* b->stopped_at = the block's address */
        mov     rax, [rcx+8]
        jmp     rax                             /* tail call uc_emu_stop(uc) */

/* x86._FILL_THUNK: UC_HOOK_TLB_FILL while paging is off (linear = physical).
 * bool cb(uc_engine *uc, uint64_t addr, uc_mem_type type, uc_tlb_entry *e,
 *         uint64_t *code_pages)   -- a bit per 4 KiB page below 4 GiB that held code,
 *         then at 128 KiB one per page code was fetched from since the last aging */
        .section .text.fill, "ax"
fill:
        mov     [rcx], rsi                      /* e->paddr = addr */
        mov     rax, rsi
        shr     rax, 12                         /* the page number */
        mov     r9d, 7                          /* UC_PROT_ALL */
        cmp     rax, 0x100000                   /* at or above 4 GiB: no bitmap */
        jae     1f
        cmp     edx, 18                         /* UC_MEM_FETCH? */
        jne     2f
        bts     [r8], rax                       /* code is fetched from this page */
        bts     [r8+0x20000], rax               /* (and since the last aging) */
        jmp     1f
2:      bt      [r8], rax                       /* a page that held code? */
        jc      1f                              /* yes: executable too */
        mov     r9d, 3                          /* UC_PROT_READ | UC_PROT_WRITE */
1:      mov     [rcx+8], r9d                    /* e->perms */
        mov     eax, 1
        ret

/* x86._ONES_THUNK and x86._DROP_THUNK: the MMIO callbacks of unassigned memory
 * (all-ones reads, dropped writes) */
        .section .text.ones, "ax"
ones:
        mov     rax, -1
        ret
        .section .text.drop, "ax"
drop:
        ret

/* x86._RM_INTR_THUNK: UC_HOOK_INTR of a 32-bit engine, QEMU's do_interrupt_real.
 * void cb(uc_engine *uc, uint32_t intno, struct _RmIntr *r)
 * _RmIntr: python 0, reg_read_batch 8, reg_write_batch 16, mem_read 24, mem_write 32,
 * to_python 40, delivered 72, read_ids 80, write_ids 112, read_ptrs 136, write_ptrs 192,
 * cr0 232, idtr 240 (base 248, limit 256), regs 264 (FLAGS CS EIP SS ESP), entry 304,
 * frame 308 */
        .section .text.rm_intr, "ax"
rm_intr:
        mov     esi, esi
        bt      [rdx+40], rsi                   /* r->to_python has this vector? */
        jc      9f
        push    rbx
        push    r12
        push    r13                             /* the stack stays 16-byte aligned */
        mov     rbx, rdx                        /* r */
        mov     r12, rdi                        /* uc */
        mov     r13d, esi                       /* intno */
        lea     rsi, [rbx+80]                   /* read_ids */
        lea     rdx, [rbx+136]                  /* read_ptrs */
        mov     ecx, 7
        call    qword ptr [rbx+8]               /* uc_reg_read_batch(uc, ids, ptrs, 7) */
        test    eax, eax
        jnz     8f
        test    byte ptr [rbx+232], 1           /* CR0.PE: protected mode */
        jnz     8f
        lea     eax, [r13*4+3]
        cmp     eax, [rbx+256]                  /* past the IVT's limit? */
        ja      8f
        cmp     word ptr [rbx+296], 6           /* SP < 6: the stack wraps */
        jb      8f
        mov     rdi, r12
        mov     rsi, [rbx+248]                  /* the IVT's base */
        lea     rsi, [rsi+r13*4]
        lea     rdx, [rbx+304]                  /* &entry */
        mov     ecx, 4
        call    qword ptr [rbx+24]              /* uc_mem_read(uc, base + 4n, entry, 4) */
        test    eax, eax
        jnz     8f
        mov     ax, [rbx+280]                   /* IP */
        mov     [rbx+308], ax
        mov     ax, [rbx+272]                   /* CS */
        mov     [rbx+310], ax
        mov     ax, [rbx+264]                   /* FLAGS */
        mov     [rbx+312], ax
        movzx   esi, word ptr [rbx+288]         /* SS */
        shl     esi, 4
        movzx   eax, word ptr [rbx+296]         /* SP */
        lea     esi, [rsi+rax-6]
        mov     rdi, r12
        lea     rdx, [rbx+308]                  /* &frame */
        mov     ecx, 6
        call    qword ptr [rbx+32]              /* uc_mem_write(uc, SS*16+SP-6, frame, 6) */
        test    eax, eax
        jnz     8f
        and     qword ptr [rbx+264], ~0x50300   /* clear AC, RF, IF and TF */
        movzx   eax, word ptr [rbx+304]
        mov     [rbx+280], rax                  /* EIP = the entry's offset */
        movzx   eax, word ptr [rbx+306]
        mov     [rbx+272], rax                  /* CS = its segment */
        sub     word ptr [rbx+296], 6           /* SP -= 6 (ESP's upper half kept) */
        mov     rdi, r12
        lea     rsi, [rbx+112]                  /* write_ids */
        lea     rdx, [rbx+192]                  /* write_ptrs */
        mov     ecx, 5
        call    qword ptr [rbx+16]              /* uc_reg_write_batch(uc, ids, ptrs, 5) */
        inc     qword ptr [rbx+72]              /* delivered */
        pop     r13
        pop     r12
        pop     rbx
        ret
8:      mov     rdi, r12                        /* back to Python, arguments as they came */
        mov     esi, r13d
        mov     rdx, rbx
        pop     r13
        pop     r12
        pop     rbx
9:      jmp     qword ptr [rdx]                 /* tail call the Python hook */

/* x86._TSC_THUNK: UC_HOOK_INSN for rdtsc (entry) and rdtscp (_TSCP_ENTRY bytes in).
 * int cb(uc_engine *uc, struct _Tsc *t)
 * _Tsc: valid 0, base 8, left 16 (&budget.left), reg_write_batch 24, python 32, n 40,
 * ids 48, ptrs 64, vals 88, answered 112 */
        .section .text.tsc, "ax"
tsc:
        mov     ecx, 2                          /* rdtsc: EAX, EDX */
        jmp     1f
tscp:
        mov     ecx, 3                          /* rdtscp: EAX, EDX, ECX (TSC_AUX) */
1:      mov     [rsi+40], rcx                   /* t->n */
        cmp     qword ptr [rsi], 0              /* the base valid? */
        je      2f
        mov     rax, [rsi+8]                    /* base */
        mov     rdx, [rsi+16]
        sub     rax, [rdx]                      /* TSC = base - budget.left */
        mov     edx, eax
        mov     [rsi+88], rdx                   /* vals[0] = the low half */
        shr     rax, 32
        mov     [rsi+96], rax                   /* vals[1] = the high half */
        inc     qword ptr [rsi+112]             /* answered */
        push    rbx                             /* (the stack 16-byte aligned) */
        mov     rax, [rsi+24]
        lea     rdx, [rsi+64]                   /* ptrs */
        lea     rsi, [rsi+48]                   /* ids */
        call    rax                             /* uc_reg_write_batch(uc, ids, ptrs, n) */
        pop     rbx
        mov     eax, 1                          /* skip unicorn's own TSC */
        ret
2:      jmp     qword ptr [rsi+32]              /* tail call the Python callback */

/* x86._IOOUT_THUNK and x86._IOIN_THUNK: UC_HOOK_INSN for out and in of an HVM vCPU. The
 * exits Xen answers without anything Python keeps are answered here and kept in the log
 * with the budget left before each, their cost charged, until Python takes the log (at
 * its next exit or the run's end): by the kind of the port (kinds, one byte a port):
 *   1 nobody's: Xen's null handler (reads all ones, writes dropped);
 *   2 the latch (a PCI address register): a dword read back, or stored unless it
 *     enables a function set in functions (then Python's);
 *   3 the latch's window: while the latch is enabled (bit 31) and its function (bits
 *     8-23: bus, device, function) is not set in functions (a bit each), nobody's;
 *   4 the clock (a timer port): a dword read gives (clock - budget.left) * mul / div
 *     & mask, while clock is set;
 *   5 the logged port (a firmware's debug port: one character per exit): a byte
 *     written that is not exit_value, while room is left (log_room), kept as the byte;
 *   6 a port whose byte reads give all ones (an index register that reads back so);
 * everything else (kind 0, another size, the log full or off) goes to the Python
 * callback. A kept exit's word: 1 << 63 | out << 56 | size << 48 | port << 32 | value.
 * void out(uc_engine *uc, uint32_t port, int size, uint32_t value, struct _IoLog *p)
 * uint32_t in(uc_engine *uc, uint32_t port, int size, struct _IoLog *p)
 * _IoLog: python_out 0, left 8 (&budget.left), cost 16, count 24, capacity 32, on 40
 * (u32), exit_value 44 (u32), latch 48 (u32), log_room 52 (u32), python_in 56, clock 64,
 * mul 72, div 80, mask 88, lefts 96 (int64 x 512), words 4192 (u64 x 512), kinds 8288
 * (u8 x 65536), functions 73824 (8192 bytes), leaves 82016 (a bit per CPUID leaf
 * 0-255, then per leaf 0x80000000-0x800000ff), reg_read 82080, leaf 82088,
 * python_cpuid 82096 */
        .section .text.ioout, "ax"
ioout:
        cmp     dword ptr [r8+40], 0            /* the log on? */
        je      9f
        mov     rax, [r8+24]                    /* count */
        cmp     rax, [r8+32]                    /* full: Python takes the log first */
        jae     9f
        movzx   r9d, si
        movzx   r9d, byte ptr [r8+r9+8288]      /* the port's kind */
        cmp     r9d, 1
        je      4f                              /* nobody's: dropped */
        cmp     r9d, 2
        je      2f
        cmp     r9d, 3
        je      3f
        cmp     r9d, 5
        jne     9f                              /* Python's */
        cmp     edx, 1                          /* the logged port: a byte, */
        jne     9f
        cmp     ecx, dword ptr [r8+44]          /* not the byte that always exits, */
        je      9f
        cmp     dword ptr [r8+52], 0            /* with room left for it */
        je      9f
        dec     dword ptr [r8+52]
        mov     r10d, ecx                       /* kept as the byte */
        jmp     5f
2:      cmp     edx, 4                          /* the latch: a dword, */
        jne     9f
        test    ecx, ecx
        jns     21f
        mov     r9d, ecx                        /* but not one that enables a claimed */
        shr     r9d, 8                          /* function: Python's, as the data */
        movzx   r9d, r9w                        /* access after it will be (one */
        bt      dword ptr [r8+73824], r9d       /* hand-over fewer) */
        jc      9f
21:     mov     [r8+48], ecx
        jmp     4f
3:      mov     r9d, [r8+48]                    /* the window: the latch enabled */
        test    r9d, r9d
        jns     9f
        shr     r9d, 8
        movzx   r9d, r9w                        /* bus, device, function */
        bt      dword ptr [r8+73824], r9d       /* a claimed function: Python's */
        jc      9f
4:      mov     r10d, edx                       /* 1 << 63 | out << 56 | size << 48 */
        or      r10d, 0x8100
        shl     r10, 16
        movzx   r9d, si
        or      r10, r9                         /* | port << 32 */
        shl     r10, 32
        mov     r9d, ecx
        or      r10, r9                         /* | value */
5:      mov     r9, [r8+8]                      /* &budget.left */
        mov     r11, [r9]
        mov     [r8+rax*8+96], r11              /* lefts[count] = the budget before it */
        mov     [r8+rax*8+4192], r10            /* words[count] */
        inc     rax
        mov     [r8+24], rax
        mov     rax, [r8+16]
        sub     [r9], rax                       /* budget.left -= the exit's cost */
        ret
9:      jmp     qword ptr [r8]                  /* tail call the Python callback */

        .section .text.ioin, "ax"
ioin:
        cmp     dword ptr [rcx+40], 0           /* the log on? */
        je      9f
        mov     rax, [rcx+24]                   /* count */
        cmp     rax, [rcx+32]                   /* full: Python takes the log first */
        jae     9f
        movzx   r9d, si
        movzx   r9d, byte ptr [rcx+r9+8288]     /* the port's kind */
        cmp     r9d, 1
        je      1f
        cmp     r9d, 2
        je      2f
        cmp     r9d, 3
        je      3f
        cmp     r9d, 6
        je      6f
        cmp     r9d, 4
        jne     9f                              /* Python's (the logged port too) */
        cmp     edx, 4                          /* the clock: a dword, */
        jne     9f
        cmp     qword ptr [rcx+64], 0           /* while set */
        je      9f
        mov     r11, rax
        mov     r9, [rcx+8]
        mov     rax, [rcx+64]
        sub     rax, [r9]                       /* now = clock - budget.left */
        mul     qword ptr [rcx+72]
        div     qword ptr [rcx+80]              /* now * mul / div */
        and     rax, [rcx+88]
        mov     r10d, eax
        mov     edx, 4
        mov     rax, r11
        jmp     4f
6:      cmp     edx, 1                          /* all ones: a byte */
        jne     9f
1:      mov     r10d, 0xff                      /* nobody's: all ones */
        cmp     edx, 1
        je      4f
        mov     r10d, 0xffff
        cmp     edx, 2
        je      4f
        mov     r10d, 0xffffffff
        jmp     4f
2:      cmp     edx, 4                          /* the latch: a dword */
        jne     9f
        mov     r10d, [rcx+48]
        jmp     4f
3:      mov     r9d, [rcx+48]                   /* the window: the latch enabled */
        test    r9d, r9d
        jns     9f
        shr     r9d, 8
        movzx   r9d, r9w                        /* bus, device, function */
        bt      dword ptr [rcx+73824], r9d      /* a claimed function: Python's */
        jc      9f
        jmp     1b
4:      mov     r9, [rcx+8]                     /* &budget.left */
        mov     r11, [r9]
        mov     [rcx+rax*8+96], r11             /* lefts[count] = the budget before it */
        mov     r11d, edx                       /* 1 << 63 | in << 56 | size << 48 */
        or      r11d, 0x8000
        shl     r11, 16
        movzx   esi, si
        or      r11, rsi                        /* | port << 32 */
        shl     r11, 32
        or      r11, r10                        /* | value */
        mov     [rcx+rax*8+4192], r11           /* words[count] */
        inc     rax
        mov     [rcx+24], rax
        mov     rax, [rcx+16]
        sub     [r9], rax                       /* budget.left -= the exit's cost */
        mov     eax, r10d
        ret
9:      jmp     qword ptr [rcx+56]              /* tail call the Python callback */


/* x86._CPUID_THUNK: UC_HOOK_INSN for cpuid of an HVM vCPU, on the same log: a leaf the
 * CPU model answers itself (set in leaves) is kept, 1 << 62 | leaf, its cost charged, and
 * left to unicorn's own CPUID (0); any other leaf, the log full or off, goes to Python.
 * int cb(uc_engine *uc, struct _IoLog *p) */
        .section .text.cpuid, "ax"
cpuid:
        cmp     dword ptr [rsi+40], 0           /* the log on? */
        je      9f
        mov     rax, [rsi+24]
        cmp     rax, [rsi+32]                   /* full: Python takes the log first */
        jae     9f
        push    rdi
        push    rsi
        push    rbx                             /* (the stack 16-byte aligned) */
        mov     rbx, rsi
        mov     esi, 19                         /* UC_X86_REG_EAX */
        lea     rdx, [rbx+82088]
        call    qword ptr [rbx+82080]           /* uc_reg_read(uc, EAX, &leaf) */
        test    eax, eax
        jnz     7f
        mov     ecx, dword ptr [rbx+82088]      /* the leaf */
        cmp     ecx, 0x100
        jb      1f
        lea     edx, [rcx-0x80000000]           /* 0x80000000-0x800000ff: bits 256 on */
        cmp     edx, 0x100
        jae     7f
        lea     ecx, [rdx+0x100]
1:      bt      dword ptr [rbx+82016], ecx      /* answered by the CPU model? */
        jnc     7f
        mov     rax, [rbx+24]                   /* count */
        mov     r9, [rbx+8]                     /* &budget.left */
        mov     r11, [r9]
        mov     [rbx+rax*8+96], r11             /* lefts[count] = the budget before it */
        mov     r10d, dword ptr [rbx+82088]
        bts     r10, 62                         /* words[count] = 1 << 62 | leaf */
        mov     [rbx+rax*8+4192], r10
        inc     rax
        mov     [rbx+24], rax
        mov     rax, [rbx+16]
        sub     [r9], rax                       /* budget.left -= the exit's cost */
        pop     rbx
        pop     rsi
        pop     rdi
        xor     eax, eax                        /* unicorn's own CPUID */
        ret
7:      pop     rbx
        pop     rsi
        pop     rdi
9:      jmp     qword ptr [rsi+82096]           /* tail call the Python callback */

/* x86._CRWATCH_THUNK: UC_HOOK_CODE on each move to a control register an HVM vCPU's new
 * code may hold, while the identity TLB is on: the instruction at the hook (at most four
 * prefixes, 0f 22, ModRM) is read, and only a move to CR0 whose source register has PG
 * set goes to the Python callback, which leaves the identity TLB (so does an unreadable
 * instruction, and every one while a block counter is attached: python_only); once
 * the TLB is the page walk's (identity 0) nothing is to be watched.
 * void cb(uc_engine *uc, uint64_t address, uint32_t size, struct _CrWatch *w)
 * _CrWatch: python 0, identity 8 (u32), python_only 12 (u32), mem_read 16, reg_read 24,
 * code 32 (16 bytes), value 48, regs 56 (u32 x 8: EAX..EDI's ids), answered 88,
 * prefixes 96 (a bit per byte value) */
        .section .text.crwatch, "ax"
crwatch:
        cmp     dword ptr [rcx+12], 0           /* a counter attached: Python's */
        jne     9f
        cmp     dword ptr [rcx+8], 0            /* paging on already: nothing to see */
        je      8f
        push    rdi
        push    rsi
        push    rdx
        push    rcx
        push    rbx                             /* (the stack 16-byte aligned) */
        mov     rbx, rcx
        lea     rdx, [rbx+32]
        mov     ecx, 8
        call    qword ptr [rbx+16]              /* uc_mem_read(uc, address, code, 8) */
        test    eax, eax
        jnz     7f                              /* unreadable: Python's */
        xor     eax, eax
1:      movzx   ecx, byte ptr [rbx+rax+32]      /* at most four prefixes */
        bt      dword ptr [rbx+96], ecx
        jnc     2f
        inc     eax
        cmp     eax, 4
        jb      1b
2:      cmp     byte ptr [rbx+rax+32], 0x0f
        jne     6f                              /* not a move to a control register */
        cmp     byte ptr [rbx+rax+33], 0x22
        jne     6f
        movzx   ecx, byte ptr [rbx+rax+34]      /* ModRM */
        test    ecx, 0x38
        jnz     6f                              /* to CR2, CR3, CR4 */
        and     ecx, 7
        mov     esi, [rbx+rcx*4+56]             /* the source register */
        mov     rdi, [rsp+32]                   /* uc */
        lea     rdx, [rbx+48]
        call    qword ptr [rbx+24]              /* uc_reg_read(uc, id, &value) */
        test    eax, eax
        jnz     7f
        test    dword ptr [rbx+48], 0x80000000  /* PG: Python leaves the identity TLB */
        jnz     7f
6:      inc     qword ptr [rbx+88]              /* answered here */
        pop     rbx
        pop     rcx
        pop     rdx
        pop     rsi
        pop     rdi
8:      ret
7:      pop     rbx
        pop     rcx
        pop     rdx
        pop     rsi
        pop     rdi
9:      jmp     qword ptr [rcx]                 /* tail call the Python callback */

/* x86._NEWTB_THUNK: UC_HOOK_EDGE_GENERATED of an HVM vCPU. A new block with none of
 * the code traps' patterns in its bytes (x86._ANY_CODE_TRAP: wrmsr, rdmsr, mov to CR,
 * rdrand to a register, F3 and at most two segment or size prefixes before ins/outs)
 * needs nothing, while the
 * identity TLB is on (enabled 1: read guest-physical, and only in pages whose first code
 * Python has seen) or once paging is on (enabled 2: read through the guest's page
 * tables); the rest go to Python.
 * void cb(uc_engine *uc, uc_tb *cur, uc_tb *prev, struct _NewTb *t)
 * uc_tb: pc 0, icount 8, size 10. _NewTb: python 0, mem_read 8, seen 16 (a bit per
 * 4 KiB page below 4 GiB), enabled 24, answered 32, vmem_read 40, buf 48 (8192 bytes) */
        .section .text.newtb, "ax"
newtb:
        mov     rax, [rcx+24]                   /* enabled? */
        test    rax, rax
        je      9f
        movzx   eax, word ptr [rsi+10]          /* size */
        test    eax, eax
        jz      8f                              /* nothing translated */
        cmp     eax, 8192
        ja      9f
        mov     r8, [rsi]                       /* pc */
        cmp     qword ptr [rcx+24], 1
        jne     10f                             /* paging on: no page bitmap */
        lea     r9, [r8+rax-1]
        shr     r9, 12                          /* its last page */
        cmp     r9, 0x100000
        jae     9f                              /* at or above 4 GiB */
        mov     r10, r8
        shr     r10, 12                         /* its first page */
        mov     r11, [rcx+16]
        bt      [r11], r10                      /* code new to a page: Python notes it */
        jnc     9f
        bt      [r11], r9
        jnc     9f
10:     push    rbx                             /* (five: the stack 16-byte aligned) */
        push    r12
        push    r13
        push    r14
        push    r15
        mov     rbx, rdi
        mov     r12, rsi
        mov     r13, rdx
        mov     r14, rcx
        mov     r15, rax
        mov     rsi, r8
        cmp     qword ptr [r14+24], 1
        jne     11f
        lea     rdx, [r14+48]
        mov     rcx, r15
        call    qword ptr [r14+8]               /* uc_mem_read(uc, pc, buf, size) */
        jmp     12f
11:     mov     edx, 4                          /* UC_PROT_EXEC */
        lea     rcx, [r14+48]
        mov     r8, r15
        call    qword ptr [r14+40]              /* uc_vmem_read(uc, pc, EXEC, buf, size) */
12:     test    eax, eax
        jnz     7f                              /* unreadable: Python decides */
        lea     rsi, [r14+48]                   /* p */
        lea     rdi, [rsi+r15]                  /* end */
1:      cmp     rsi, rdi
        jae     6f                              /* no pattern: done */
        movzx   eax, byte ptr [rsi]
        inc     rsi
        cmp     al, 0x0f
        je      2f
        cmp     al, 0xf3
        jne     1b
        mov     rdx, rsi                        /* F3: up to two prefixes, ins/outs? */
        mov     ecx, 3
3:      cmp     rdx, rdi
        jae     1b
        movzx   eax, byte ptr [rdx]
        inc     rdx
        mov     r8d, eax
        and     r8d, 0xfc
        cmp     r8d, 0x6c                       /* 6C-6F: ins, outs */
        je      7f
        dec     ecx
        jz      1b
        cmp     al, 0x64                        /* FS, GS, operand and address size */
        jb      4f
        cmp     al, 0x67
        jbe     3b
4:      and     eax, 0xe7
        cmp     eax, 0x26                       /* ES, CS, SS, DS */
        je      3b
        jmp     1b
2:      cmp     rsi, rdi
        jae     6f
        movzx   eax, byte ptr [rsi]             /* 0F: then 22, 30 or 32? */
        cmp     al, 0x22
        je      7f
        cmp     al, 0x30
        je      7f
        cmp     al, 0x32
        je      7f
        cmp     al, 0xc7                        /* or C7 F0-F7: rdrand r */
        jne     1b
        lea     rdx, [rsi+1]
        cmp     rdx, rdi
        jae     1b
        movzx   eax, byte ptr [rsi+1]
        and     eax, 0xf8
        cmp     eax, 0xf0
        je      7f
        jmp     1b
6:      inc     qword ptr [r14+32]              /* answered */
        pop     r15
        pop     r14
        pop     r13
        pop     r12
        pop     rbx
8:      ret
7:      mov     rdi, rbx
        mov     rsi, r12
        mov     rdx, r13
        mov     rcx, r14
        pop     r15
        pop     r14
        pop     r13
        pop     r12
        pop     rbx
9:      jmp     qword ptr [rcx]                 /* tail call the Python callback */

/* x86._NEWTB64_THUNK: UC_HOOK_EDGE_GENERATED of a PV vCPU (64-bit, its addresses
 * virtual). A new block with no rdtsc (0F 31), rdtscp (0F 01 F9) or rdrand to a register
 * (0F C7 F0-F7) in its bytes (what x86._RDTSC and x86._RDRAND need) needs nothing; the
 * rest go to Python, which traps them.
 * void cb(uc_engine *uc, uc_tb *cur, uc_tb *prev, struct _NewTb *t)
 * _NewTb as above (vmem_read, answered, buf) */
        .section .text.newtb64, "ax"
newtb64:
        cmp     qword ptr [rcx+24], 0           /* enabled? */
        je      9f
        movzx   eax, word ptr [rsi+10]          /* size */
        test    eax, eax
        jz      8f                              /* nothing translated */
        cmp     eax, 8192
        ja      9f
        push    rbx                             /* (five: the stack 16-byte aligned) */
        push    r12
        push    r13
        push    r14
        push    r15
        mov     rbx, rdi
        mov     r12, rsi
        mov     r13, rdx
        mov     r14, rcx
        mov     r15, rax
        mov     rsi, [r12]                      /* pc */
        mov     edx, 4                          /* UC_PROT_EXEC */
        lea     rcx, [r14+48]
        mov     r8, r15
        call    qword ptr [r14+40]              /* uc_vmem_read(uc, pc, EXEC, buf, size) */
        test    eax, eax
        jnz     7f                              /* unreadable: Python decides */
        lea     rsi, [r14+48]                   /* p */
        lea     rdi, [rsi+r15-1]                /* the last byte */
1:      cmp     rsi, rdi
        jae     6f                              /* no pattern: done */
        cmp     byte ptr [rsi], 0x0f
        jne     2f
        movzx   eax, byte ptr [rsi+1]
        cmp     al, 0x31                        /* rdtsc */
        je      7f
        cmp     al, 0xc7
        je      3f
        cmp     al, 0x01
        jne     2f
        lea     rax, [rsi+2]
        cmp     rax, rdi
        ja      2f
        cmp     byte ptr [rsi+2], 0xf9          /* rdtscp */
        je      7f
        jmp     2f
3:      lea     rax, [rsi+2]
        cmp     rax, rdi
        ja      2f
        movzx   eax, byte ptr [rsi+2]
        and     eax, 0xf8
        cmp     eax, 0xf0                       /* C7 F0-F7: rdrand r */
        je      7f
2:      inc     rsi
        jmp     1b
6:      inc     qword ptr [r14+32]              /* answered */
        pop     r15
        pop     r14
        pop     r13
        pop     r12
        pop     rbx
8:      ret
7:      mov     rdi, rbx
        mov     rsi, r12
        mov     rdx, r13
        mov     rcx, r14
        pop     r15
        pop     r14
        pop     r13
        pop     r12
        pop     rbx
9:      jmp     qword ptr [rcx]                 /* tail call the Python callback */

/* icount._CODE: UC_HOOK_CODE over every address, the instruction counter.
 * void cb(uc_engine *uc, uint64_t address, uint32_t size, struct _Counter *c)
 * _Counter: count 0, target 8, stop 16 (uc_emu_stop), window 24 (&budget.window),
 * reached 32, brk 40, brk_after 48, ring 56 (16 addresses), trap 184, traps 192 */
        .section .text.icount, "ax"
icount:
        mov     rax, [rcx]                      /* count */
        cmp     rax, [rcx+8]                    /* the target reached? */
        jae     3f
        cmp     rsi, [rcx+40]                   /* the breakpoint's address? */
        jne     1f
        cmp     rax, [rcx+48]                   /* ... and armed (count >= brk_after)? */
        jae     3f
1:      mov     r8d, eax
        and     r8d, 15                         /* RING - 1 */
        mov     [rcx+r8*8+56], rsi              /* ring[count % RING] = address */
        inc     qword ptr [rcx]                 /* count += 1 */
        movzx   eax, si                         /* the address's low 16 bits */
        bt      [rcx+192], rax                  /* a code trap there? */
        jc      2f
        ret
2:      mov     rax, [rcx+184]                  /* the traps' dispatcher (Python) */
        jmp     rax                             /* tail call it, same arguments */
3:      mov     qword ptr [rcx+32], 1           /* reached = 1 */
        mov     rax, [rcx+24]                   /* &budget.window (0: none) */
        test    rax, rax
        jz      4f
        mov     qword ptr [rax], 0              /* disarm the interrupt window */
4:      mov     rax, [rcx+16]
        jmp     rax                             /* tail call uc_emu_stop(uc) */

/* icount._BLOCK_CODE: UC_HOOK_BLOCK of the block counter, one call per block entered.
 * void cb(uc_engine *uc, uint64_t pc, uint32_t size, struct _Blocks *c)
 * _Blocks: count 0, target 8, stop 16, window 24, reached 32, brk 40, brk_after 48,
 * python 56, in_fine 64, seq 72, last_pc 80, last_size 88, last_count 96, trap 104,
 * ring_pc 112, ring_size 240, ring_count 368, traps 496, table 8688 (65536 x 16 bytes:
 * pc, size, instructions; bit 31 of instructions: a fine block) */
        .section .text.bcount, "ax"
bcount:
        mov     edx, edx                        /* size, zero-extended */
        mov     rax, rsi
        shr     rax, 13
        xor     rax, rsi
        and     eax, 0xFFFF                     /* hash(pc) = (pc ^ pc >> 13) % 65536 */
        shl     eax, 4
        lea     r8, [rcx+rax+8688]              /* &table[hash(pc)] */
        cmp     rsi, [r8]                       /* this block's entry? */
        jne     9f
        cmp     edx, [r8+8]                     /* ... of the same size? */
        jne     9f
        mov     r9d, [r8+12]                    /* its instructions */
        mov     rax, [rcx]                      /* count before it */
        test    r9d, r9d
        js      2f                              /* a fine block: counted one by one */
        lea     r10, [rax+r9]
        cmp     r10, [rcx+8]                    /* would it pass the target? */
        ja      9f
        mov     r11, [rcx+40]
        sub     r11, rsi
        cmp     r11, rdx                        /* the breakpoint inside it? */
        jb      9f
        mov     [rcx], r10                      /* count += instructions */
        xor     r9d, r9d                        /* in_fine = 0 */
        jmp     3f
2:      mov     r9d, 1                          /* in_fine = 1 */
3:      mov     [rcx+64], r9
        mov     [rcx+80], rsi                   /* last_pc */
        mov     [rcx+88], rdx                   /* last_size */
        mov     [rcx+96], rax                   /* last_count */
        mov     r8, [rcx+72]
        inc     qword ptr [rcx+72]              /* seq += 1 */
        and     r8d, 15                         /* RING - 1 */
        mov     [rcx+r8*8+112], rsi             /* ring_pc[seq % RING] */
        mov     [rcx+r8*8+240], rdx             /* ring_size */
        mov     [rcx+r8*8+368], rax             /* ring_count */
        ret
9:      jmp     qword ptr [rcx+56]              /* a new block, the target or the
                                                   breakpoint: Python, same arguments */

/* icount._FINE_CODE: UC_HOOK_CODE over a fine block (the one the target or the
 * breakpoint is in): counts its instructions one by one, stops before the target.
 * void cb(uc_engine *uc, uint64_t address, uint32_t size, struct _Blocks *c) */
        .section .text.bfine, "ax"
bfine:
        cmp     qword ptr [rcx+64], 0           /* running the fine block itself? */
        je      2f
        mov     rax, [rcx]
        cmp     rax, [rcx+8]                    /* the target reached? */
        jae     3f
        cmp     rsi, [rcx+40]                   /* the breakpoint's address? */
        jne     1f
        cmp     rax, [rcx+48]                   /* ... and armed? */
        jae     3f
1:      inc     qword ptr [rcx]                 /* count += 1 */
2:      movzx   eax, si
        bt      [rcx+496], rax                  /* a code trap adopted there? */
        jc      4f
        ret
4:      jmp     qword ptr [rcx+104]             /* the traps' dispatcher (Python) */
3:      mov     qword ptr [rcx+32], 1           /* reached = 1 */
        mov     rax, [rcx+24]                   /* &budget.window (0: none) */
        test    rax, rax
        jz      5f
        mov     qword ptr [rax], 0              /* disarm the interrupt window */
5:      jmp     qword ptr [rcx+16]              /* tail call uc_emu_stop(uc) */

/* icount._EDGE_CODE: UC_HOOK_EDGE_GENERATED of the block counter: a block unicorn has
 * just translated goes into the table with its instruction count (tb->icount), so the
 * block hook finds it without Python. An entry of the same block is kept (it may be fine).
 * void cb(uc_engine *uc, uc_tb *cur, uc_tb *prev, struct _Blocks *c)
 * uc_tb: pc 0, icount 8 (uint16), size 10 (uint16) */
        .section .text.bedge, "ax"
bedge:
        mov     rax, [rsi]                      /* cur->pc */
        movzx   r9d, word ptr [rsi+8]           /* cur->icount */
        movzx   r10d, word ptr [rsi+10]         /* cur->size */
        test    r9d, r9d
        jz      2f
        mov     r8, rax
        shr     r8, 13
        xor     r8, rax
        and     r8d, 0xFFFF
        shl     r8d, 4
        lea     r8, [rcx+r8+8688]               /* &table[hash(pc)] */
        cmp     rax, [r8]
        jne     1f
        cmp     r10d, [r8+8]
        je      2f                              /* known already (perhaps fine): kept */
1:      mov     [r8], rax
        mov     [r8+8], r10d
        mov     [r8+12], r9d
2:      ret

/* x86._WALK_THUNK: UC_HOOK_TLB_FILL once an HVM guest has paging on: the page walk.
 * bool walk(uc_engine *uc, uint64_t addr, uc_mem_type type, uc_tlb_entry *e,
 *           struct walk *w)
 * The source is xenlab/cpu/walk.c (it says what runs and why); what follows is what
 * gcc 12.2 made of it with the options written there, unchanged. */
        .section .text.walk, "ax"
	.p2align 4
walk:
	push	r15
	mov	eax, edx
	push	r14
	push	r13
	push	r12
	push	rbp
	mov	rbp, rcx
	push	rbx
	mov	rbx, rsi
	sub	rsp, 56
	mov	rdx, QWORD PTR [r8]
	mov	rcx, QWORD PTR [r8+24]
	mov	rsi, QWORD PTR [rdx]
	mov	r11, QWORD PTR [rcx]
	mov	rdx, QWORD PTR [r8+16]
	mov	rcx, QWORD PTR [r8+32]
	mov	rdx, QWORD PTR [rdx]
	mov	ecx, DWORD PTR [rcx]
	test	esi, 2147483648
	je	.L54
	cmp	rbx, -8193
	ja	.L55
	test	edx, 6295552
	jne	.L4
	movabs	r9, -9218868505946882048
	mov	rdi, r11
	mov	r14, rdx
	and	edi, 2048
	mov	QWORD PTR [rsp+16], rdi
	movabs	rdi, 4503530907893760
	cmove	rdi, r9
	and	ecx, 3
	cmp	ecx, 3
	sete	r9b
	cmp	eax, 17
	sete	r10b
	and	r14d, 32
	mov	QWORD PTR [rsp+8], r14
	jne	.L152
	mov	rdi, QWORD PTR [r8+8]
	mov	r11, rbx
	mov	r12, QWORD PTR [r8+48]
	shr	r11, 20
	mov	r13, QWORD PTR [r8+40]
	mov	rdi, QWORD PTR [rdi]
	and	r11d, 4092
	and	rdi, -4096
	or	r11, rdi
	shr	rdi, 12
	and	edi, 1048575
	cmp	rdi, r12
	jnb	.L4
	mov	rdi, QWORD PTR [r13+0+rdi*8]
	test	rdi, rdi
	je	.L4
	and	r11d, 4095
	add	rdi, r11
	mov	r15d, DWORD PTR [rdi]
	test	r15b, 1
	je	.L15
	test	r15b, -128
	je	.L16
	test	dl, 16
	je	.L16
	test	r15d, 2097152
	jne	.L4
	mov	r11, r15
	xor	r13d, r13d
	mov	r14d, 4194304
	movabs	r12, 1095216660480
	sal	r11, 19
	and	r11, r12
	or	r11, r15
	jmp	.L14
	.p2align 4,,10
	.p2align 3
.L55:
	mov	r12d, 7
.L3:
	mov	QWORD PTR [rbp+0], rbx
	mov	eax, 1
	mov	DWORD PTR [rbp+8], r12d
	add	rsp, 56
	pop	rbx
	pop	rbp
	pop	r12
	pop	r13
	pop	r14
	pop	r15
	ret
	.p2align 4,,10
	.p2align 3
.L54:
	mov	r12d, 7
.L2:
	mov	rdi, rbx
	shr	rdi, 32
	jne	.L3
	mov	rcx, rbx
	mov	edx, 1
	mov	rsi, rbx
	shr	rcx, 12
	shr	rsi, 18
	sal	rdx, cl
	mov	rcx, QWORD PTR [r8+56]
	mov	rdi, rdx
	lea	rcx, [rcx+rsi*8]
	mov	rsi, QWORD PTR [rcx]
	and	rdi, rsi
	cmp	eax, 18
	je	.L153
	mov	eax, r12d
	and	eax, -5
	test	rdi, rdi
	cmove	r12d, eax
	jmp	.L3
	.p2align 4,,10
	.p2align 3
.L152:
	test	r11d, 1024
	je	.L7
	mov	r11, rbx
	sar	r11, 47
	add	r11, 1
	cmp	r11, 1
	jbe	.L154
	.p2align 4,,10
	.p2align 3
.L4:
	mov	eax, 2
.L50:
	mov	QWORD PTR [r8+80], rax
	xor	eax, eax
	mov	QWORD PTR [r8+96], rbx
	add	rsp, 56
	pop	rbx
	pop	rbp
	pop	r12
	pop	r13
	pop	r14
	pop	r15
	ret
	.p2align 4,,10
	.p2align 3
.L16:
	test	r15b, 32
	je	.L155
.L17:
	mov	r11, rbx
	mov	edi, r15d
	shr	r11, 10
	and	edi, -4096
	and	r11d, 4092
	or	r11, rdi
	shr	rdi, 12
	cmp	rdi, r12
	jnb	.L4
	mov	rdi, QWORD PTR [r13+0+rdi*8]
	test	rdi, rdi
	je	.L4
	and	r11d, 4095
	add	rdi, r11
	mov	r12d, DWORD PTR [rdi]
	test	r12b, 1
	je	.L15
	mov	r11d, r12d
	and	r15d, r12d
	xor	r13d, r13d
	mov	r14d, 4096
.L14:
	cmp	ecx, 3
	je	.L156
	test	r15b, 2
	jne	.L32
	test	esi, 65536
	je	.L32
	mov	r12d, 1
	test	r15, r15
	js	.L157
.L27:
	test	edx, 1048576
	je	.L36
	and	r15d, 4
	je	.L36
	cmp	eax, 18
	je	.L25
.L37:
	cmp	eax, 17
	je	.L158
.L24:
	test	r11b, 32
	jne	.L40
	mov	edx, 32
.L39:
	test	r13, r13
	je	.L41
	mov	rcx, QWORD PTR [r13+0]
	and	rcx, rdx
	cmp	rdx, rcx
	je	.L42
	lock or	QWORD PTR [r13+0], rdx
.L42:
	or	r11, rdx
.L40:
	movabs	rcx, 4503599627366400
	mov	edx, r12d
	and	edx, -3
	test	r11b, 64
	cmove	r12d, edx
	mov	rdx, r14
	neg	rdx
	and	rdx, r11
	and	rdx, rcx
	lea	rcx, [r14-4096]
	and	rcx, rbx
	or	rdx, rcx
	mov	rdi, rdx
	shr	rdi, 36
	jne	.L4
	mov	rbx, rdx
	jmp	.L2
	.p2align 4,,10
	.p2align 3
.L7:
	mov	r11, QWORD PTR [r8+8]
	mov	r13, rbx
	mov	r12, QWORD PTR [r8+48]
	shr	r13, 27
	mov	r14, QWORD PTR [r8+40]
	mov	r11, QWORD PTR [r11]
	and	r13d, 24
	and	r11, -32
	or	r13, r11
	shr	r11, 12
	and	r11d, 1048575
	cmp	r11, r12
	jnb	.L4
	mov	r11, QWORD PTR [r14+r11*8]
	test	r11, r11
	je	.L4
	and	r13d, 4095
	mov	r13, QWORD PTR [r11+r13]
	test	r13b, 1
	je	.L8
	mov	r15, r13
	shr	r15, 36
	jne	.L4
	movabs	r11, 9218868437227405312
	movabs	r15, -9223372036854775802
	mov	QWORD PTR [rsp+24], r15
	or	rdi, r11
	jmp	.L10
	.p2align 4,,10
	.p2align 3
.L153:
	test	rdi, rdi
	jne	.L3
	or	rdx, rsi
	mov	rdi, QWORD PTR [r8+72]
	mov	QWORD PTR [rcx], rdx
	call	[QWORD PTR [r8+64]]
	jmp	.L3
	.p2align 4,,10
	.p2align 3
.L15:
	movzx	esi, r10b
	movzx	r9d, r9b
	add	rsi, rsi
	sal	r9, 2
	or	rsi, r9
	cmp	eax, 18
	je	.L52
.L47:
	mov	eax, 1
	cmp	ecx, 3
	je	.L147
.L31:
	mov	QWORD PTR [r8+88], rsi
	jmp	.L50
	.p2align 4,,10
	.p2align 3
.L154:
	mov	r11, QWORD PTR [r8+8]
	mov	r12, QWORD PTR [r8+48]
	movabs	r13, 4503599627366400
	mov	r14, QWORD PTR [r8+40]
	and	r13, QWORD PTR [r11]
	mov	r11, rbx
	shr	r11, 36
	and	r11d, 4088
	or	r11, r13
	shr	r13, 12
	cmp	r13, r12
	jnb	.L4
	mov	r15, QWORD PTR [r14+r13*8]
	test	r15, r15
	je	.L4
	and	r11d, 4095
	lea	r13, [r15+r11]
	mov	r11, QWORD PTR [r13+0]
	test	r11b, 1
	je	.L8
	mov	r15, rdi
	or	r15b, -128
	mov	QWORD PTR [rsp+32], r15
	test	r15, r11
	jne	.L4
	test	r11b, 32
	jne	.L9
	lock or	QWORD PTR [r13+0], 32
	mov	r14, QWORD PTR [r8+40]
	mov	r12, QWORD PTR [r8+48]
.L9:
	movabs	r13, 4503599627366400
	mov	r15, rbx
	shr	r15, 27
	and	r13, r11
	and	r15d, 4088
	or	r15, r13
	shr	r13, 12
	mov	QWORD PTR [rsp+24], r15
	cmp	r13, r12
	jnb	.L4
	mov	r15, QWORD PTR [r14+r13*8]
	test	r15, r15
	je	.L4
	mov	r13, QWORD PTR [rsp+24]
	and	r13d, 4095
	add	r15, r13
	mov	r13, QWORD PTR [r15]
	mov	QWORD PTR [rsp+40], r15
	test	r13b, 1
	je	.L8
	movabs	r15, -9223372036854775808
	xor	r11, r15
	xor	r15, r13
	and	r15, r11
	mov	QWORD PTR [rsp+24], r15
	test	QWORD PTR [rsp+32], r13
	jne	.L4
	test	r13b, 32
	jne	.L10
	mov	r15, QWORD PTR [rsp+40]
	lock or	QWORD PTR [r15], 32
	mov	r14, QWORD PTR [r8+40]
	mov	r12, QWORD PTR [r8+48]
	.p2align 4,,10
	.p2align 3
.L10:
	movabs	r11, 4503599627366400
	mov	r15, rbx
	shr	r15, 18
	and	r11, r13
	and	r15d, 4088
	or	r15, r11
	shr	r11, 12
	cmp	r11, r12
	jnb	.L4
	mov	r13, QWORD PTR [r14+r11*8]
	test	r13, r13
	je	.L4
	and	r15d, 4095
	add	r13, r15
	mov	r11, QWORD PTR [r13+0]
	test	r11b, 1
	je	.L8
	mov	r15, r11
	btc	r15, 63
	and	r15, QWORD PTR [rsp+24]
	test	r11b, -128
	je	.L11
	or	rdi, 2088960
	mov	r14d, 2097152
.L12:
	test	r11, rdi
	jne	.L4
	btc	r15, 63
	xor	edi, edi
	jmp	.L14
	.p2align 4,,10
	.p2align 3
.L155:
	lock or	DWORD PTR [rdi], 32
	mov	r13, QWORD PTR [r8+40]
	mov	r12, QWORD PTR [r8+48]
	jmp	.L17
	.p2align 4,,10
	.p2align 3
.L8:
	movzx	esi, r10b
	movzx	r9d, r9b
	add	rsi, rsi
	sal	r9, 2
	or	rsi, r9
	cmp	eax, 18
	jne	.L47
.L51:
	cmp	QWORD PTR [rsp+8], 0
	je	.L52
	cmp	QWORD PTR [rsp+16], 0
	je	.L52
.L48:
	or	rsi, 16
	jmp	.L47
	.p2align 4,,10
	.p2align 3
.L52:
	test	edx, 1048576
	je	.L47
	jmp	.L48
.L19:
	movzx	esi, r10b
	add	rsi, rsi
	or	rsi, 5
	cmp	eax, 18
	je	.L51
	.p2align 4,,10
	.p2align 3
.L147:
	mov	eax, 3
	jmp	.L31
	.p2align 4,,10
	.p2align 3
.L32:
	mov	r12d, 3
	test	r15, r15
	jns	.L27
.L21:
	cmp	eax, 18
	je	.L25
	mov	r12d, 3
.L150:
	cmp	eax, 17
	jne	.L24
.L23:
	mov	rcx, r11
	mov	edx, 96
	and	ecx, 96
	cmp	rcx, 96
	jne	.L39
	jmp	.L40
	.p2align 4,,10
	.p2align 3
.L156:
	test	r15b, 4
	je	.L19
	test	r15b, 2
	je	.L20
	test	r15, r15
	js	.L21
	mov	r12d, 7
	cmp	eax, 18
	jne	.L150
	jmp	.L24
	.p2align 4,,10
	.p2align 3
.L36:
	or	r12d, 4
	cmp	eax, 18
	jne	.L37
	jmp	.L24
.L25:
	movzx	esi, r9b
	movzx	eax, r10b
	sal	rsi, 2
	add	rax, rax
	or	rsi, rax
	or	rsi, 1
	jmp	.L51
.L20:
	test	r15, r15
	js	.L29
	cmp	eax, 18
	je	.L61
	cmp	eax, 17
	je	.L63
.L61:
	mov	r12d, 5
	jmp	.L24
.L11:
	test	rdi, r11
	jne	.L4
	test	r11b, 32
	jne	.L13
	lock or	QWORD PTR [r13+0], 32
	mov	r14, QWORD PTR [r8+40]
	mov	r12, QWORD PTR [r8+48]
.L13:
	mov	r13, rbx
	shr	r13, 9
	and	r13d, 4088
	mov	QWORD PTR [rsp+24], r13
	movabs	r13, 4503599627366400
	and	r13, r11
	mov	r11, QWORD PTR [rsp+24]
	or	r11, r13
	shr	r13, 12
	cmp	r13, r12
	jnb	.L4
	mov	r13, QWORD PTR [r14+r13*8]
	test	r13, r13
	je	.L4
	and	r11d, 4095
	add	r13, r11
	mov	r11, QWORD PTR [r13+0]
	test	r11b, 1
	je	.L8
	mov	r12, r11
	mov	r14d, 4096
	btc	r12, 63
	and	r15, r12
	jmp	.L12
.L41:
	mov	ecx, DWORD PTR [rdi]
	and	ecx, edx
	cmp	edx, ecx
	je	.L42
	lock or	DWORD PTR [rdi], edx
	jmp	.L42
.L158:
	test	r12b, 2
	jne	.L23
	movzx	esi, r10b
	mov	eax, 1
	add	rsi, rsi
	or	rsi, 1
	jmp	.L31
.L29:
	cmp	eax, 18
	je	.L25
	mov	r12d, 1
	cmp	eax, 17
	jne	.L24
.L63:
	mov	esi, 7
	jmp	.L147
.L157:
	cmp	eax, 18
	je	.L25
	cmp	eax, 17
	jne	.L24
	mov	esi, 3
	mov	eax, 1
	jmp	.L31
