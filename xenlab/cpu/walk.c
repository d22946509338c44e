/*
 * The page walk of an HVM vCPU's virtual TLB once the guest has paging on (x86.py,
 * X86Vcpu._enter_walk), as the source of native.S's .text.walk: QEMU's own walk
 * (target/i386/excp_helper.c, handle_mmu_fault, as unicorn 2.1.4 has it) for the
 * accesses it can judge alone, so that data pages are entered without execute
 * permission and their stores run at full speed (BENCHMARKS.md, "The interrupt
 * window read in place, and the page walk").
 *
 * bool walk(uc_engine *uc, uint64_t addr, uc_mem_type type, uc_tlb_entry *e,
 *           struct walk *w): UC_HOOK_TLB_FILL. It reads the guest's page tables in
 * host memory (w->host: a host address per guest-physical page of RAM) and sets the
 * accessed and dirty bits as the CPU does. It returns false, with w->verdict, for a
 * page fault (1: w->error_code is QEMU's; 3: the same at CPL 3, where only the caller
 * can tell an implicit supervisor access from the program's own) and for everything
 * it leaves to QEMU's walk (2): reserved bits, 1 GiB pages, SMAP, protection keys,
 * 5-level paging, tables outside RAM.
 *
 * Built with: gcc -O2 -S -masm=intel -fno-pic -fno-asynchronous-unwind-tables
 *             -fcf-protection=none -fno-stack-protector -mno-red-zone walk.c
 * (gcc 12.2, Debian 12); native.S carries the output (tests/test_walk.py checks it
 * where that gcc is installed), x86.py its bytes (tests/test_cpu.py checks them).
 *
 * Real Xen: none (the hardware's page walk; Xen's own for PV guests is
 * xen/arch/x86/mm.c and xen/arch/x86/pv/ro-page-fault.c).
 */
#include <stdbool.h>
#include <stdint.h>

typedef struct { uint64_t paddr; uint32_t perms; } uc_tlb_entry;

struct walk {
    const uint64_t *cr0, *cr3, *cr4, *efer; /* 0 8 16 24: into the engine's CPUX86State */
    const uint32_t *hflags;                 /* 32: CPL in its low two bits */
    uint8_t *const *host;                   /* 40: host address of each guest-physical page */
    uint64_t pages;                         /* 48: entries in host[] */
    uint64_t *code_pages;                   /* 56: a bit per page below 4 GiB that held code */
    void (*flush)(void *cpu);               /* 64: tlb_flush */
    void *cpu;                              /* 72 */
    uint64_t verdict;                       /* 80: its last refusal: 1 a #PF (error_code),
                                               2 left to QEMU, 3 a #PF if the access was
                                               explicit (x86.py clears it before a run) */
    uint64_t error_code;                    /* 88 */
    uint64_t refused;                       /* 96: the page it refused last */
};

#define PG_P 1ull
#define PG_RW 2ull
#define PG_US 4ull
#define PG_A 0x20ull
#define PG_D 0x40ull
#define PG_PS 0x80ull
#define PG_NX (1ull << 63)
#define PG_ADDR 0x000ffffffffff000ull
#define PG_HI 0x7ff0000000000000ull
#define PHYS_LIMIT (1ull << 36)             /* below every phys_bits the CPU may have */
#define CR0_PG 0x80000000ull
#define CR0_WP 0x10000ull
#define CR4_PSE 0x10ull
#define CR4_PAE 0x20ull
#define CR4_LA57 0x1000ull
#define CR4_SMEP 0x100000ull
#define CR4_SMAP 0x200000ull
#define CR4_PKE 0x400000ull
#define EFER_LMA 0x400ull
#define EFER_NXE 0x800ull
/* uc_emu_start looks up the code at the address before its ``until`` (x86._UNTIL) before
 * the CPU runs, where a refusal cannot be raised: those two pages are entered 1:1 */
#define UNTIL_PAGE 0xffffffffffffe000ull
#define UC_MEM_WRITE 17
#define UC_MEM_FETCH 18

static inline void *table(const struct walk *w, uint64_t paddr)
{
    uint64_t pfn = paddr >> 12;
    if (pfn >= w->pages || !w->host[pfn])
        return 0;
    return w->host[pfn] + (paddr & 0xfff);
}

static inline void set_bits(uint64_t *p, uint64_t bits)
{
    if ((*p & bits) != bits)
        __atomic_fetch_or(p, bits, __ATOMIC_RELAXED);
}

static inline void set_bits32(uint32_t *p, uint32_t bits)
{
    if ((*p & bits) != bits)
        __atomic_fetch_or(p, bits, __ATOMIC_RELAXED);
}

bool walk(void *uc, uint64_t addr, int type, uc_tlb_entry *e, struct walk *w)
{
    uint64_t cr0 = *w->cr0, cr4 = *w->cr4, efer = *w->efer;
    int user = (*w->hflags & 3) == 3;
    int write = type == UC_MEM_WRITE, fetch = type == UC_MEM_FETCH;
    uint64_t ptep, pte, paddr, rsvd, size, error = 0;
    uint64_t *leaf = 0;
    uint32_t *leaf32 = 0;
    unsigned prot;

    if (!(cr0 & CR0_PG) || addr >= UNTIL_PAGE) {    /* linear = physical */
        paddr = addr;
        prot = 7;
        goto done;
    }
    if (cr4 & (CR4_SMAP | CR4_PKE | CR4_LA57))
        goto hand_back;
    rsvd = (~(PHYS_LIMIT - 1) & PG_ADDR) | (efer & EFER_NXE ? 0 : PG_NX);
    if (cr4 & CR4_PAE) {
        uint64_t *p, entry;
        if (efer & EFER_LMA) {
            int64_t sext = (int64_t)addr >> 47;
            if (sext != 0 && sext != -1)
                goto hand_back;               /* #GP, not a walk */
            p = table(w, (*w->cr3 & PG_ADDR) + ((addr >> 36) & 0xff8));
            if (!p)
                goto hand_back;
            entry = *p;
            if (!(entry & PG_P))
                goto fault;
            if (entry & (rsvd | PG_PS))
                goto hand_back;
            set_bits(p, PG_A);
            ptep = entry ^ PG_NX;
            p = table(w, (entry & PG_ADDR) + ((addr >> 27) & 0xff8));
            if (!p)
                goto hand_back;
            entry = *p;
            if (!(entry & PG_P))
                goto fault;
            ptep &= entry ^ PG_NX;
            if (entry & (rsvd | PG_PS))     /* (1 GiB pages: left to QEMU) */
                goto hand_back;
            set_bits(p, PG_A);
        } else {
            p = table(w, ((*w->cr3 & ~0x1full) + ((addr >> 27) & 0x18)) & 0xffffffffull);
            if (!p)
                goto hand_back;
            entry = *p;
            if (!(entry & PG_P))
                goto fault;
            rsvd |= PG_HI;                  /* (for the levels below too) */
            if (entry & (rsvd | PG_NX))
                goto hand_back;
            ptep = PG_NX | PG_US | PG_RW;
        }
        p = table(w, (entry & PG_ADDR) + ((addr >> 18) & 0xff8));
        if (!p)
            goto hand_back;
        entry = *p;
        if (!(entry & PG_P))
            goto fault;
        ptep &= entry ^ PG_NX;
        if (entry & PG_PS) {                /* a 2 MiB page */
            size = 1ull << 21;
            leaf = p;
            pte = entry;
        } else {
            if (entry & rsvd)
                goto hand_back;
            set_bits(p, PG_A);
            p = table(w, (entry & PG_ADDR) + ((addr >> 9) & 0xff8));
            if (!p)
                goto hand_back;
            pte = *p;
            if (!(pte & PG_P))
                goto fault;
            ptep &= pte ^ PG_NX;
            size = 4096;
            leaf = p;
        }
        rsvd |= (size - 1) & PG_ADDR & ~0x1000ull;  /* (bit 12: a large page's PAT) */
        if (pte & rsvd)
            goto hand_back;
        ptep ^= PG_NX;
    } else {
        uint32_t *p = table(w, ((*w->cr3 & ~0xfffull) + ((addr >> 20) & 0xffc)) & 0xffffffffull);
        uint32_t pde;
        if (!p)
            goto hand_back;
        pde = *p;
        if (!(pde & PG_P))
            goto fault;
        ptep = pde;
        if ((pde & PG_PS) && (cr4 & CR4_PSE)) {     /* a 4 MiB page (PSE-36) */
            if (pde & 0x200000u)
                goto hand_back;
            pte = pde | ((uint64_t)(pde & 0x1fe000u) << 19);
            size = 1ull << 22;
            leaf32 = p;
        } else {
            set_bits32(p, PG_A);
            p = table(w, ((pde & ~0xfffu) + ((addr >> 10) & 0xffc)));
            if (!p)
                goto hand_back;
            pte = *p;
            if (!(pte & PG_P))
                goto fault;
            ptep &= pte;
            size = 4096;
            leaf32 = p;
        }
    }
    /* QEMU's do_check_protect, for mmu_idx user at CPL 3 and kernel (no SMAP) below */
    if (user && !(ptep & PG_US)) {
        error = PG_P;
        goto fault;
    }
    prot = 1;
    if ((ptep & PG_RW) || (!user && !(cr0 & CR0_WP)))
        prot |= 2;
    if (!(ptep & PG_NX) && (user || !((cr4 & CR4_SMEP) && (ptep & PG_US))))
        prot |= 4;                          /* (SMEP: no supervisor code in user pages) */
    if (!(prot & (fetch ? 4 : write ? 2 : 1))) {
        error = PG_P;
        goto fault;
    }
    if (!(pte & PG_A) || (write && !(pte & PG_D))) {
        uint64_t bits = PG_A | (write ? PG_D : 0);
        if (leaf)
            set_bits(leaf, bits);
        else
            set_bits32(leaf32, (uint32_t)bits);
        pte |= bits;
    }
    if (!(pte & PG_D))
        prot &= ~2u;                        /* the first write sets D */
    paddr = (pte & PG_ADDR & ~(size - 1)) | (addr & (size - 1) & ~0xfffull);
    if (paddr >= PHYS_LIMIT)
        goto hand_back;
done:
    if (paddr < (1ull << 32)) {
        uint64_t page = paddr >> 12, bit = 1ull << (page & 63);
        if (fetch) {
            if (!(w->code_pages[page >> 6] & bit)) {   /* the page's first code: no */
                w->code_pages[page >> 6] |= bit;      /* writable entry may outlive it */
                w->flush(w->cpu);
            }
        } else if (!(w->code_pages[page >> 6] & bit)) {
            prot &= ~4u;                    /* data only: stores run at full speed */
        }
    }
    e->paddr = paddr;
    e->perms = prot;
    return true;
fault:         /* QEMU's do_fault: the #PF's error code */
    error |= (uint64_t)write << 1 | (uint64_t)user << 2;
    if (fetch && (((efer & EFER_NXE) && (cr4 & CR4_PAE)) || (cr4 & CR4_SMEP)))
        error |= 0x10;
    w->error_code = error;
    w->verdict = user ? 3 : 1;  /* (at CPL 3: unless a descriptor table's access) */
    w->refused = addr;
    return false;
hand_back:
    w->verdict = 2;
    w->refused = addr;
    return false;
}
