"""Isolation: what one domain cannot do to another, whatever it asks Xen or xenstored.

Guests are tiny PV kernels built by tests/elfgen.py; grant entries are written
straight into the granter's grant-table frames (what a frontend's
gnttab_grant_foreign_access does), and Dom0 is reached through its Python kernel
interface (``Dom0Kernel``), as the backends reach it.
"""

from __future__ import annotations

import ctypes
import hashlib
import struct

import pytest
from elfgen import DATA_VA, RESULTS_VA, VIRT_BASE, Asm, create, new_host, results

from xenlab.dom0.kernel import Dom0Kernel
from xenlab.public import grant_table as G
from xenlab.public.console import ConsoleIO
from xenlab.public.errno import Errno
from xenlab.public.event_channel import EvtchnOp
from xenlab.public.grant_table import GntSt, GnttabOp
from xenlab.public.memory import MemoryOp
from xenlab.public.sched import ShutdownReason
from xenlab.public.version import XenVer
from xenlab.public.xen import DOMID_SELF, Hypercall
from xenlab.tools.xenstore.xenstored import XenStore, XenStoreError
from xenlab.tools.xenstore.xs_wire import XsdSockmsgType, pack_msg, unpack_header
from xenlab.xen.grant_table import gnttab_map_grant_ref, read_entry
from xenlab.xen.mm import l1e_address
from xenlab.xen.page_alloc import FREE, PAGE_SHIFT, PAGE_SIZE, HostMemory

H = Hypercall
EXTRA_VA = RESULTS_VA + PAGE_SIZE      # the extra bss page (create(..., bss=PAGE_SIZE))
DATA_PFN = (DATA_VA - VIRT_BASE) >> PAGE_SHIFT
UNMAPPED = 0x1000                      # nothing maps the low 4 GiB of a PV guest here


def _grant(host, granter, ref: int, grantee: int, frame: int, flags: int = 0) -> None:
    """Write v1 grant entry ``ref`` of ``granter``: {flags, domid, frame}."""
    assert host.gnttab_grow(granter, 1 + ref * 8 // PAGE_SIZE)
    gt = granter.grant_table
    addr = (gt.frames[ref * 8 // PAGE_SIZE] << PAGE_SHIFT) + ref * 8 % PAGE_SIZE
    host.mem.write(addr, struct.pack("<HHI", G.GTF_permit_access | flags, grantee, frame))


def _pages_hash(host, d) -> str:
    h = hashlib.sha256()
    for ext in sorted(d.extents, key=lambda e: e.mfn):
        h.update(host.mem.read(ext.mfn << PAGE_SHIFT, ext.count << PAGE_SHIFT))
    return h.hexdigest()


def _spinner(host, name: str, **kw):
    return create(host, Asm().spin().bytes(), name=name, unpause=False, **kw)


# ------------------------------------------------------------------ grants
def test_mapping_a_grant_not_offered_to_you_is_refused() -> None:
    host = new_host()
    a = _spinner(host, "A")
    b = _spinner(host, "B")
    c = _spinner(host, "C")
    frame = a.pfn_to_mfn(DATA_PFN)
    _grant(host, a, 5, c.domid, frame)                       # A offers a page to C only
    flags = G.GNTMAP_host_map
    st, m = gnttab_map_grant_ref(host, b, a.domid, 5, flags)
    assert (st, m) == (GntSt.GNTST_permission_denied, None) and st == -8
    st, m = gnttab_map_grant_ref(host, b, a.domid, a.grant_table.nr_entries, flags)
    assert (st, m) == (GntSt.GNTST_bad_gntref, None)
    st, _ = gnttab_map_grant_ref(host, b, 77, 5, flags)      # no such domain
    assert st == GntSt.GNTST_bad_domain
    st, m = gnttab_map_grant_ref(host, c, a.domid, 5, flags)  # the real grantee may
    assert st == GntSt.GNTST_okay and m is not None and m.mfn == frame
    assert b.grant_table.maptrack == {}
    host.check_invariants()
    dead = a.domid
    host.domain_destroy(a)                                   # the granter dies
    assert c.grant_table.maptrack == {}
    st, _ = gnttab_map_grant_ref(host, b, dead, 5, flags)
    assert st == GntSt.GNTST_bad_domain
    host.check_invariants()


def test_map_grant_ref_hypercall_for_someone_elses_grant_is_permission_denied() -> None:
    host = new_host()
    a = _spinner(host, "A")
    op = G.GnttabMapGrantRef(host_addr=EXTRA_VA, flags=G.GNTMAP_host_map, ref=3, dom=a.domid)
    code = (Asm().call(H.grant_table_op, GnttabOp.GNTTABOP_map_grant_ref, DATA_VA, 1)
            .store_rax(0).shutdown(0))
    b = create(host, code.bytes(), name="B", data=bytes(op), bss=PAGE_SIZE, unpause=False)
    _grant(host, a, 3, 0, a.pfn_to_mfn(DATA_PFN))            # for Dom0, not for B
    before = _pages_hash(host, a)
    host.domain_unpause(b)
    host.run(max_instructions=1_000_000)
    assert results(host, b, 1) == [0]
    out = G.GnttabMapGrantRef.from_buffer_copy(
        host.mem.read(b.maddr(DATA_PFN), ctypes.sizeof(G.GnttabMapGrantRef)))
    assert out.status == GntSt.GNTST_permission_denied
    assert not b.foreign_mfns and b.grant_table.maptrack == {}
    assert _pages_hash(host, a) == before
    host.check_invariants()


def test_writing_through_a_read_only_grant_fails() -> None:
    host = new_host()
    kernel = Dom0Kernel(host)
    a = _spinner(host, "A")
    frame = a.pfn_to_mfn(DATA_PFN)
    host.mem.write(frame << PAGE_SHIFT, b"granted read-only")
    _grant(host, a, 1, 0, frame, G.GTF_readonly)
    st, page = kernel.map_grant(a.domid, 1, readonly=False)
    assert (st, page) == (GntSt.GNTST_permission_denied, None)
    st, page = kernel.map_grant(a.domid, 1, readonly=True)
    assert st == GntSt.GNTST_okay and page is not None
    assert bytes(page.page[:17]) == b"granted read-only"
    assert page.page.readonly
    with pytest.raises(TypeError):
        page.page[0] = 0x41
    with pytest.raises(TypeError):
        page.page[0:4] = b"evil"
    flags = read_entry(host, a, 1)[0]
    assert flags & G.GTF_reading and not flags & G.GTF_writing
    assert kernel.unmap_grant(page) == GntSt.GNTST_okay
    assert not read_entry(host, a, 1)[0] & G.GTF_reading
    assert host.mem.read(frame << PAGE_SHIFT, 17) == b"granted read-only"
    host.check_invariants()


def test_pv_grantee_cannot_write_a_read_only_host_mapping() -> None:
    host = new_host()
    a = _spinner(host, "A")
    frame = a.pfn_to_mfn(DATA_PFN)
    host.mem.write(frame << PAGE_SHIFT, b"A's data")
    size = ctypes.sizeof(G.GnttabMapGrantRef)
    rw = G.GnttabMapGrantRef(host_addr=EXTRA_VA, flags=G.GNTMAP_host_map, ref=2, dom=a.domid)
    ro = G.GnttabMapGrantRef(host_addr=EXTRA_VA, flags=G.GNTMAP_host_map | G.GNTMAP_readonly,
                             ref=2, dom=a.domid)
    code = (Asm().call(H.grant_table_op, GnttabOp.GNTTABOP_map_grant_ref, DATA_VA, 1)
            .store_rax(0)
            .call(H.grant_table_op, GnttabOp.GNTTABOP_map_grant_ref, DATA_VA + size, 1)
            .store_rax(1)
            .mov("rax", EXTRA_VA)
            .raw("8a00")                                     # mov (%rax), %al: reading works
            .raw("a2" + struct.pack("<Q", RESULTS_VA + 16).hex())  # movabs %al, results[2]
            .mov("rax", EXTRA_VA)
            .raw("c60041")                                   # movb $0x41, (%rax): must fault
            .shutdown(0))
    b = create(host, code.bytes(), name="B", data=bytes(rw) + bytes(ro), bss=PAGE_SIZE,
               unpause=False)
    _grant(host, a, 2, b.domid, frame, G.GTF_readonly)
    before = _pages_hash(host, a)
    host.domain_unpause(b)
    host.run(max_instructions=1_000_000)
    assert results(host, b, 2) == [0, 0]
    st_rw = G.GnttabMapGrantRef.from_buffer_copy(host.mem.read(b.maddr(DATA_PFN), size))
    st_ro = G.GnttabMapGrantRef.from_buffer_copy(host.mem.read(b.maddr(DATA_PFN) + size, size))
    assert st_rw.status == GntSt.GNTST_permission_denied
    assert st_ro.status == GntSt.GNTST_okay
    assert results(host, b, 3)[2] & 0xFF == ord("A")         # it read A's first byte
    # the write faulted: B crashed, A's page is as it was, the PTE has no RW bit
    assert b.is_crashed and b.shutdown_code == ShutdownReason.SHUTDOWN_crash
    assert "#PF" in b.crash_reason or "page fault" in b.crash_reason.lower()
    assert host.mem.read(frame << PAGE_SHIFT, 8) == b"A's data"
    assert _pages_hash(host, a) == before
    l1e = l1e_address(host.mem, b, b.vcpus[0].cpu.reg("cr3"), EXTRA_VA)
    assert l1e is not None
    pte = host.mem.read_u64(l1e)
    assert (pte >> PAGE_SHIFT) & 0xFF_FFFF_FFFF == frame and pte & 1 and not pte & 2
    host.check_invariants()
    host.domain_destroy(b)
    assert not read_entry(host, a, 2)[0] & (G.GTF_reading | G.GTF_writing)
    host.check_invariants()


# ------------------------------------------------------------------ xenstore
def test_domu_writing_under_dom0s_directory_is_eacces() -> None:
    store = XenStore()
    store.write("/local/domain/0/name", "Domain-0")
    store.introduce_domain(5)
    with pytest.raises(XenStoreError) as err:
        store.write("/local/domain/0/evil", "x", domid=5)
    assert err.value.error == "EACCES"
    with pytest.raises(XenStoreError) as err:
        store.write("/local/domain/0/name", "pwned", domid=5)
    assert err.value.error == "EACCES"
    raw = pack_msg(XsdSockmsgType.XS_WRITE, 7, 0, b"/local/domain/0/evil\0x")
    [reply] = store.handle_message(5, raw)
    rtype, req_id, _tx, length = unpack_header(reply)
    assert rtype == XsdSockmsgType.XS_ERROR and req_id == 7
    assert reply[-length:] == b"EACCES\0"
    assert store.read("/local/domain/0/evil") is None
    assert store.read("/local/domain/0/name") == "Domain-0"


# ------------------------------------------------------------------ event channels
@pytest.mark.parametrize("port", [0, 5, 1023, 4096, 0xFFFFFFFF])
def test_send_on_an_invalid_port_is_einval(port: int) -> None:
    host = new_host()
    code = Asm().call(H.event_channel_op, EvtchnOp.EVTCHNOP_send, DATA_VA).store_rax(0)
    d = create(host, code.shutdown(0).bytes(), data=struct.pack("<I", port))
    host.run(max_instructions=1_000_000)
    assert results(host, d, 1) == [-Errno.EINVAL]
    assert not d.is_crashed and d.shutdown_code == 0
    host.check_invariants()


# ------------------------------------------------------------------ memory
def test_domu_cannot_reach_another_domus_memory_by_any_hypercall() -> None:
    host = new_host()
    victim = _spinner(host, "victim")
    vframe = victim.pfn_to_mfn(DATA_PFN)
    host.mem.write(vframe << PAGE_SHIFT, b"victim's secret")
    _grant(host, victim, 0, 0, vframe)                       # offered to Dom0 only

    copy_size = ctypes.sizeof(G.GnttabCopy)
    map_size = ctypes.sizeof(G.GnttabMapGrantRef)
    copies, reservation, res_other, gmap = 0x100, 0x300, 0x340, 0x380
    array_at = 0x400
    code = Asm()
    code.call(H.update_va_mapping, EXTRA_VA, (vframe << PAGE_SHIFT) | 7, 2).store_rax(0)
    code.call(H.update_va_mapping, EXTRA_VA, (vframe << PAGE_SHIFT) | 5, 2).store_rax(1)
    code.call(H.console_io, ConsoleIO.CONSOLEIO_write, 16, UNMAPPED).store_rax(2)
    code.call(H.xen_version, XenVer.XENVER_extraversion, UNMAPPED).store_rax(3)
    code.call(H.grant_table_op, GnttabOp.GNTTABOP_copy, DATA_VA + copies, 3).store_rax(4)
    code.call(H.memory_op, MemoryOp.XENMEM_decrease_reservation,
              DATA_VA + reservation).store_rax(5)
    code.call(H.memory_op, MemoryOp.XENMEM_decrease_reservation,
              DATA_VA + res_other).store_rax(6)
    code.call(H.grant_table_op, GnttabOp.GNTTABOP_map_grant_ref, DATA_VA + gmap, 1)
    code.store_rax(7)
    code.call(H.console_io, ConsoleIO.CONSOLEIO_write, 6, DATA_VA).store_rax(8)
    code.shutdown(0)
    attacker = create(host, code.bytes(), name="attacker", bss=PAGE_SIZE, unpause=False)
    own = attacker.pfn_to_mfn((RESULTS_VA - VIRT_BASE) >> PAGE_SHIFT)

    def copy_op(src_u: int, src_dom: int, flags: int = 0) -> bytes:
        op = G.GnttabCopy(len=15, flags=flags)
        op.source.u, op.source.domid, op.source.offset = src_u, src_dom, 0
        op.dest.u, op.dest.domid, op.dest.offset = own, DOMID_SELF, 0x800
        return bytes(op)

    data = bytearray(0x1000)
    data[0:6] = b"alive\n"
    ops = (copy_op(vframe, victim.domid)                     # the victim's frame by number
           + copy_op(vframe, DOMID_SELF)                     # ... pretending it is ours
           + copy_op(0, victim.domid, G.GNTCOPY_source_gref))  # a grant meant for Dom0
    data[copies : copies + 3 * copy_size] = ops
    # struct xen_memory_reservation {extent_start, nr_extents, extent_order, mem_flags, domid}
    data[reservation : reservation + 26] = struct.pack("<QQIIH", DATA_VA + array_at, 1, 0, 0,
                                                       DOMID_SELF)
    data[res_other : res_other + 26] = struct.pack("<QQIIH", DATA_VA + array_at, 1, 0, 0,
                                                   victim.domid)
    data[array_at : array_at + 8] = struct.pack("<Q", vframe)
    data[gmap : gmap + map_size] = bytes(G.GnttabMapGrantRef(
        host_addr=EXTRA_VA, flags=G.GNTMAP_host_map, ref=0, dom=victim.domid))
    host.mem.write(attacker.maddr(DATA_PFN), bytes(data))

    before = _pages_hash(host, victim)
    victim_pages, victim_extents = victim.tot_pages, list(victim.extents)
    host.domain_unpause(attacker)
    host.run(max_instructions=2_000_000)

    r = results(host, attacker, 9)
    assert r[0] == r[1] == -Errno.EINVAL                    # update_va_mapping
    assert r[2] == r[3] == -Errno.EFAULT                    # console_io, xen_version
    assert r[4] == 0                                        # the copy op itself ran...
    out = host.mem.read(attacker.maddr(DATA_PFN) + copies, 3 * copy_size)
    statuses = [G.GnttabCopy.from_buffer_copy(out, i * copy_size).status for i in range(3)]
    assert statuses == [GntSt.GNTST_permission_denied, GntSt.GNTST_bad_page,
                        GntSt.GNTST_permission_denied]      # ...and every copy was refused
    assert host.mem.read((own << PAGE_SHIFT) + 0x800, 15) == bytes(15)
    assert r[5] == 0                                        # no extent released
    assert r[6] == -Errno.EPERM                             # not on someone else's behalf
    assert r[7] == 0
    status = G.GnttabMapGrantRef.from_buffer_copy(
        host.mem.read(attacker.maddr(DATA_PFN) + gmap, map_size)).status
    assert status == GntSt.GNTST_permission_denied
    assert r[8] == 0 and attacker.console == bytearray(b"alive\n")
    assert not attacker.is_crashed and attacker.shutdown_code == 0
    # the victim: every frame still its own, every byte unchanged
    assert host.mem.owner[vframe] == victim.domid
    assert victim.tot_pages == victim_pages and victim.extents == victim_extents
    assert _pages_hash(host, victim) == before
    assert not attacker.foreign_mfns and attacker.grant_table.maptrack == {}
    host.check_invariants()


def test_freed_frames_are_scrubbed_before_reuse() -> None:
    """A destroyed domain's data never reaches the next owner of its frames (this once
    failed: MADV_DONTNEED does not zero a shared anonymous mapping)."""
    mem = HostMemory(64)
    [ext] = mem.alloc(1, 4)
    mem.write(ext.mfn << PAGE_SHIFT, b"secret of domain 1")
    mem.free([ext])
    assert mem.owner[ext.mfn] == FREE
    [again] = mem.alloc(2, 4)
    assert again.mfn == ext.mfn
    assert mem.read(again.mfn << PAGE_SHIFT, 18) == bytes(18)


# ------------------------------------------------------------------ escapes (issue 12)
# Each of these was a way out of a domain on the code before page reference counts.
def _decrease_hvm(host, d, pfns: list[int]) -> int:
    """XENMEM_decrease_reservation from HVM guest ``d`` (what its vmcall reaches), with the
    struct and the pfn array in its low memory."""
    from xenlab.xen.hypercall import HypercallContext
    from xenlab.xen.memory import do_memory_op

    arg, arr = 0x7000, 0x7100
    host._current = None
    ctx = HypercallContext(host, d, d.vcpus[0], d.vcpus[0].cpu, H.memory_op)
    # a 32-bit guest passes struct compat_memory_reservation and 32-bit pfns
    res, pfn = ("<IIIIHxx", "I") if ctx.compat else ("<QQIIHxx", "Q")
    host.mem.write(d.maddr(arg >> PAGE_SHIFT) | (arg & 0xFFF),
                   struct.pack(res, arr, len(pfns), 0, 0, DOMID_SELF))
    host.mem.write(d.maddr(arr >> PAGE_SHIFT) | (arr & 0xFFF),
                   struct.pack(f"<{len(pfns)}{pfn}", *pfns).ljust(16, b"\0"))
    return do_memory_op(ctx, MemoryOp.XENMEM_decrease_reservation, arg)


def test_freed_special_pages_stay_the_guests_while_dom0_maps_them() -> None:
    """Was: an HVM guest gave back its xenstore and console pages; the frames went to the
    heap, the next domain got them, and xenstored/xenconsoled wrote into its memory."""
    from xenlab.lab import Lab

    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('hvm-hello.cfg')}")
    lab.run(max_instructions=3_000_000)
    host = lab.host
    hvm = lab.domain("hvm-hello")
    special = [hvm.store_mfn, hvm.console_mfn]
    pfns = [hvm.mfn_to_pfn(m) for m in special]
    assert None not in pfns
    assert [_decrease_hvm(host, hvm, [pfn]) for pfn in pfns] == [1, 1]  # Xen's answer: done
    assert _decrease_hvm(host, hvm, []) == 0
    for mfn in special:                                    # ... but the frames stay
        assert host.mem.owner[mfn] == hvm.domid and hvm.mfn_to_pfn(mfn) is None
    host.check_invariants()
    lab.xl(f"create {Lab.image('pv-hello.cfg')}")
    lab.run(max_instructions=5_000_000)
    hello = lab.domain("pv-hello")
    assert not any(hello.owns_mfn(m) for m in special)
    assert b"Hello" in bytes(hello.console) and not hello.is_crashed
    assert b"Hello from a PV" not in bytes(hvm.console)
    host.check_invariants()
    # destroying the HVM guest: Dom0 unmaps, then the frames go back to the heap
    hid = hvm.domid
    lab.xl("destroy hvm-hello")
    assert all(host.mem.owner[m] == FREE for m in special)
    assert hid not in host.zombies
    host.check_destroyed(hid)
    host.check_invariants()


def test_a_frame_mapped_by_dom0_outlives_its_owner_as_a_zombie() -> None:
    """Dom0 still maps a frame when the domain is destroyed: the frame is not handed out
    until Dom0 unmaps it (the domain lingers, as "(null)" does on real Xen)."""
    host = new_host()
    victim = _spinner(host, "victim")
    frame = victim.pfn_to_mfn(DATA_PFN)
    kernel = Dom0Kernel(host)
    mapped = kernel.map_foreign_mfn(victim.domid, frame)
    assert mapped is not None
    vid = victim.domid
    host.domain_destroy(victim)
    assert vid in host.zombies and host.mem.owner[frame] == vid
    host.check_invariants()
    other = _spinner(host, "next")
    assert not other.owns_mfn(frame)
    assert other.domid != vid                              # a zombie's domid is still taken
    kernel.unmap_grant(mapped)
    assert vid not in host.zombies and host.mem.owner[frame] == FREE
    host.check_destroyed(vid)
    host.check_invariants()


def test_a_guest_may_map_its_own_grant_without_taking_the_host_down() -> None:
    """Was: a PV guest that mapped (GNTMAP_host_map) a grant it made to itself ended the
    run in a Python traceback (UC_ERR_MAP), every domain with it."""
    host = new_host()
    size = ctypes.sizeof(G.GnttabMapGrantRef)
    data = bytearray(0x400)
    data[0:size] = bytes(G.GnttabMapGrantRef(host_addr=EXTRA_VA, flags=G.GNTMAP_host_map,
                                             ref=3, dom=DOMID_SELF))
    code = Asm()
    code.call(H.grant_table_op, GnttabOp.GNTTABOP_map_grant_ref, DATA_VA, 1).store_rax(0)
    code.mov("rbx", EXTRA_VA + 0x800).raw("488b03").store_rax(1)  # mov rax, [rbx]
    code.shutdown(0)
    bystander = _spinner(host, "bystander")
    d = create(host, code.bytes(), data=bytes(data), bss=PAGE_SIZE, unpause=False)
    own = d.pfn_to_mfn(DATA_PFN)                          # its data page, seen twice
    host.mem.write((own << PAGE_SHIFT) + 0x800, struct.pack("<Q", 0x5EC12E7))
    _grant(host, d, 3, d.domid, own)
    host.domain_unpause(d)
    host.run(max_instructions=1_000_000)
    op = G.GnttabMapGrantRef.from_buffer_copy(host.mem.read(d.maddr(DATA_PFN), size))
    assert results(host, d, 2) == [0, 0x5EC12E7] and op.status == GntSt.GNTST_okay
    assert d.shutdown_code == 0 and not d.is_crashed
    assert bystander.domid in host.domains and not bystander.is_crashed
    host.check_invariants()
    host.domain_destroy(d)
    host.check_invariants()


def _l1_frame(host, d, va: int) -> int:
    l1e = l1e_address(host.mem, d, d.vcpus[0].cpu.reg("cr3"), va)
    assert l1e is not None
    return l1e >> PAGE_SHIFT


def test_page_table_frames_are_never_mapped_writable_through_a_grant() -> None:
    """Was: guest A granted its own L1 to B writable; B mapped it (status 0), rewrote A's
    PTEs, and A then read and wrote Xen's per-vCPU stack frame and its own L4."""
    host = new_host()
    a = _spinner(host, "A")
    b = _spinner(host, "B")
    cr3 = a.vcpus[0].cpu.reg("cr3")
    tables = {"L4": cr3 >> PAGE_SHIFT, "L1": _l1_frame(host, a, DATA_VA)}
    kernel = Dom0Kernel(host)
    for ref, (level, frame) in enumerate(sorted(tables.items()), start=4):
        _grant(host, a, ref, b.domid, frame)
        _grant(host, a, ref + 10, 0, frame)
        st, m = gnttab_map_grant_ref(host, b, a.domid, ref, G.GNTMAP_host_map)
        assert (st, m) == (GntSt.GNTST_general_error, None), level
        st, _ = kernel.map_grant(a.domid, ref + 10, readonly=False)
        assert st == GntSt.GNTST_general_error, level
        assert kernel.map_foreign_mfn(a.domid, frame) is None, level
        # read-only is fine: a page table may be read by anyone it is granted to
        st, m = gnttab_map_grant_ref(host, b, a.domid, ref,
                                     G.GNTMAP_host_map | G.GNTMAP_readonly)
        assert st == GntSt.GNTST_okay and m is not None, level
        host.check_invariants()
    # nor is a page table the destination of a grant copy, even the domain's own
    copy = G.GnttabCopy(len=8)
    copy.source.u, copy.source.domid = a.pfn_to_mfn(DATA_PFN), DOMID_SELF
    copy.dest.u, copy.dest.domid = tables["L1"], DOMID_SELF
    from xenlab.xen.grant_table import gnttab_copy
    assert gnttab_copy(host, a, copy) == GntSt.GNTST_general_error
    host.check_invariants()


def test_a_guest_cannot_map_its_page_tables_or_xens_frames_writable() -> None:
    """update_va_mapping with a writable PTE to each of its own tables, and any PTE to
    Xen's frames (the per-vCPU stack, its page tables): all refused, before and after the
    frames changed hands."""
    host = new_host()
    code = Asm()
    d = create(host, b"", unpause=False, bss=PAGE_SIZE)
    cr3 = d.vcpus[0].cpu.reg("cr3")
    frames = [cr3 >> PAGE_SHIFT, _l1_frame(host, d, DATA_VA), *sorted(host.xen_frames.values())]
    for i, frame in enumerate(frames):
        code.call(H.update_va_mapping, EXTRA_VA, (frame << PAGE_SHIFT) | 7, 2).store_rax(2 * i)
        code.call(H.update_va_mapping, EXTRA_VA, (frame << PAGE_SHIFT) | 5, 2)
        code.store_rax(2 * i + 1)
    code.shutdown(0)
    host.domain_destroy(d)
    d = create(host, code.bytes(), bss=PAGE_SIZE)
    frames[:2] = [d.vcpus[0].cpu.reg("cr3") >> PAGE_SHIFT, _l1_frame(host, d, DATA_VA)]
    host.run(max_instructions=1_000_000)
    got = results(host, d, 2 * len(frames))
    assert got[0] == -Errno.EINVAL and got[1] == 0        # own L4: read-only is allowed
    assert got[2] == -Errno.EINVAL and got[3] == 0        # own L1: likewise
    assert got[4:] == [-Errno.EINVAL] * (2 * len(frames) - 4)   # Xen's: never
    host.check_invariants()


def test_each_pv_vcpu_enters_with_its_own_first_frame() -> None:
    """Was: Xen's stack page is one page here, and building a second PV domain wrote its
    entry frame (rip, rsp) over the first's before that one ran: the first started on
    the second's stack and crashed with a page fault."""
    host = new_host()
    first = create(host, Asm().call(H.xen_version, XenVer.XENVER_version, 0).store_rax(0)
                   .shutdown(0).bytes(), bss=3 * PAGE_SIZE, unpause=False)
    second = create(host, Asm().shutdown(0).bytes(), unpause=False)
    host.domain_unpause(first)
    host.domain_unpause(second)
    host.run(max_instructions=1_000_000)
    assert not first.is_crashed and not second.is_crashed
    assert first.shutdown_code == second.shutdown_code == 0
    assert results(host, first, 1)[0] > 0
