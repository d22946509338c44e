"""The Xen host: boot, domains, the scheduling loop, and the traps from each vCPU.

``XenHost()`` boots like a real machine: the boot loader hands control to Xen,
Xen sets up its heap and the credit scheduler, brings up the physical CPUs
and builds Dom0; every step is a ``(XEN)`` line in the log ``xl dmesg`` shows.
Then the toolstack in Dom0 creates guests through the domctl-like methods here
(``domain_create``, ``populate_physmap``, ``domain_unpause``, ``domain_destroy``)
and ``run()`` schedules their vCPUs on the physical CPUs in virtual time.

Dom0 in xenlab is not emulated machine code: it is the Python toolstack
(``xenlab.tools``) together with the services later issues add. It owns
memory and vCPUs like a real Dom0 but never appears on a run queue.

Physical CPUs are simulated one after another, deterministically: the loop
always advances the pCPU whose virtual clock is furthest behind.

Real Xen: xen/arch/x86/setup.c (__start_xen), xen/common/sched/core.c
(schedule), xen/common/domain.c, xen/common/domctl.c, xen/common/time.c
(get_localtime, domain_set_time_offset)
"""

from __future__ import annotations

import contextlib
import enum
import gc
import re
import signal
import struct
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from xenlab.cpu.idle import IdleLoops
from xenlab.cpu.x86 import ExitReason, RunResult, X86Vcpu, unicorn_version
from xenlab.public import version as V
from xenlab.public.domctl import DomctlCmd
from xenlab.public.errno import Errno
from xenlab.public.memory import MemoryOp
from xenlab.public.sched import ShutdownReason
from xenlab.public.vcpu import Runstate
from xenlab.public.xen import DOMID_FIRST_RESERVED, DOMID_XEN, Hypercall, VcpuTimeInfo, Virq
from xenlab.xen import traps
from xenlab.xen.console import ConsoleLog
from xenlab.xen.domain import INVALID_MFN, Domain, DomainType, Vcpu
from xenlab.xen.event_channel import (
    EvtchnTable,
    evtchn_clear_pending,
    evtchn_destroy,
    send_guest_vcpu_virq,
)
from xenlab.xen.grant_table import GrantTable, gnttab_release_mappings
from xenlab.xen.guest_access import GuestFault, copy_to_guest
from xenlab.xen.hvm.hvm import hvm_inject_hw_exception
from xenlab.xen.hvm.io import DEBUG_PORT, VMEXIT_COST_NS, hvm_update_native_ports
from xenlab.xen.hvm.pmtimer import PM_TIMER_FREQ
from xenlab.xen.hvm.vioapic import IOAPIC_BASE
from xenlab.xen.hvm.vlapic import APIC_BASE
from xenlab.xen.hypercall import PV_HYPERCALL_COST_NS, do_hypercall
from xenlab.xen.mm import (
    _PAGE_GNTTAB,
    check_references,
    get_page,
    get_page_and_type,
    l1e_address,
    ptwr_do_page_fault,
    put_page,
    put_page_and_type,
    put_page_from_l1e,
    unpin_page_table,
)
from xenlab.xen.page_alloc import (
    PAGE_SHIFT,
    PAGE_SIZE,
    Extent,
    HostMemory,
    PGC_allocated,
    PGC_count_mask,
    PGT_l4_page_table,
    PGT_writable_page,
)
from xenlab.xen.privcmd import dom0_hypercall
from xenlab.xen.pv_callback import deliver_upcall
from xenlab.xen.pv_descriptor_tables import pv_destroy_gdt
from xenlab.xen.pv_traps import pv_do_trap, pv_vcpu, switch_to_kernel
from xenlab.xen.sched_credit import CSCHED_ACCT_NS, PRI_NAMES, CreditScheduler
from xenlab.xen.trace import Kind, Trace

__all__ = ["DEFAULT_HOST_MIB", "Pcpu", "RunStatus", "XenHost"]

DEFAULT_HOST_MIB = 2048
DEFAULT_DOM0_MIB = 512
XEN_RESERVED_MIB = 8  # the hypervisor image, its heap and frame table
#: Xen's wallclock at boot (wc_sec) unless told otherwise: 2026-01-01 00:00:00 UTC, the
#: same every run, so a guest that reads its RTC prints the same thing every time
WALLCLOCK_DEFAULT = 1767225600
_PTE_P, _PTE_RW, _PTE_US = 1, 2, 4
_MAX_ACCT_CATCH_UP = 64   # credit accounting periods counted out after an idle stretch
#: the records an HVM vCPU's debug-port log makes late (X86Vcpu.log_port_writes)
_LOGGED_KINDS = (Kind.VMEXIT,)


class RunStatus(str, enum.Enum):
    IDLE = "idle"        # nothing runnable and no timer pending: every guest is done or asleep
    BUDGET = "budget"    # max_instructions reached
    UNTIL = "until"      # the caller's stop condition became true


@dataclass
class Pcpu:
    """A physical CPU and its virtual clock (ns since boot)."""

    cpu_id: int
    time: int = 0
    current: Vcpu | None = None
    last: tuple[int, int] | None = None  # (domid, vcpu) it ran last: context switches


_IO_MNEMONICS = frozenset({"in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd"})


class _VcpuTraps:
    """The VM-exit / trap handlers of one PV vCPU (implements cpu.x86.VcpuExits)."""

    def __init__(self, host: XenHost, v: Vcpu) -> None:
        self.host = host
        self.v = v

    def hypercall(self, cpu: X86Vcpu, via: str) -> None:
        cpu.charge(PV_HYPERCALL_COST_NS)
        if self.v.user_mode and via == "syscall":  # not a hypercall: the guest's own
            switch_to_kernel(self.host, self.v, cpu)
            return
        do_hypercall(self.host, self.v, cpu, via)

    def io_in(self, cpu: X86Vcpu, port: int, size: int) -> int:
        if self._io_ok():
            self._io_record(port, size, None)
            return (1 << (8 * size)) - 1
        self._privileged_io(cpu, f"in from port {port:#x}")
        return 0xFFFFFFFF

    def io_out(self, cpu: X86Vcpu, port: int, size: int, value: int) -> None:
        if self._io_ok():
            self._io_record(port, size, value)
            return
        self._privileged_io(cpu, f"out to port {port:#x}")

    def _io_ok(self) -> bool:
        """iopl_ok: the guest kernel (virtual ring 1) or user space (ring 3) may do port
        I/O if the I/O privilege level it set (PHYSDEVOP_set_iopl) allows. A DomU owns no
        I/O ports, so then Xen's emulation reads all ones and drops writes (guest_io_read,
        guest_io_write), as Linux expects when it probes PCI at boot."""
        pv = self.v.domain.vcpus[0].pv
        physdev = getattr(pv, "physdev", None)
        iopl = physdev.iopl if physdev is not None else 0
        return iopl >= (3 if self.v.user_mode else 1)

    def _io_record(self, port: int, size: int, value: int | None) -> None:
        host, v = self.host, self.v
        if host.trace.enabled:
            args = {"port": hex(port), "size": size, "dir": "in" if value is None else "out"}
            if value is not None:
                args["value"] = hex(value)
            host.trace.emit(host.now(), v.domain.domid, v.vcpu_id, Kind.IO, "pv_io", args,
                            "no such port: all ones / dropped")

    def _privileged_io(self, cpu: X86Vcpu, what: str) -> None:
        """A PV guest has no I/O privilege: #GP at the in/out instruction itself.

        unicorn calls the I/O hook with RIP already past the instruction; step back
        over it (1-3 bytes: optional 0x66 prefix, opcode, optional port byte).
        """
        rip = cpu.reg("rip")
        for length in (1, 2, 3):
            code = self.host.read_guest_code(self.v.domain, cpu, rip - length, length)
            if code and cpu.disassemble(code, rip - length).split(" ")[0] in _IO_MNEMONICS:
                cpu.set_reg("rip", rip - length)
                break
        cpu.raise_fault(13, "#GP general protection")

    def cpuid(self, cpu: X86Vcpu, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None:
        return self.host.cpuid_xen_leaves(self.v.domain, leaf)

    def interrupt(self, cpu: X86Vcpu, vector: int) -> bool:
        return False  # a 64-bit PV guest has no interrupt that Xen turns into a hypercall

    def msr_write(self, cpu: X86Vcpu, msr: int, value: int) -> bool:
        return False  # ring 3: the CPU raises #GP and the domain crashes

    def tsc(self, cpu: X86Vcpu) -> int:
        """A TSC of virtual time at 1 GHz, so that runs stay identical (a PV vCPU's real
        CR4.TSD makes its rdtsc a #GP that pv_emul_priv_op answers with the same clock)."""
        return self.host.now()

    def io_rep(self, cpu: X86Vcpu, port: int, size: int, count: int, addr: int,
               write: bool) -> int:
        return 0  # never asked: string I/O is watched for in HVM guests only


class XenHost:
    """An emulated machine running Xen, with Dom0 built and ready for the toolstack."""

    def __init__(self, *, memory_mib: int = DEFAULT_HOST_MIB, nr_cpus: int = 2,
                 dom0_mem_mib: int = DEFAULT_DOM0_MIB, trace: bool = True, seed: int = 0,
                 native_budget: bool = True, wallclock: int | None = None,
                 idle_loops: bool = True) -> None:
        """``wallclock``: what the machine's clock says at boot, in seconds since 1970
        (Xen reads it from the platform's RTC); None is ``WALLCLOCK_DEFAULT``.
        ``idle_loops``: HVM vCPUs skip rounds of a loop that changes nothing
        (xenlab.cpu.idle; the guest cannot tell, only the wall time differs)."""
        if memory_mib < 64 or nr_cpus < 1 or dom0_mem_mib < 16:
            raise ValueError("host needs >= 64 MiB, >= 1 CPU, dom0 >= 16 MiB")
        self.wc_sec = WALLCLOCK_DEFAULT if wallclock is None else wallclock
        if dom0_mem_mib + XEN_RESERVED_MIB > memory_mib:
            raise ValueError("dom0_mem does not fit in host memory")
        self.seed = seed
        self.native_budget = native_budget
        self.idle_loops = idle_loops
        self.mem = HostMemory(memory_mib)
        self.trace = Trace(enabled=trace)
        self.log = ConsoleLog()
        self.domains: dict[int, Domain] = {}
        #: destroyed domains some of whose frames are still referenced (by a mapping
        #: Dom0 has not dropped yet): what ``xl list`` shows as "(null)" on real Xen
        self.zombies: dict[int, Domain] = {}
        #: Xen's own long-lived views of guest frames (the ioreq page):
        #: mfn -> [views, of which writable]; each holds a reference to the frame
        self.xen_maps: dict[int, list[int]] = {}
        self.pcpus = [Pcpu(i) for i in range(nr_cpus)]
        self.sched = CreditScheduler(nr_cpus)
        self.cmdline = (f"dom0_mem={dom0_mem_mib}M,max:{dom0_mem_mib}M loglvl=all "
                        "guest_loglvl=all console_to_ring sched=credit")
        self._current: tuple[Pcpu, Vcpu] | None = None
        self._slice_end = 0
        self._next_domid = 1
        self.death_listeners: list[Callable[[Domain], None]] = []
        self.console_listeners: list[Callable[[Domain, str], None]] = []
        self.instructions = 0
        self._pending_deaths: list[Domain] = []
        #: Dom0's event channel handlers (what its kernel's evtchn driver dispatches to):
        #: port -> callback(port). Backends and daemons register here.
        self.dom0_handlers: dict[int, Callable[[int], None]] = {}
        self._dom0_pending: list[int] = []
        self._dom0_time = 0                     # when the latest event for Dom0 was raised
        self._dom0_now: int | None = None       # Dom0's clock while its handlers run
        self._tail_pcpu: Pcpu | None = None     # a slice's pCPU while Xen finishes it
        self.dom0_inline = 0   # > 0 while a vCPU waits for Dom0 (an ioreq): events run now
        self._start_xen(dom0_mem_mib)

    # ==================================================================== boot
    def _start_xen(self, dom0_mem_mib: int) -> None:
        """__start_xen: the boot story, as ``xl dmesg`` tells it."""
        pk = self.log.printk
        total = self.mem.total_pages * PAGE_SIZE
        pk(" __  __            _  _    _ _____  ___\n"
           " \\ \\/ /___ _ __   | || |  / |___  |/ _ \\  (emulated by xenlab)\n"
           "  \\  // _ \\ '_ \\  | || |_ | |  / /| | | |\n"
           "  /  \\  __/ | | | |__   _|| | / / | |_| |\n"
           " /_/\\_\\___|_| |_|    |_|(_)_|/_/   \\___/")
        pk(f"Xen version {V.XEN_MAJOR}.{V.XEN_MINOR}{V.XEN_EXTRAVERSION.decode()} "
           f"(xenlab@xenlab.example) (unicorn {unicorn_version()} CPU emulator) debug=y")
        pk("Bootloader: xenlab (a boot loader such as GRUB starts Xen on a real machine)")
        pk(f"Command line: {self.cmdline}")
        pk("Xen-e820 RAM map:")
        pk(" [0000000000000000, 000000000009efff] (usable)")
        pk(" [000000000009f000, 00000000000fffff] (reserved)")
        pk(f" [0000000000100000, {total - 1:016x}] (usable)")
        pk(f"System RAM: {total >> 20}MB ({total >> 10}kB)")
        self._xen_extents = self.mem.alloc(DOMID_XEN, XEN_RESERVED_MIB * 256, contiguous=True)
        self._setup_xen_area()
        pk(f"Domain heap initialised ({self.mem.free_pages} pages free)")
        pk(f"Using scheduler: {self.sched.name}")
        pk(f"Detected {len(self.pcpus)} CPUs (x86-64, emulated by unicorn {unicorn_version()})")
        pk("HVM: VMX enabled (emulated: vmcall traps to Xen)")
        pk(f"Brought up {len(self.pcpus)} CPUs")
        pk("*** Building a PV Dom0 ***")
        dom0 = self._build_dom0(dom0_mem_mib)
        first = dom0.extents[0].mfn << PAGE_SHIFT
        pk(f" Dom0 alloc.:   {first:016x}->{first + (dom0.tot_pages << PAGE_SHIFT):016x} "
           f"({dom0.tot_pages} pages to be allocated)")
        pk(" Dom0 kernel: xenlab's toolstack (Python), not emulated machine code")
        pk("Scrubbing Free RAM in background")
        pk("Std. Loglevel: All")
        pk("Guest Loglevel: All")
        pk("*** Serial input to DOM0 (type 'CTRL-a' three times to switch input)")
        pk(f"Freed {XEN_RESERVED_MIB * 1024 // 8}kB init memory")
        self.trace.emit(0, 0, 0, Kind.LIFECYCLE, "boot",
                        {"memory_mib": total >> 20, "nr_cpus": len(self.pcpus)})

    def _setup_xen_area(self) -> None:
        """Xen's mappings at HYPERVISOR_VIRT_START: GDT, entry trampoline, a stack."""
        base = self._xen_extents[0].mfn
        self.xen_frames = {
            "l3": base, "l2": base + 1, "l1": base + 2, "zero": base + 3, "gdt": base + 4,
            "stub": base + 5, "stack": base + 6,
        }
        f = self.xen_frames
        self.mem.write(f["gdt"] << PAGE_SHIFT, traps.gdt_page())
        self.mem.write(f["stub"] << PAGE_SHIFT, traps.stub_page())
        self.mem.write_u64((f["l3"] << PAGE_SHIFT), (f["l2"] << PAGE_SHIFT) | _PTE_P | _PTE_RW)
        self.mem.write_u64((f["l2"] << PAGE_SHIFT), (f["l1"] << PAGE_SHIFT) | _PTE_P | _PTE_RW)
        l1 = f["l1"] << PAGE_SHIFT
        for i in range(traps.GDT_PAGES):
            frame = f["gdt"] if i == traps.FIRST_RESERVED_GDT_PAGE else f["zero"]
            self.mem.write_u64(l1 + 8 * i, (frame << PAGE_SHIFT) | _PTE_P)
        self.mem.write_u64(l1 + 8 * 16, (f["stub"] << PAGE_SHIFT) | _PTE_P)
        self.mem.write_u64(l1 + 8 * 17, (f["stack"] << PAGE_SHIFT) | _PTE_P | _PTE_RW)
        self._setup_m2p(base + len(self.xen_frames))

    def _setup_m2p(self, first: int) -> None:
        """The machine-to-phys table (machine_to_phys_mapping): one unsigned long per
        machine frame, the pfn its owner has it at, or INVALID_M2P_ENTRY (~0). Every PV
        guest sees it read-only at MACH2PHYS_VIRT_START (L4 slot 256), through an L3,
        an L2 and L1s of Xen's that map its frames user-readable and never writable.
        Its frames come from Xen's reserved memory when they fit there."""
        mem = self.mem
        n_data = -(-mem.total_pages * 8 // PAGE_SIZE)
        n_l1 = -(-n_data // 512)
        need = 2 + n_l1 + n_data
        if first + need > self._xen_extents[0].end:
            first = mem.alloc(DOMID_XEN, need, contiguous=True)[0].mfn
        l3, l2, l1s, data = first, first + 1, first + 2, first + 2 + n_l1
        ro_user = _PTE_P | _PTE_US
        mem.write_u64(l3 << PAGE_SHIFT, (l2 << PAGE_SHIFT) | ro_user)
        for i in range(n_l1):
            mem.write_u64((l2 << PAGE_SHIFT) + 8 * i, ((l1s + i) << PAGE_SHIFT) | ro_user)
        for i in range(n_data):
            mem.write_u64(((l1s + i // 512) << PAGE_SHIFT) + 8 * (i % 512),
                          ((data + i) << PAGE_SHIFT) | ro_user)
        mem.write(data << PAGE_SHIFT, b"\xff" * (n_data * PAGE_SIZE))
        self.m2p_extent = Extent(first, need)
        self.m2p_l3 = l3
        self.m2p_data = Extent(data, n_data)
        #: the table as Xen reads and writes it (get_gpfn_from_mfn / set_gpfn_from_mfn)
        self.m2p = mem.view(data << PAGE_SHIFT, mem.total_pages * 8).cast("Q")
        mem.m2p = self.m2p

    def _build_dom0(self, mib: int) -> Domain:
        d = Domain(0, "Domain-0", DomainType.PV, max_pages=mib * 256, privileged=True)
        d.evtchn = EvtchnTable()
        d.grant_table = GrantTable()
        d.extents = self.mem.alloc(0, mib * 256)
        d.p2m = array("Q", (m for e in d.extents for m in range(e.mfn, e.end)))
        d.m2p = self.m2p
        pfn = 0
        for e in d.extents:
            self.m2p[e.mfn : e.end] = array("Q", range(pfn, pfn + e.count))
            pfn += e.count
        d.shared_info_mfn = self._alloc_xen_shared(d)
        d.pause_count = 0
        for i in range(len(self.pcpus)):
            v = Vcpu(i, d, online=True, runstate=Runstate.RUNSTATE_running, processor=i)
            d.vcpus.append(v)
        self.domains[0] = d
        return d

    def _alloc_xen_shared(self, d: Domain) -> int:
        """A Xen heap page shared with ``d`` (shared_info, grant table frames)."""
        mfn = self.mem.alloc(DOMID_XEN, 1)[0].mfn
        d.shared_mfns.add(mfn)
        return mfn

    # ==================================================================== time
    def now(self) -> int:
        """System time in ns: the clock of the pCPU Xen is working on (a vCPU's slice:
        before, during and after its guest code), Dom0's while its handlers run, or else
        the earliest pCPU clock."""
        current = self._current
        if current is not None:
            pc, v = current
            cpu = v.cpu  # a running vCPU has one; X86Vcpu.elapsed() inlined: the hottest
            return pc.time + cpu.slice_budget - cpu.budget.left  # type: ignore[union-attr]
        if self._dom0_now is not None:
            return self._dom0_now
        if self._tail_pcpu is not None:
            return self._tail_pcpu.time
        return min(p.time for p in self.pcpus)

    def elapsed(self) -> int:
        """Virtual time since boot on the pCPU that has run longest (ns)."""
        return max(p.time for p in self.pcpus)

    # ============================================================ domctl-like API
    def alloc_domid(self) -> int:
        domid = self._next_domid
        while domid in self.domains or domid in self.zombies:
            domid += 1
        if domid >= DOMID_FIRST_RESERVED:
            raise ValueError("no free domain id")
        return domid

    def domain_create(self, name: str, dtype: DomainType, *, max_pages: int, vcpus: int,
                      weight: int = 256, cap: int = 0) -> Domain:
        """XEN_DOMCTL_createdomain (+ max_vcpus, max_mem): a paused, empty domain."""
        if max_pages > self.mem.free_pages:
            self._domctl(DomctlCmd.XEN_DOMCTL_createdomain, -1, -Errno.ENOMEM)
            raise MemoryError(f"domain needs {max_pages} pages, host has {self.mem.free_pages}")
        domid = self.alloc_domid()
        d = Domain(domid, name, dtype, max_pages=max_pages, weight=weight, cap=cap)
        d.m2p = self.m2p
        d.evtchn = EvtchnTable()
        d.grant_table = GrantTable()
        d.shared_info_mfn = self._alloc_xen_shared(d)
        self.domains[domid] = d
        self._next_domid = domid + 1
        if dtype is not DomainType.PV:
            from xenlab.xen.hvm.hvm import HvmDomain

            d.hvm = HvmDomain(self, d)
        for i in range(vcpus):
            v = Vcpu(i, d)
            if d.hvm is not None:
                from xenlab.xen.hvm.hvm import CPU_MODEL_LEAVES, HvmTraps

                traps = HvmTraps(self, v, d.hvm)
                v.cpu = X86Vcpu(traps, long_mode=False,
                                name=f"d{domid}v{i}", native_budget=self.native_budget)
                v.cpu.fill_unassigned_with_ones()
                v.cpu.map_mmio(APIC_BASE, PAGE_SIZE, *d.hvm.apic_mmio(v))
                v.cpu.map_mmio(IOAPIC_BASE, PAGE_SIZE, *d.hvm.ioapic_mmio(v))
                # the debug port's characters stay in the vCPU until its next exit; a
                # newline, and a character that fills the line, make the console and
                # phase records, and exit at once
                v.cpu.log_port_writes(DEBUG_PORT, VMEXIT_COST_NS, traps.debug_port_log,
                                      exit_on=0x0A, room=d.hvm.debug_line_room)
                # and the exits Xen answers from what it decided at the last claim (the
                # null handler, the PCI latch, the PM timer): in the vCPU too
                if v.cpu.answer_ports(VMEXIT_COST_NS, traps.answered_ports):
                    v.cpu.set_port_clock(PM_TIMER_FREQ, 1_000_000_000, 0xFFFFFF)  # read32
                v.cpu.answer_cpuid(CPU_MODEL_LEAVES, VMEXIT_COST_NS, traps.cpuid_answered)
                v.cpu.watch_new_code_for_wrmsr()
                v.cpu.identity_tlb_until_paging()
                if self.idle_loops:
                    v.cpu.idle = IdleLoops(v.cpu)
            else:
                v.cpu = X86Vcpu(_VcpuTraps(self, v), long_mode=True,
                                name=f"d{domid}v{i}", native_budget=self.native_budget)
                # rdtsc: a code trap where new code has one (cheap, the slice goes on);
                # any it misses is a #GP that pv_emul_priv_op answers (CR4.TSD)
                v.cpu.watch_new_code_for_wrmsr()
            d.vcpus.append(v)
            if dtype is DomainType.PV:
                self._map_xen_area(v.cpu)
                v.cpu.map_host(d.shared_info_mfn << PAGE_SHIFT, PAGE_SIZE,
                               self.mem.host_ptr(d.shared_info_mfn << PAGE_SHIFT),
                               executable=False)
        if d.hvm is not None:
            hvm_update_native_ports(d, d.hvm)
        self.trace.emit(self.now(), domid, 0, Kind.LIFECYCLE, "create",
                        {"name": name, "type": dtype.value, "max_pages": max_pages,
                         "vcpus": vcpus})
        self._domctl(DomctlCmd.XEN_DOMCTL_createdomain, domid, 0,
                     hvm=dtype is not DomainType.PV, max_vcpus=vcpus)
        self._domctl(DomctlCmd.XEN_DOMCTL_max_mem, domid, 0, max_memkb=max_pages * 4)
        return d

    def domain_set_time_offset(self, d: Domain, seconds: int) -> None:
        """XEN_DOMCTL_settimeoffset: ``d``'s clock runs ``seconds`` ahead of Xen's
        wallclock (behind if negative); what its RTC shows from now on."""
        d.time_offset_seconds = seconds
        self._domctl(DomctlCmd.XEN_DOMCTL_settimeoffset, d.domid, 0,
                     time_offset_seconds=seconds)

    def get_localtime(self, d: Domain) -> int:
        """get_localtime: ``d``'s wallclock in seconds since 1970 (the RTC's time)."""
        return self.wc_sec + self.now() // 1_000_000_000 + d.time_offset_seconds

    def _domctl(self, cmd: DomctlCmd, domid: int, ret: int, **fields: object) -> None:
        """Dom0's toolstack calls these methods directly: record its domctl hypercall."""
        dom0_hypercall(self, Hypercall.domctl, {"cmd": cmd.name, "domain": domid, **fields},
                       ret)

    def _map_xen_area(self, cpu: X86Vcpu) -> None:
        for frame in self.xen_frames.values():
            maddr = frame << PAGE_SHIFT
            cpu.map_host(maddr, PAGE_SIZE, self.mem.host_ptr(maddr),
                         writable=frame == self.xen_frames["stack"])
        m2p = self.m2p_extent.mfn << PAGE_SHIFT
        cpu.map_host(m2p, self.m2p_extent.count << PAGE_SHIFT, self.mem.host_ptr(m2p),
                     writable=False, executable=False)

    def populate_physmap(self, d: Domain, nr_pages: int) -> None:
        """Give ``d`` its initial RAM: pfns 0..nr_pages-1 (xc_domain_populate_physmap)."""
        if d.tot_pages + nr_pages > d.max_pages:
            raise MemoryError("over the domain's max_pages")
        extents = self.mem.alloc(d.domid, nr_pages)
        self._assign(d, extents, gpfn=len(d.p2m))
        dom0_hypercall(self, Hypercall.memory_op,  # xc_domain_populate_physmap_exact
                       {"cmd": MemoryOp.XENMEM_populate_physmap.name, "domid": d.domid,
                        "nr_extents": nr_pages, "extent_order": 0}, nr_pages)

    def _assign(self, d: Domain, extents: list[Extent], gpfn: int | None) -> None:
        d.extents.extend(extents)
        for ext in extents:
            first = len(d.p2m) if gpfn is None else gpfn
            d.set_p2m(first, ext.mfn, ext.count)
            if gpfn is not None:
                gpfn += ext.count
            for v in d.vcpus:
                assert v.cpu is not None
                addr = (ext.mfn << PAGE_SHIFT) if d.is_pv else (first << PAGE_SHIFT)
                v.cpu.map_host(addr, ext.count << PAGE_SHIFT,
                               self.mem.host_ptr(ext.mfn << PAGE_SHIFT))

    def guest_add_pages(self, d: Domain, count: int, gpfn: int | None) -> int | None:
        """increase_reservation / populate_physmap for a running guest; returns the first MFN."""
        try:
            extents = self.mem.alloc(d.domid, count, contiguous=True)
        except MemoryError:
            return None
        if gpfn is not None and d.pfn_to_mfn(gpfn) != INVALID_MFN:
            self.mem.free(extents)
            return None
        self._assign(d, extents, gpfn)
        return extents[0].mfn

    def guest_remove_pages(self, d: Domain, pfn: int, count: int) -> bool:
        """decrease_reservation (guest_remove_page): the guest hands frames (by pfn) back.

        The pfns leave the P2M and the frames lose their allocation reference (and a
        pin). A frame still referenced (mapped by the guest's own page tables, a grant,
        Dom0's foreign mapping, Xen's view) stays allocated to the guest until the last
        reference is dropped; only then is it scrubbed and returned to the heap."""
        if d.privileged:
            return False
        mfns = []
        for i in range(count):
            mfn = d.pfn_to_mfn(pfn + i)
            if mfn == INVALID_MFN or mfn in d.shared_mfns or not d.owns_mfn(mfn):
                return False
            mfns.append(mfn)
        for i, mfn in enumerate(mfns):
            if not get_page(self, mfn, d):
                return False
            unpin_page_table(self, mfn)
            d.set_p2m(pfn + i, INVALID_MFN)
            if not d.is_pv:  # a PV guest reaches the frame by its page tables until freed
                self._hvm_p2m_update(d, (pfn + i) << PAGE_SHIFT, None)
            if self.mem.count_info[mfn] & PGC_allocated:
                self.mem.count_info[mfn] &= ~PGC_allocated
                put_page(self, mfn)
            put_page(self, mfn)
        return True

    def pv_map_foreign(self, d: Domain, cr3: int, va: int, mfn: int, readonly: bool) -> int:
        """Grant map with GNTMAP_host_map for a PV grantee (create_grant_va_mapping): point
        the L1 entry for ``va`` at the granted frame, marked as a grant mapping (the grant
        holds the frame's references), and make the frame reachable for this domain's
        vCPUs if it is not already (a domain may map its own grant)."""
        from xenlab.public.grant_table import GntSt

        if va & 0xFFF:
            return GntSt.GNTST_bad_virt_addr
        l1e = l1e_address(self.mem, d, cr3, va)
        if l1e is None:
            return GntSt.GNTST_bad_virt_addr
        old = self.mem.read_u64(l1e)
        if old & _PTE_P and old & _PAGE_GNTTAB:
            return GntSt.GNTST_general_error  # already a grant mapping: unmap it first
        if not d.owns_mfn(mfn):
            count = d.foreign_mfns.get(mfn, 0)
            if count == 0:
                for v in d.vcpus:
                    if v.cpu is not None:
                        v.cpu.map_host(mfn << PAGE_SHIFT, PAGE_SIZE,
                                       self.mem.host_ptr(mfn << PAGE_SHIFT), executable=False)
            d.foreign_mfns[mfn] = count + 1
        self.mem.write_u64(l1e, (mfn << PAGE_SHIFT) | 0x5 | (0 if readonly else 0x2)
                           | _PAGE_GNTTAB)
        put_page_from_l1e(self, old)
        for v in d.vcpus:
            if v.cpu is not None:
                v.cpu.flush_tlb()
        return GntSt.GNTST_okay

    def pv_unmap_foreign(self, d: Domain, cr3: int, va: int, mfn: int) -> None:
        l1e = l1e_address(self.mem, d, cr3, va)
        if l1e is not None:
            entry = self.mem.read_u64(l1e)
            if entry & _PAGE_GNTTAB and (entry >> PAGE_SHIFT) & 0xFFFFFFFFFF == mfn:
                self.mem.write_u64(l1e, 0)
        if mfn in d.foreign_mfns:
            count = d.foreign_mfns[mfn] - 1
            if count <= 0:
                del d.foreign_mfns[mfn]
                for v in d.vcpus:
                    if v.cpu is not None:
                        v.cpu.unmap(mfn << PAGE_SHIFT, PAGE_SIZE)
            else:
                d.foreign_mfns[mfn] = count
        for v in d.vcpus:
            if v.cpu is not None:
                v.cpu.flush_tlb()

    def xen_map_page(self, d: Domain, mfn: int, *, writable: bool) -> bool:
        """Xen keeps a view of one of ``d``'s frames (prepare_ring_for_helper: the ioreq
        page): a reference, and the writable type if it writes."""
        ok = (get_page_and_type(self, mfn, d, PGT_writable_page) if writable
              else get_page(self, mfn, d))
        if ok:
            held = self.xen_maps.setdefault(mfn, [0, 0])
            held[0] += 1
            held[1] += 1 if writable else 0
        return ok

    def xen_unmap_page(self, mfn: int, *, writable: bool) -> None:
        held = self.xen_maps[mfn]
        held[0] -= 1
        held[1] -= 1 if writable else 0
        if not held[0]:
            del self.xen_maps[mfn]
        if writable:
            put_page_and_type(self, mfn)
        else:
            put_page(self, mfn)

    def hvm_map_xen_page(self, d: Domain, gpfn: int, mfn: int) -> int:
        """Put a Xen page shared with ``d`` at guest-physical ``gpfn`` (add_to_physmap,
        xenmem_add_to_physmap_one). What was at ``gpfn`` goes: a Xen page is unhooked,
        a RAM frame is freed back to the domain's reservation (guest_remove_page). The
        Xen page leaves the gfn it had before: one page, one place."""
        prev = d.pfn_to_mfn(gpfn)
        if prev == mfn:
            return 0
        if prev != INVALID_MFN:
            if prev in d.shared_mfns:
                d.set_p2m(gpfn, INVALID_MFN)
                self._hvm_p2m_update(d, gpfn << PAGE_SHIFT, None)
            elif not self.guest_remove_pages(d, gpfn, 1):
                return -Errno.EINVAL
        old_gpfn = d.mfn_to_pfn(mfn)
        if old_gpfn is not None:
            d.set_p2m(old_gpfn, INVALID_MFN)
            self._hvm_p2m_update(d, old_gpfn << PAGE_SHIFT, None)
        d.set_p2m(gpfn, mfn)
        self._hvm_p2m_update(d, gpfn << PAGE_SHIFT, self.mem.host_ptr(mfn << PAGE_SHIFT))
        return 0

    def _hvm_p2m_update(self, d: Domain, gpa: int, host_ptr: int | None) -> None:
        """An HVM guest's P2M changed at the page ``gpa``: its vCPUs map ``host_ptr`` there
        (None: nothing, the hole reads as all ones). unicorn must not change its memory
        map under a running instruction: the running vCPU stops at the end of this block
        and the change is made before it runs again; the others change now."""
        for v in d.vcpus:
            v.pending_maps.append((gpa, host_ptr))
            if self._current is not None and self._current[1] is v and v.cpu is not None:
                v.cpu.request_stop()
            elif v.cpu is not None:
                self._apply_pending_maps(v)

    def map_device_memory(self, d: Domain, gpa: int, size: int, host_ptr: int) -> None:
        """A device model maps memory it owns (a ROM, video RAM) into an HVM guest's
        physical address space; applied when the vCPU is next outside the emulator."""
        for off in range(0, size, PAGE_SIZE):
            self._hvm_p2m_update(d, gpa + off, host_ptr + off)

    def _apply_pending_maps(self, v: Vcpu) -> None:
        cpu = v.cpu
        while v.pending_maps and cpu is not None:
            addr, ptr = v.pending_maps.pop(0)
            if cpu.is_mapped(addr):  # RAM given back, a Xen page moved, an all-ones page
                cpu.unmap(addr, PAGE_SIZE)  # of unassigned memory
            if ptr is not None:
                cpu.map_host(addr, PAGE_SIZE, ptr, executable=False)

    def guest_e820(self, d: Domain) -> list[tuple[int, int, int]]:
        if d.hvm is not None and d.hvm.e820:
            return list(d.hvm.e820)
        return [(0, d.tot_pages << PAGE_SHIFT, 1)]

    def gnttab_grow(self, d: Domain, nr_frames: int) -> bool:
        assert d.grant_table is not None
        while d.grant_table.nr_frames < nr_frames:
            try:
                mfn = self._alloc_xen_shared(d)
            except MemoryError:
                return False
            d.grant_table.frames.append(mfn)
            for v in d.vcpus:
                if v.cpu is not None and d.is_pv:
                    v.cpu.map_host(mfn << PAGE_SHIFT, PAGE_SIZE,
                                   self.mem.host_ptr(mfn << PAGE_SHIFT), executable=False)
        return True

    def vcpu_initialise_hvm(self, v: Vcpu, *, eip: int, ebx: int, gdt_base: int) -> None:
        """XEN_DOMCTL_setvcpucontext for an HVM vCPU: 32-bit flat mode at ``eip``."""
        cpu = v.cpu
        assert cpu is not None
        cpu.setup_flat32(gdt_base=gdt_base, eip=eip, ebx=ebx)
        v.online = True
        v.set_runstate(Runstate.RUNSTATE_runnable, self.now())
        self.sched.insert_vcpu(v)
        self._domctl(DomctlCmd.XEN_DOMCTL_sethvmcontext, v.domain.domid, 0, vcpu=v.vcpu_id)

    def vcpu_initialise_pv(self, v: Vcpu, *, rip: int, rsp: int, rsi: int, cr3: int,
                           rflags: int = 0x202, online: bool = True,
                           l4_referenced: bool = False) -> None:
        """XEN_DOMCTL_setvcpucontext for a 64-bit PV vCPU: enter at ``rip`` in ring 3.
        ``online=False`` (VCPUOP_initialise, x86_domain.arch_set_info_guest): the vCPU
        stays down until VCPUOP_up; ``l4_referenced``: the caller took the L4's reference."""
        cpu = v.cpu
        assert cpu is not None
        # arch_set_info_guest: the vCPU's CR3 holds a reference to its L4 (the builder
        # pinned and so validated it)
        if not l4_referenced and not get_page_and_type(self, cr3 >> PAGE_SHIFT, v.domain,
                                                       PGT_l4_page_table):
            raise ValueError(f"d{v.domain.domid}: cr3 {cr3:#x} is not a valid L4 table")
        v.guest_table = cr3 >> PAGE_SHIFT
        pv_vcpu(v).initialised = True
        cpu.setup_long_mode(cr3=cr3, gdt_base=traps.GDT_VA, gdt_limit=traps.GDT_LIMIT,
                            tsd=True)  # rdtsc: #GP, emulated (pv_emul_priv_op)
        frame_va = traps.XEN_STACK_VA + PAGE_SIZE - 64
        # the iret frame Xen enters the guest with; Xen's stack page is shared by every
        # vCPU here, so the frame is written again just before the vCPU first runs
        v.entry_frame = traps.iret_frame(rip, rsp, rflags)
        if online:
            self.mem.write(self._entry_frame_maddr(), v.entry_frame)
        cpu.set_reg("cs", 0xE008)
        cpu.set_reg("ss", 0)
        cpu.set_reg("rsp", frame_va)
        cpu.set_reg("rsi", rsi)
        cpu.set_reg("rip", traps.XEN_STUB_VA)
        self.sched.insert_vcpu(v)
        if online:
            v.online = True
            v.set_runstate(Runstate.RUNSTATE_runnable, self.now())
            self._domctl(DomctlCmd.XEN_DOMCTL_setvcpucontext, v.domain.domid, 0,
                         vcpu=v.vcpu_id)

    def init_xen_l4_slots(self, l4_mfn: int) -> None:
        """init_xen_l4_slots: every L4 a PV guest runs on carries Xen's own slots, written
        by Xen when the table is validated: the read-only machine-to-phys table (slot
        256, user-readable) and Xen's per-domain area with the GDT, entry stub and stack
        (slot 260, supervisor-only). The guest cannot change them (mod_entry refuses)."""
        base = l4_mfn << PAGE_SHIFT
        self.mem.write_u64(base + 8 * 256, (self.m2p_l3 << PAGE_SHIFT) | _PTE_P | _PTE_US)
        self.mem.write_u64(base + 8 * 260,
                           (self.xen_frames["l3"] << PAGE_SHIFT) | _PTE_P | _PTE_RW)

    def pv_switch_cr3(self, v: Vcpu) -> None:
        """Load the L4 of the mode the vCPU is in (kernel: guest_table, user:
        guest_table_user) into its CR3 (write_ptbase, toggle_guest_pt)."""
        cpu = v.cpu
        assert cpu is not None
        mfn = v.guest_table_user if v.user_mode else v.guest_table
        if mfn and cpu.reg("cr3") >> PAGE_SHIFT != mfn:
            cpu.set_reg("cr3", mfn << PAGE_SHIFT)
            cpu.flush_tlb()

    def _entry_frame_maddr(self) -> int:
        return (self.xen_frames["stack"] << PAGE_SHIFT) + PAGE_SIZE - 64

    def domain_unpause(self, d: Domain) -> None:
        if d.pause_count > 0:
            d.pause_count -= 1
        if not d.paused:
            for v in d.vcpus:
                if v.runnable:
                    self.sched.runq_insert(v)
        self.trace.emit(self.now(), d.domid, 0, Kind.LIFECYCLE, "unpause",
                        {"pause_count": d.pause_count})
        self._domctl(DomctlCmd.XEN_DOMCTL_unpausedomain, d.domid, 0)

    def domain_pause(self, d: Domain) -> None:
        d.pause_count += 1
        for v in d.vcpus:
            self.sched.sleep(v)
            if v.runstate is not Runstate.RUNSTATE_offline:
                v.set_runstate(Runstate.RUNSTATE_offline if not v.online
                               else Runstate.RUNSTATE_runnable, self.now())
        if self._current is not None and self._current[1].domain is d:
            cpu = self._current[1].cpu
            assert cpu is not None
            cpu.request_stop()
        self.trace.emit(self.now(), d.domid, 0, Kind.LIFECYCLE, "pause",
                        {"pause_count": d.pause_count})
        self._domctl(DomctlCmd.XEN_DOMCTL_pausedomain, d.domid, 0)

    def domain_shutdown(self, d: Domain, reason: int) -> None:
        """domain_shutdown: stop every vCPU, record the reason, tell Dom0 (VIRQ_DOM_EXC)."""
        if d.is_shutting_down or d.is_dying:
            return
        d.is_shutting_down = True
        if d.shutdown_code == -1:  # SCHEDOP_shutdown_code set earlier wins, as in Xen
            d.shutdown_code = reason
        if d.shutdown_code == ShutdownReason.SHUTDOWN_crash:
            d.is_crashed = True
        reason = d.shutdown_code
        self._stop_domain(d)
        d.is_shut_down = True
        self.log.printk(f"d{d.domid}: shutdown: reason {d.shutdown_reason_name} ({reason})")
        self.trace.emit(self.now(), d.domid, 0, Kind.LIFECYCLE, "shutdown",
                        {"reason": d.shutdown_reason_name, "code": reason})
        self._notify_death(d)

    def domain_crash(self, d: Domain, v: Vcpu, why: str, regs: dict[str, int] | None = None
                     ) -> None:
        """domain_crash: a guest fault Xen cannot hand back; only this domain stops."""
        if d.is_shutting_down or d.is_dying:
            return
        pc = self._current[0].cpu_id if self._current else v.processor
        self.log.printk(f"d{d.domid}v{v.vcpu_id} {why}")
        self.log.printk(f"domain_crash called from xenlab/xen/setup.py: "
                        f"Domain {d.domid} (vcpu#{v.vcpu_id}) crashed on cpu#{pc}:")
        if regs:
            self.log.printk(f"RIP:    {regs.get('cs', 0):04x}:[<{regs.get('rip', 0):016x}>]")
            self.log.printk(f"RFLAGS: {regs.get('rflags', 0):016x}   "
                            f"CONTEXT: pv guest (d{d.domid}v{v.vcpu_id})")
            self.log.printk(f"rax: {regs.get('rax', 0):016x}   rbx: {regs.get('rbx', 0):016x}"
                            f"   rcx: {regs.get('rcx', 0):016x}")
            self.log.printk(f"rsp: {regs.get('rsp', 0):016x}   cr3: {regs.get('cr3', 0):016x}")
        d.is_shutting_down = True
        d.is_crashed = True
        d.crash_reason = why
        if d.shutdown_code == -1:
            d.shutdown_code = ShutdownReason.SHUTDOWN_crash
        self._stop_domain(d)
        d.is_shut_down = True
        self.trace.emit(self.now(), d.domid, v.vcpu_id, Kind.LIFECYCLE, "crash", {"why": why})
        self._notify_death(d)

    def _stop_domain(self, d: Domain) -> None:
        for v in d.vcpus:
            self.sched.sleep(v)
            v.timer_deadline = None
            v.periodic_deadline = None
            v.poll_deadline = None
            if v.online:
                v.set_runstate(Runstate.RUNSTATE_offline, self.now())
        if self._current is not None and self._current[1].domain is d:
            cpu = self._current[1].cpu
            assert cpu is not None
            cpu.request_stop()

    def _notify_death(self, d: Domain) -> None:
        """Raise VIRQ_DOM_EXC for Dom0; the toolstack's listeners run once no vCPU is
        executing (a listener may destroy the domain whose hypercall got us here)."""
        dom0 = self.domains.get(0)
        if dom0 is not None:
            send_guest_vcpu_virq(self, dom0.vcpus[0], Virq.VIRQ_DOM_EXC)
        self._pending_deaths.append(d)
        if self._current is None:
            self._process_deaths()

    def _process_deaths(self) -> None:
        while self._pending_deaths:
            d = self._pending_deaths.pop(0)
            for listener in list(self.death_listeners):
                listener(d)

    def domain_destroy(self, d: Domain) -> None:
        """domain_kill + domain_destroy: free every frame, port and vCPU."""
        if d.domid == 0:
            raise ValueError("Domain-0 cannot be destroyed")
        if d.domid not in self.domains:
            return
        d.is_dying = True
        self._stop_domain(d)
        gnttab_release_mappings(self, d)
        evtchn_destroy(self, d)
        for v in d.vcpus:
            self.sched.remove_vcpu(v)
            v.time_info = None  # a ctypes view into host RAM; drop it before freeing
            if v.cpu is not None:
                v.cpu.close()
                v.cpu = None
        if d.hvm is not None:
            d.hvm.release()
        self._relinquish_memory(d)
        d.p2m = array("Q")
        d.p2m_high = {}
        d.p2m_gen += 1
        del self.domains[d.domid]
        self.trace.emit(self.now(), d.domid, 0, Kind.LIFECYCLE, "destroy", {"name": d.name})
        self._domctl(DomctlCmd.XEN_DOMCTL_destroydomain, d.domid, 0)

    def _relinquish_memory(self, d: Domain) -> None:
        """domain_relinquish_resources: drop every reference the domain itself holds (its
        vCPUs' CR3s, pins, its page tables' entries, the allocation references). A frame
        nobody else references goes back to the heap; one still mapped by another
        domain (Dom0 not having unmapped it yet) stays the dying domain's until then,
        and the domain lingers as a zombie."""
        for v in d.vcpus:
            pv_destroy_gdt(self, v)
            for mfn in (v.guest_table, v.guest_table_user):
                if mfn:
                    put_page_and_type(self, mfn)
            v.guest_table = v.guest_table_user = 0
            if v.vcpu_info_maddr is not None:  # unmap_vcpu_info
                v.vcpu_info_words = None
                v.time_info = None
                self.xen_unmap_page(v.vcpu_info_maddr >> PAGE_SHIFT, writable=True)
                v.vcpu_info_maddr = None
        for mfn in sorted(m for m in self.mem.pt_frames if self.mem.owner[m] == d.domid):
            unpin_page_table(self, mfn)
        frames = [m for e in d.extents for m in range(e.mfn, e.end)] + sorted(d.shared_mfns)
        for mfn in frames:
            if self.mem.count_info[mfn] & PGC_allocated:
                self.mem.count_info[mfn] &= ~PGC_allocated
                put_page(self, mfn)
        if any(self.mem.owner[m] == d.domid for e in d.extents for m in range(e.mfn, e.end)):
            self.zombies[d.domid] = d
            self.log.printk(f"d{d.domid}: {d.tot_pages} pages still referenced; the domain "
                            "lingers until they are unmapped")
        shared_left = {m for m in d.shared_mfns if self.mem.owner[m] == DOMID_XEN
                       and self.mem.count_info[m] & PGC_count_mask}
        assert not shared_left, f"d{d.domid}: Xen pages still referenced: {shared_left}"
        d.shared_mfns = set()

    # ============================================================ console, cpuid
    def console_write(self, d: Domain, text: str) -> None:
        d.console.extend(text.encode("latin-1", "replace"))
        if len(d.console) > 1 << 20:  # keep the last MiB, as for the console ring
            del d.console[: len(d.console) - (1 << 20)]
        self.log.guest_write(d.domid, text)
        for listener in self.console_listeners:
            listener(d, text)

    def console_append(self, d: Domain, text: str) -> None:
        """Output xenconsoled read from the domain's PV console ring (not the Xen log)."""
        d.console.extend(text.encode("latin-1", "replace"))
        if len(d.console) > 1 << 20:
            del d.console[: len(d.console) - (1 << 20)]
        for listener in self.console_listeners:
            listener(d, text)

    def console_input(self, count: int) -> bytes:
        return b""

    def cpuid_xen_leaves(self, d: Domain, leaf: int) -> tuple[int, int, int, int] | None:
        """Xen's CPUID leaves at 0x40000000: signature, version, hypercall-page MSR."""
        if leaf == 0x40000000:
            return (0x40000005, 0x566E6558, 0x65584D4D, 0x4D4D566E)  # "XenVMMXenVMM"
        if leaf == 0x40000001:
            return ((V.XEN_MAJOR << 16) | V.XEN_MINOR, 0, 0, 0)
        if leaf == 0x40000002:
            return (1, 0x40000000, 0, 0)  # 1 hypercall page; MSR 0x40000000
        if 0x40000003 <= leaf <= 0x40000005:
            return (0, 0, 0, 0)
        return None

    # ============================================================ vCPU operations
    def update_vcpu_system_time(self, v: Vcpu, now: int | None = None) -> None:
        """Publish the current system time in the vCPU's vcpu_time_info.

        Xen does this when it schedules the vCPU and periodically; xenlab does
        it on every entry to Xen (schedule-in and hypercall). The guest's TSC is
        virtual time at 1 GHz (trapped or emulated), so its pvclock extrapolation
        from here is exact and deterministic.
        """
        ti = v.time_info
        if ti is None:
            vi = self._vcpu_info(v)
            if vi is None:
                return
            ti = v.time_info = VcpuTimeInfo.from_buffer(self.mem.ram, vi + 32)
        ti.version = (ti.version + 1) | 1          # odd: Xen is writing
        ti.system_time = self.now() if now is None else now
        if v.domain.hvm is not None:
            # HVM firmware divides by it to compute the CPU speed (1 GHz here). An HVM
            # guest's TSC is system time (HvmTraps.tsc), so pvclock extrapolates from here.
            ti.tsc_to_system_mul = 0xFFFFFFFF
            ti.tsc_timestamp = ti.system_time
        else:
            # A PV guest's rdtsc is trapped too (_VcpuTraps.tsc): a 1 GHz TSC of virtual
            # time, so ns = (tsc - tsc_timestamp) << 1 * 2**31 >> 32, exactly (Linux's
            # pvclock divides by the multiplier: it must not be 0)
            ti.tsc_to_system_mul = 0x80000000
            ti.tsc_shift = 1
            ti.tsc_timestamp = ti.system_time
        ti.version = (ti.version + 1) & 0xFFFFFFFE  # even again: consistent

    def vcpu_yield(self, v: Vcpu) -> None:
        self.trace.emit(self.now(), v.domain.domid, v.vcpu_id, Kind.SCHED, "yield")
        if self.sched.has_runnable() and v.cpu is not None:
            v.cpu.request_stop()

    def vcpu_info_address(self, v: Vcpu) -> int | None:
        """Machine address of the vCPU's vcpu_info in its domain's shared_info."""
        return self._vcpu_info(v)

    def map_vcpu_info(self, v: Vcpu, mfn: int, offset: int) -> int:
        """map_vcpu_info (VCPUOP_register_vcpu_info): the vCPU's vcpu_info moves out of
        shared_info into the guest's own frame ``mfn`` at ``offset``. Xen keeps a writable
        reference to the frame, copies the current contents, and marks every event
        selector pending so that the guest rescans. Once per vCPU."""
        if offset > PAGE_SIZE - 64 or v.vcpu_info_maddr is not None:
            return -Errno.EINVAL
        if not self.xen_map_page(v.domain, mfn, writable=True):
            return -Errno.EINVAL
        old = self._vcpu_info(v)
        new = (mfn << PAGE_SHIFT) + offset
        self.mem.write(new, self.mem.read(old, 64) if old is not None else bytes(64))
        v.vcpu_info_maddr = new
        v.vcpu_info_words = self.mem.view(new, 64).cast("Q")
        v.time_info = None  # vcpu_time_info moved with it
        words = v.vcpu_info_words
        words[0] = (words[0] & ~0xFF) | 1         # evtchn_upcall_pending
        words[1] = (1 << 64) - 1                  # evtchn_pending_sel: rescan everything
        self.vcpu_mark_events_pending(v, 0)
        return 0

    def _vcpu_info(self, v: Vcpu) -> int | None:
        if v.vcpu_info_maddr is not None:
            return v.vcpu_info_maddr
        d = v.domain
        if d.shared_info_mfn is None or v.vcpu_id >= 32:
            return None
        return (d.shared_info_mfn << PAGE_SHIFT) + 64 * v.vcpu_id

    def vcpu_block(self, v: Vcpu) -> None:
        """vcpu_block_enable_events: unmask event delivery, sleep unless something is pending."""
        vi = self._vcpu_info(v)
        if vi is not None:
            self.mem.write(vi + 1, b"\x00")  # evtchn_upcall_mask = 0
            if self.mem.read(vi, 1)[0]:      # evtchn_upcall_pending
                return
        self._sleep(v, "block")

    def vcpu_poll(self, v: Vcpu, ports: tuple[int, ...], timeout: int) -> int:
        from xenlab.xen.event_channel import evtchn_port_is_pending

        d = v.domain
        assert d.evtchn is not None
        for port in ports:
            if d.evtchn.lookup(port) is None:
                return -Errno.EINVAL
            if evtchn_port_is_pending(self, d, port):
                return 0
        if timeout and timeout <= self.now():
            return 0
        v.poll_ports = tuple(ports)
        v.poll_deadline = timeout or None
        d.poll_mask |= 1 << v.vcpu_id
        self._sleep(v, "poll")
        return 0

    def _sleep(self, v: Vcpu, why: str) -> None:
        v.blocked = True
        self.sched.sleep(v)
        self.trace.emit(self.now(), v.domain.domid, v.vcpu_id, Kind.SCHED, why,
                        {"timer": v.timer_deadline})
        if v.cpu is not None:
            v.cpu.request_stop()

    def vcpu_wake(self, v: Vcpu, why: str) -> None:
        if not v.blocked:
            return
        v.blocked = False
        v.poll_ports = ()
        v.poll_deadline = None
        v.domain.poll_mask &= ~(1 << v.vcpu_id)
        v.ready_at = max(v.ready_at, self.now())
        if v.runnable:
            v.set_runstate(Runstate.RUNSTATE_runnable, self.now())
            self.sched.wake(v)
        self.trace.emit(self.now(), v.domain.domid, v.vcpu_id, Kind.SCHED, "wake",
                        {"why": why, "priority": PRI_NAMES.get(v.priority, v.priority)})

    def vcpu_mark_events_pending(self, v: Vcpu, port: int) -> None:
        if v.domain.domid == 0:
            self._dom0_event(port)
            return
        if v.blocked and not v.poll_ports:
            self.vcpu_wake(v, f"event on port {port}")
        elif (v.callbacks.get("event") and self._current is not None
              and self._current[1] is v and v.cpu is not None):
            v.cpu.request_stop()  # deliver the upcall on the way back into the guest

    # ============================================================ Dom0's event loop
    def _dom0_event(self, port: int) -> None:
        """An event for Dom0: its kernel will run the port's handler as soon as it gets a
        CPU, which in xenlab is right after the current guest's slice (Dom0 preempts).
        While a vCPU waits for Dom0's answer (``dom0_inline``: an ioreq round trip),
        the handler runs at once instead."""
        if self.dom0_inline:
            handler = self.dom0_handlers.get(port)
            if handler is not None:
                evtchn_clear_pending(self, self.domains[0], port)
                handler(port)
                return
        if port not in self._dom0_pending:
            self._dom0_pending.append(port)
        self._dom0_time = max(self._dom0_time, self.now())
        if self._current is not None:
            cpu = self._current[1].cpu
            if cpu is not None:
                cpu.request_stop()

    def run_dom0(self) -> bool:
        """Run Dom0's pending event handlers (in port order of arrival); True if any ran."""
        dom0 = self.domains[0]
        outer = self._dom0_now
        self._dom0_now = max(self._dom0_time, min(p.time for p in self.pcpus))
        try:
            ran = self._run_dom0_handlers(dom0)
        finally:
            self._dom0_now = outer
        return ran

    def _run_dom0_handlers(self, dom0: Domain) -> bool:
        ran = False
        rounds = 0
        while self._dom0_pending and rounds < 10_000:
            rounds += 1
            port = self._dom0_pending.pop(0)
            handler = self.dom0_handlers.get(port)
            if handler is not None:  # ports nobody in Dom0 listens to stay pending
                evtchn_clear_pending(self, dom0, port)
                handler(port)
                ran = True
        return ran

    def evtchn_check_pollers(self, d: Domain, port: int) -> None:
        for v in d.vcpus:
            if v.blocked and port in v.poll_ports:
                self.vcpu_wake(v, f"poll: port {port}")

    def vcpu_down(self, v: Vcpu) -> int:
        v.online = False
        self.sched.sleep(v)
        v.set_runstate(Runstate.RUNSTATE_offline, self.now())
        if self._current is not None and self._current[1] is v and v.cpu is not None:
            v.cpu.request_stop()
        return 0

    def vcpu_up(self, v: Vcpu) -> int:
        if v.online:
            return 0
        never = (not pv_vcpu(v).initialised) if v.domain.is_pv else (
            v.state_entry_time == 0 and v.runstate is Runstate.RUNSTATE_offline)
        if never:
            return -Errno.EINVAL  # never initialised: VCPUOP_initialise first
        v.online = True
        if v.runstate is Runstate.RUNSTATE_offline:
            v.set_runstate(Runstate.RUNSTATE_runnable, self.now())
        if v.runnable:
            self.sched.runq_insert(v)
        return 0

    def set_periodic_timer(self, v: Vcpu, period: int) -> None:
        """VCPUOP_set_periodic_timer / stop_periodic_timer (period 0): VIRQ_TIMER every
        ``period`` ns from now on, as Xen's vcpu_periodic_timer_work arms it."""
        pv_vcpu(v).periodic_period = period
        v.periodic_deadline = self.now() + period if period else None
        if (v.periodic_deadline is not None and self._current is not None
                and v.periodic_deadline < self._slice_end):
            cpu = self._current[1].cpu
            if cpu is not None:  # the slice was cut for the old deadlines: end it sooner
                cpu.request_stop()

    def set_timer(self, v: Vcpu, deadline: int | None) -> None:
        v.timer_deadline = deadline
        if (deadline is not None and self._current is not None and self._current[1] is not v
                and deadline < self._slice_end):
            cpu = self._current[1].cpu
            if cpu is not None:
                cpu.request_stop()
        elif (deadline is not None and self._current is not None and self._current[1] is v
              and deadline < self._slice_end and v.cpu is not None):
            v.cpu.request_stop()

    # ============================================================ the scheduling loop
    def _all_vcpus(self) -> list[Vcpu]:
        return [v for d in self.domains.values() for v in d.vcpus if v.cpu is not None]

    def _next_deadline(self) -> int | None:
        times = [t for v in self._all_vcpus()
                 for t in (v.timer_deadline, v.poll_deadline, v.periodic_deadline)
                 if t is not None]
        return min(times) if times else None

    def _fire_timers(self, now: int) -> None:
        for v in self._all_vcpus():
            if v.timer_deadline is not None and v.timer_deadline <= now and v.domain.hvm:
                v.timer_deadline = None  # an HVM vCPU's timer is its PIT: wake it (hlt)
                self.vcpu_wake(v, "timer interrupt")
                continue
            if v.timer_deadline is not None and v.timer_deadline <= now:
                deadline = v.timer_deadline
                v.timer_deadline = None
                self.trace.emit(max(now, deadline), v.domain.domid, v.vcpu_id, Kind.EVENT,
                                "timer", {"deadline": deadline, "virq": "VIRQ_TIMER"})
                send_guest_vcpu_virq(self, v, Virq.VIRQ_TIMER)
            if v.poll_deadline is not None and v.poll_deadline <= now:
                v.poll_deadline = None
                self.vcpu_wake(v, "poll timeout")
            if v.periodic_deadline is not None and v.periodic_deadline <= now:
                # vcpu_periodic_timer_work: a tick now, the next one a period later
                period = pv_vcpu(v).periodic_period
                self.trace.emit(now, v.domain.domid, v.vcpu_id, Kind.EVENT, "timer", {
                    "deadline": v.periodic_deadline, "virq": "VIRQ_TIMER",
                    "periodic_ns": period})
                v.periodic_deadline = now + period if period else None
                send_guest_vcpu_virq(self, v, Virq.VIRQ_TIMER)

    def runnable_work(self) -> bool:
        return self.sched.has_runnable() or self._next_deadline() is not None

    def run(self, max_instructions: int | None = None,
            until: Callable[[], bool] | None = None,
            max_time_ns: int | None = None) -> RunStatus:
        """Schedule guest vCPUs until nothing can happen, the budget ends or ``until()``.

        Python's cyclic garbage collector is paused meanwhile: the trace
        allocates many small objects, which would trigger it every few hundred
        hypercalls (~10 % of the hypercall rate); reference counting still frees
        everything that is not kept, and cycles are collected after the run.
        """
        gc_was_enabled = gc.isenabled()
        gc.disable()
        previous = self._catch_interrupt()
        try:
            return self._run(max_instructions, until, max_time_ns)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if gc_was_enabled:
                gc.enable()

    def _catch_interrupt(self) -> object | None:
        """Ctrl-C (a notebook's "interrupt kernel") must not land in the middle of a
        hypercall: while guests run, SIGINT only asks the loop to stop after the current
        slice, where it raises KeyboardInterrupt with the host consistent."""
        if threading.current_thread() is not threading.main_thread():
            return None
        self._interrupted = False

        def on_sigint(signum: int, frame: object) -> None:
            self._interrupted = True
            if self._current is not None and self._current[1].cpu is not None:
                self._current[1].cpu.request_stop()

        try:
            return signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not allowed here (embedded interpreter)
            return None

    _interrupted = False

    def _run(self, max_instructions: int | None, until: Callable[[], bool] | None,
             max_time_ns: int | None = None) -> RunStatus:
        spent = 0
        deadline = None if max_time_ns is None else self.elapsed() + max_time_ns
        while True:
            if self._interrupted:
                self._interrupted = False
                raise KeyboardInterrupt("xenlab: run interrupted; the host is consistent and "
                                        "run() continues where it stopped")
            if until is not None and until():
                return RunStatus.UNTIL
            if max_instructions is not None and spent >= max_instructions:
                return RunStatus.BUDGET
            pc = min(self.pcpus, key=lambda p: (p.time, p.cpu_id))
            if deadline is not None and pc.time >= deadline:
                return RunStatus.BUDGET  # virtual time is up (idle guests make no instructions)
            if self._dom0_pending:
                self.run_dom0()
            if pc.time >= self.sched.next_acct:
                self._account_until(pc.time)
            self._fire_timers(pc.time)
            v = self.sched.pick_next(pc.time)
            if v is None:
                nxt = self._next_deadline()
                ahead = [p.time for p in self.pcpus if p.time > pc.time]
                ready = self.sched.earliest_ready()
                candidates = ([nxt] if nxt is not None else []) + ahead + (
                    [ready] if ready is not None else [])
                if not candidates:
                    return RunStatus.IDLE
                target = min(candidates)
                if deadline is not None and target > deadline:
                    # an idle guest's far timer (Linux asks for KTIME_MAX when it has
                    # nothing to do): time goes on to the run's end, not beyond it
                    target = deadline
                pc.time = max(pc.time, target)
                continue
            budget = self.sched.slice_for(v)
            nxt = self._next_deadline()
            if nxt is not None:
                budget = min(budget, max(1, nxt - pc.time))
            if max_instructions is not None:
                budget = min(budget, max_instructions - spent)
            spent += self._run_vcpu(pc, v, budget)

    def _account_until(self, now: int) -> None:
        """csched_acct for every 30 ms period up to ``now``. After a long idle stretch (a
        guest that set a timer far in the future and blocked) the periods beyond the
        first few change nothing (credits are clipped), so they are skipped in one step
        instead of being counted out one by one (2**62 ns would be 1.5e11 periods)."""
        for _ in range(_MAX_ACCT_CATCH_UP):
            if now < self.sched.next_acct:
                return
            self.sched.account()
            self.sched.next_acct += CSCHED_ACCT_NS
        if now >= self.sched.next_acct:
            periods = (now - self.sched.next_acct) // CSCHED_ACCT_NS + 1
            self.sched.next_acct += periods * CSCHED_ACCT_NS

    def _run_vcpu(self, pc: Pcpu, v: Vcpu, budget: int) -> int:
        cpu = v.cpu
        assert cpu is not None
        d = v.domain
        v.processor = pc.cpu_id
        if pc.last != (d.domid, v.vcpu_id):
            prev = pc.last
            pc.last = (d.domid, v.vcpu_id)
            self.trace.emit(pc.time, d.domid, v.vcpu_id, Kind.SCHED, "schedule", {
                "pcpu": pc.cpu_id, "prev": f"d{prev[0]}v{prev[1]}" if prev else "idle",
                "priority": PRI_NAMES.get(v.priority, v.priority), "credit": v.credit})
        v.set_runstate(Runstate.RUNSTATE_running, pc.time)
        self.update_runstate_area(v)
        if v.code_sync:   # a sibling rewrote code and sent an IPI (evtchn_send)
            v.code_sync = False
            cpu.flush_code()
        pc.current = v
        self._current = (pc, v)
        self._slice_end = pc.time + budget
        self.update_vcpu_system_time(v, pc.time)
        if v.entry_frame is not None:
            self.mem.write(self._entry_frame_maddr(), v.entry_frame)
            v.entry_frame = None
        if d.is_pv and v.callbacks:
            deliver_upcall(self, v)
        if v.pending_maps:  # left by a slice that ended in an exception
            self._apply_pending_maps(v)
        if d.hvm is not None:
            d.hvm.tick(v)
            cpu.enable_intr_window(d.hvm.intr_window(v))   # an interrupt waits for IF
            # the debug port's characters and the exits the vCPU answers itself wait in
            # it, their io records with them; the latch and the clock as Xen has them
            cpu.log_ports = not self.trace.wants_at_once(_LOGGED_KINDS)
            cpu.port_latch = d.hvm.pci_cf8
            cpu.port_clock_origin = pc.time
            v.timer_deadline = d.hvm.wake_deadline(v)  # bounds the slice at the next IRQ0
            if v.timer_deadline is not None and v.timer_deadline <= pc.time:
                v.timer_deadline = None
        try:
            if d.is_shutting_down:   # the upcall's bounce crashed it: no more guest code
                result: RunResult = RunResult(ExitReason.YIELD, 0)
            else:
                result = cpu.run(budget)
        except BaseException:
            # Interrupted (Ctrl-C in a notebook) or a bug: leave the host consistent, the
            # vCPU runnable where it stopped, and let the exception reach the caller.
            used = max(1, cpu.elapsed())
            self._current = None
            pc.current = None
            pc.time += used
            v.cpu_time += used
            v.ready_at = pc.time
            if v.runnable:
                v.set_runstate(Runstate.RUNSTATE_runnable, pc.time)
                self.sched.runq_insert(v)
            raise
        if v.pending_maps:
            self._apply_pending_maps(v)
        if v.pending_regs is not None and v.cpu is not None:
            for name, value in v.pending_regs.items():  # HYPERVISOR_iret's register load
                v.cpu.set_reg(name, value)
            v.pending_regs = None
        self._current = None
        pc.current = None
        executed = max(1, result.executed)
        pc.time += executed
        cpu.end_slice()
        self._tail_pcpu = pc  # what Xen does next happens at the end of the slice
        try:
            return self._finish_slice(pc, v, cpu, result, executed)
        finally:
            self._tail_pcpu = None

    def _finish_slice(self, pc: Pcpu, v: Vcpu, cpu: X86Vcpu, result: RunResult,
                      executed: int) -> int:
        """After a slice: account it, then what made it end (a fault, hlt, a stall)."""
        d = v.domain
        v.cpu_time += executed
        v.exit_time += result.charged
        self.instructions += result.executed - result.charged
        self.sched.burn_credits(v, executed)
        if (result.reason is ExitReason.FAULT and result.vector == 14 and d.is_pv
                and not d.is_shutting_down and ptwr_do_page_fault(self, v, cpu.fault_cr2)):
            pass  # a store into one of its own L1 tables, emulated and validated (ptwr)
        elif (result.reason is ExitReason.FAULT and not d.is_shutting_down and d.is_pv
                and result.vector is not None and pv_do_trap(self, v, cpu, result.vector)):
            pass  # emulated, or bounced to the guest's handler (or the bounce crashed it)
        elif (result.reason is ExitReason.FAULT and not d.is_shutting_down
                and d.hvm is not None and result.vector is not None
                and hvm_inject_hw_exception(self, v, cpu, result.vector)):
            pass  # an HVM guest in long mode: into its own IDT, as the CPU delivers it
        elif result.reason is ExitReason.FAULT and not d.is_shutting_down:
            regs = cpu.registers()
            rip = regs.get("rip", regs.get("eip", 0))
            insn = self._faulting_instruction(d, cpu, rip)
            why = (f"Unhandled {result.detail} [#{result.vector}] at rip "
                   f"{rip:016x}{f' ({insn})' if insn else ''}")
            self.domain_crash(d, v, why, regs)
        elif result.reason is ExitReason.HLT and not d.is_shutting_down:
            self._sleep(v, "hlt")
            if d.hvm is not None:  # wakes for the next timer interrupt, if it can take one
                v.timer_deadline = d.hvm.wake_deadline(v)
        elif result.reason is ExitReason.STALLED and not d.is_shutting_down:
            self._stalled(d, v, cpu)
        if self._pending_deaths:
            self._process_deaths()
        v.ready_at = pc.time
        if v.runnable and not v.blocked:
            v.set_runstate(Runstate.RUNSTATE_runnable, pc.time)
            self.sched.runq_insert(v)
        elif v.blocked:
            v.set_runstate(Runstate.RUNSTATE_blocked, pc.time)
        return result.executed - result.charged  # guest instructions, not exit time

    def update_runstate_area(self, v: Vcpu) -> None:
        """update_runstate_area: when a vCPU is switched in, Xen copies its
        vcpu_runstate_info (state, state_entry_time, time[4] in each state) into the
        area its kernel registered (VCPUOP_register_runstate_memory_area), through the
        kernel's page tables; an address that does not map is skipped, as Xen skips it.
        Linux reads it for steal time (xen_steal_clock) and to see whether another vCPU
        was preempted (xen_vcpu_stolen). Xen's context_switch also writes the area of
        the vCPU it switches out; xenlab writes at switch-in only, because its pCPUs run
        one after another in virtual time: between two of its slices a vCPU is, on
        Xen, still running on its own pCPU, and "runnable" would tell its siblings it
        had been preempted."""
        pv = v.pv
        if pv is None or not pv.runstate_area or not v.domain.is_pv or not v.guest_table:
            return
        data = struct.pack("<i4xQ4Q", int(v.runstate), v.state_entry_time, *v.runstate_time)
        with contextlib.suppress(GuestFault):
            copy_to_guest(self.mem, v.domain, v.guest_table << PAGE_SHIFT, pv.runstate_area,
                          data)

    def _stalled(self, d: Domain, v: Vcpu, cpu: X86Vcpu) -> None:
        """The CPU stopped at an instruction it did not execute: it must fault there
        (see ExitReason.STALLED). Decide which fault from the instruction, as the CPU
        would, and crash the domain; a second stall at the same place is #GP."""
        rip = cpu.pc()
        insn = self._faulting_instruction(d, cpu, rip)
        mnemonic = insn.split()[0] if insn else ""
        if not insn or mnemonic in ("ud2", "ud0", "ud1"):
            vector, name = 6, "#UD invalid opcode"
        elif "privileged" in insn:
            vector, name = 13, "#GP general protection"
        elif v.stall_rip != rip:
            v.stall_rip = rip  # perhaps spurious: let it run once more
            return
        else:
            vector, name = 13, "#GP general protection"
        v.stall_rip = None
        if d.is_pv and pv_do_trap(self, v, cpu, vector):
            return
        regs = cpu.registers()
        why = f"Unhandled {name} [#{vector}] at rip {rip:016x}{f' ({insn})' if insn else ''}"
        self.domain_crash(d, v, why, regs)

    def read_guest_code(self, d: Domain, cpu: X86Vcpu, va: int, size: int) -> bytes:
        """Instruction bytes at a guest virtual address, or b'' if they cannot be read."""
        from xenlab.xen.guest_access import GuestFault, copy_from_guest

        try:
            return copy_from_guest(self.mem, d, cpu.reg("cr3") if d.is_pv else None, va, size,
                                   hvm=None if d.is_pv else cpu.paging_state())
        except GuestFault:
            return b""

    def _faulting_instruction(self, d: Domain, cpu: X86Vcpu, rip: int) -> str:
        code = self.read_guest_code(d, cpu, rip, 15) or self.read_guest_code(
            d, cpu, rip, 16 - (rip & 0xF) if rip & 0xFFF > 0xFF0 else 1)
        if not code:
            return ""
        text = cpu.disassemble(code, rip)
        privileged = {"hlt", "cli", "sti", "wrmsr", "rdmsr", "lgdt", "lidt", "invlpg", "in",
                      "out", "wbinvd", "clts", "lmsw", "ltr", "lldt", "mov"}
        mnemonic = text.split()[0] if text else ""
        # "mov" is privileged only to or from a control or debug register
        if mnemonic == "mov" and not re.search(r"\b[cd]r\d+\b", text):
            mnemonic = ""
        if mnemonic in privileged and d.is_pv:
            text += ": a privileged instruction in a PV guest"
        return text

    # ============================================================ inspection
    def running_vcpus(self) -> set[tuple[int, int]]:
        """(domid, vcpu) pairs on a pCPU now; Dom0's vCPU 0 runs the toolstack asking."""
        out = {(0, 0)}
        if self._current is not None:
            out.add((self._current[1].domain.domid, self._current[1].vcpu_id))
        return out

    def check_invariants(self) -> None:
        """Every frame free or owned once; page counts add up; Xen frames accounted;
        event channels consistent at both ends; grant mappings match the granters' pins
        and GTF_reading/GTF_writing bits; the run queue and timers hold live vCPUs only."""
        self.mem.check()
        check_references(self)
        owned = sum(d.tot_pages for d in list(self.domains.values()) + list(self.zombies.values()))
        shared = sum(len(d.shared_mfns) for d in self.domains.values())
        xen = self.mem.pages_owned_by(DOMID_XEN)
        assert owned + xen + self.mem.free_pages == self.mem.total_pages, (owned, xen)
        assert shared <= xen
        granted: dict[int, set[int]] = {}
        for d in self.domains.values():
            for ext in d.extents:
                assert all(o == d.domid for o in self.mem.owner[ext.mfn : ext.end])
            if d.grant_table is not None:
                for m in d.grant_table.maptrack.values():
                    granted.setdefault(d.domid, set()).add(m.mfn)
                    assert m.granter in self.domains, "mapping of a dead domain's frame"
        for d in self.domains.values():
            for mfn in d.foreign_mfns:
                assert mfn in granted.get(d.domid, set()), (d.domid, mfn)
        # Event channels: both ends of every interdomain channel agree; VIRQ map and
        # ports agree; an unbound port names a plain domid (Xen keeps the id even when
        # no such domain lives); Dom0's handlers sit on Dom0 ports that exist.
        import struct

        from xenlab.public import grant_table as G
        from xenlab.public.xen import DOMID_SELF
        from xenlab.xen.event_channel import ECS

        for d in self.domains.values():
            t = d.evtchn
            assert t is not None, f"d{d.domid}: no event channel table"
            assert t.ports.get(0) is not None and t.ports[0].state is ECS.RESERVED, d.domid
            for port, ch in t.ports.items():
                where = f"d{d.domid} port {port}"
                assert 0 <= port < t.max_ports, where
                assert ch.state is not ECS.FREE, f"{where}: a FREE channel in the table"
                if ch.state is ECS.INTERDOMAIN:
                    rd = self.domains.get(ch.remote_domid)
                    assert rd is not None, f"{where}: peer d{ch.remote_domid} does not exist"
                    assert rd.evtchn is not None
                    rch = rd.evtchn.ports.get(ch.remote_port)
                    assert rch is not None and rch.state is ECS.INTERDOMAIN, (
                        f"{where}: peer port d{rd.domid}:{ch.remote_port} is not interdomain")
                    assert (rch.remote_domid, rch.remote_port) == (d.domid, port), (
                        f"{where}: peer d{rd.domid}:{ch.remote_port} points at "
                        f"d{rch.remote_domid}:{rch.remote_port}")
                elif ch.state is ECS.UNBOUND:
                    assert 0 <= ch.remote_domid <= 0xFFFF and ch.remote_domid != DOMID_SELF, (
                        f"{where}: unbound for {ch.remote_domid:#x}")
                elif ch.state is ECS.VIRQ:
                    assert t.virq_to_port.get((ch.virq, ch.notify_vcpu)) == port, (
                        f"{where}: VIRQ {ch.virq} on vcpu {ch.notify_vcpu} not in the map")
                if ch.state in (ECS.VIRQ, ECS.IPI, ECS.INTERDOMAIN, ECS.UNBOUND) and d.vcpus:
                    assert 0 <= ch.notify_vcpu < len(d.vcpus), f"{where}: notify_vcpu"
            for (virq, vcpu), port in t.virq_to_port.items():
                ch = t.ports.get(port)
                assert ch is not None and ch.state is ECS.VIRQ and (ch.virq, ch.notify_vcpu) == (
                    virq, vcpu), f"d{d.domid}: VIRQ {virq}/vcpu {vcpu} -> stale port {port}"
        dom0 = self.domains.get(0)
        if dom0 is not None and dom0.evtchn is not None:
            for port in self.dom0_handlers:
                ch = dom0.evtchn.lookup(port)
                assert ch is not None and ch.state is not ECS.RESERVED, (
                    f"Dom0 handler on closed port {port}")
        # Grants: every maptrack entry names a live granter and a valid ref; the
        # granters' pin counts are exactly the mappings; GTF_reading / GTF_writing are
        # set in the granter's entry iff it is pinned (reading: any pin, writing: a
        # writable one), over the whole table.
        expected: dict[int, dict[int, list[int]]] = {}
        for d in self.domains.values():
            gt = d.grant_table
            assert gt is not None, f"d{d.domid}: no grant table"
            for handle, m in gt.maptrack.items():
                assert m.handle == handle and 0 <= handle < gt.next_handle, (d.domid, handle)
                g = self.domains.get(m.granter)
                assert g is not None, f"d{d.domid} handle {handle}: granter d{m.granter} dead"
                assert g.grant_table is not None and 0 <= m.ref < g.grant_table.nr_entries, (
                    f"d{d.domid} handle {handle}: ref {m.ref} outside d{g.domid}'s table")
                pins = expected.setdefault(g.domid, {}).setdefault(m.ref, [0, 0])
                pins[0 if m.readonly else 1] += 1
        busy = G.GTF_reading | G.GTF_writing
        for d in self.domains.values():
            gt = d.grant_table
            assert gt is not None
            want = expected.get(d.domid, {})
            assert gt.pins == want, f"d{d.domid}: pins {gt.pins} but mappings say {want}"
            for i, frame in enumerate(gt.frames):
                raw = self.mem.read(frame << PAGE_SHIFT, PAGE_SIZE)
                for j, (flags,) in enumerate(struct.iter_unpack("<H6x", raw)):
                    pin = want.get(i * (PAGE_SIZE // 8) + j)
                    need = 0 if pin is None else (
                        G.GTF_reading | (G.GTF_writing if pin[1] else 0))
                    assert flags & busy == need, (
                        f"d{d.domid} ref {i * (PAGE_SIZE // 8) + j}: flags {flags:#x}, pins {pin}")
        # Scheduler: the run queue holds runnable vCPUs of live domains, once each;
        # timers and poll timeouts are armed only on vCPUs of live, running domains.
        live = {id(v) for d in self.domains.values() for v in d.vcpus}
        assert len({id(v) for v in self.sched.runq}) == len(self.sched.runq), "runq duplicate"
        for v in self.sched.runq:
            assert id(v) in live and v.cpu is not None, f"d{v.domain.domid}v{v.vcpu_id} dead"
            assert v.runnable and not v.blocked, (
                f"d{v.domain.domid}v{v.vcpu_id} on the run queue but not runnable")
            if self._current is not None:
                assert v is not self._current[1], "the running vCPU is also queued"
        for v in self.sched.vcpus:
            assert id(v) in live, f"scheduler knows dead d{v.domain.domid}v{v.vcpu_id}"
        for d in self.domains.values():
            for v in d.vcpus:
                if v.timer_deadline is not None or v.poll_deadline is not None:
                    assert v.cpu is not None and not d.is_shut_down and not d.is_dying, (
                        f"timer armed on d{d.domid}v{v.vcpu_id} (shut down or dying)")
                if v.poll_deadline is not None:
                    assert v.blocked, f"poll timeout on unblocked d{d.domid}v{v.vcpu_id}"

    def check_destroyed(self, domid: int) -> None:
        """A destroyed domain left nothing in Xen: no frame, no vCPU, no port of another
        domain connected to it, no grant mapping of or by it, no Dom0 handler on a port
        toward it. (Dom0's xenstore side is checked by the toolstack's tests.)"""
        from xenlab.xen.event_channel import ECS

        assert domid not in self.domains, f"d{domid} still exists"
        assert self.mem.pages_owned_by(domid) == 0, f"d{domid} still owns frames"
        for v in self.sched.vcpus + self.sched.runq:
            assert v.domain.domid != domid, f"scheduler still holds d{domid}v{v.vcpu_id}"
        assert not any(d.domid == domid for d in self._pending_deaths)
        for d in self.domains.values():
            assert d.evtchn is not None and d.grant_table is not None
            for port, ch in d.evtchn.ports.items():
                assert not (ch.state is ECS.INTERDOMAIN and ch.remote_domid == domid), (
                    f"d{d.domid} port {port} still connected to d{domid}")
                if d.domid == 0 and ch.state is ECS.UNBOUND and ch.remote_domid == domid:
                    assert port not in self.dom0_handlers, (
                        f"Dom0 still handles port {port} for d{domid}")
            for m in d.grant_table.maptrack.values():
                assert m.granter != domid, f"d{d.domid} still maps a grant of d{domid}"
