"""The ioreq server's claims: Xen sends a port or PCI access to the device model only if
it claimed it (XEN_DMOP_map_io_range_to_ioreq_server); everything else ends in Xen's
null handler, which reads all ones and drops writes. The claims are rangesets.

Real Xen: xen/common/ioreq.c (ioreq_server_select, ioreq_server_map_io_range),
xen/arch/x86/hvm/ioreq.c (arch_ioreq_server_get_type_addr), xen/arch/x86/hvm/emulate.c
(hvmemul_do_io: "If there is no suitable backing DM, just ignore accesses"),
xen/common/rangeset.c
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from firmware_boot import SEABIOS_OK, boot_bootdisk
from hypothesis import given, settings
from hypothesis import strategies as st

from xenlab.lab import Lab
from xenlab.public.domctl import IoRangeType, xen_dmop_pci_sbdf
from xenlab.public.errno import Errno
from xenlab.xen.hvm.io import (
    IOREQ_COST_NS,
    MAX_NR_IO_RANGES,
    VMEXIT_COST_NS,
    handle_pio,
    ioreq_server_map_io_range,
    ioreq_server_select,
    ioreq_server_set_state,
    ioreq_server_unmap_io_range,
)
from xenlab.xen.rangeset import RangeSet
from xenlab.xen.trace import Kind

PORT, PCI = IoRangeType.XEN_DMOP_IO_RANGE_PORT, IoRangeType.XEN_DMOP_IO_RANGE_PCI


# ------------------------------------------------------------------ rangesets
def test_rangeset_merges_splits_and_answers_as_xens() -> None:
    r = RangeSet("test")
    assert r.add_range(0x10, 0x1F) == 0 and r.add_range(0x30, 0x3F) == 0
    assert r.add_range(0x20, 0x2F) == 0                 # touches both: one range
    assert r.ranges() == [(0x10, 0x3F)]
    assert r.contains_range(0x10, 0x3F) and not r.contains_range(0x0F, 0x10)
    assert r.add_range(0x50, 0x50) == 0 and not r.contains_range(0x3F, 0x50)
    assert r.overlaps_range(0x40, 0x50) and not r.overlaps_range(0x40, 0x4F)
    assert r.remove_range(0x18, 0x27) == 0               # cut in two
    assert r.ranges() == [(0x10, 0x17), (0x28, 0x3F), (0x50, 0x50)]
    assert r.contains_singleton(0x17) and not r.contains_singleton(0x18)
    assert r.add_range(2, 1) == -Errno.EINVAL and r.remove_range(2, 1) == -Errno.EINVAL
    assert repr(r) == "<rangeset test: { 0x10-0x17, 0x28-0x3f, 0x50 }>"
    limited = RangeSet("limited", limit=2)
    assert limited.add_range(0, 9) == 0 and limited.add_range(20, 29) == 0
    assert limited.add_range(40, 49) == -Errno.ENOMEM    # a third range: no room
    assert limited.add_range(10, 19) == 0                # a merge needs none
    assert limited.add_range(40, 49) == 0
    assert limited.remove_range(3, 5) == -Errno.ENOMEM   # a split needs one more
    assert limited.ranges() == [(0, 29), (40, 49)]       # ... and changed nothing


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 60), st.integers(0, 12)),
                max_size=25))
def test_rangeset_is_the_set_of_its_members(ops: list[tuple[bool, int, int]]) -> None:
    """Against a plain set: the same members after any adds and removes; ranges sorted,
    disjoint and never adjacent; contains_range is "every number is a member"."""
    r, model = RangeSet("model"), set()
    for add, start, length in ops:
        end = start + length
        assert (r.add_range if add else r.remove_range)(start, end) == 0
        (model.update if add else model.difference_update)(range(start, end + 1))
        ranges = r.ranges()
        assert {x for s, e in ranges for x in range(s, e + 1)} == model
        assert all(e1 + 1 < s2 for (_s1, e1), (s2, _e2) in pairwise(ranges))
        for s in range(0, 75, 7):
            assert r.contains_range(s, s + 3) == all(x in model for x in range(s, s + 4))
            assert r.overlaps_range(s, s + 3) == any(x in model for x in range(s, s + 4))


# ------------------------------------------------------------ the device model's claims
def _hvm(tmp: Path, vga: str = "stdvga") -> tuple[Lab, object]:
    """The teaching boot disk booted to its halt (firmware_boot), and its domain."""
    _records, _log, lab = boot_bootdisk(tmp, f'vga = "{vga}"\n')
    return lab, lab.domain("boot")


class _Clock:
    """The exiting vCPU's clock, as handle_pio charges it: what the exits cost."""

    ns = 0

    def charge(self, ns: int) -> None:
        self.ns += ns


def test_the_device_model_claims_its_ports_and_pci_functions(tmp_path: Path) -> None:
    lab, d = _hvm(tmp_path)
    dm = lab.toolstack.device_models[d.domid]
    ops = [r for r in lab.trace.select(kind=Kind.HYPERCALL, dom=0, name="dm_op")
           if r.args.get("domid") == d.domid and "ioreq_server" in r.args["op"]]
    names = [r.args["op"] for r in ops]
    # created, then one map per range and function, then enabled (QEMU's order)
    assert names[0] == "XEN_DMOP_create_ioreq_server"
    assert names[-1] == "XEN_DMOP_set_ioreq_server_state" and ops[-1].args["enabled"] == 1
    maps = [r.args for r in ops[1:-1]]
    assert {r["op"] for r in maps} == {"XEN_DMOP_map_io_range_to_ioreq_server"}
    assert all(r.ret == 0 for r in ops)
    ports = [(int(a["start"], 16), int(a["end"], 16)) for a in maps
             if a["type"] == "XEN_DMOP_IO_RANGE_PORT"]
    assert ports == [(0x60, 0x60), (0x64, 0x64), (0x170, 0x177), (0x1F0, 0x1F7),
                     (0x376, 0x376), (0x3B4, 0x3DA), (0x3F6, 0x3F6), (0x3F8, 0x3FF),
                     (0xCF8, 0xCFF)]
    functions = [int(a["start"], 16) for a in maps if a["type"] == "XEN_DMOP_IO_RANGE_PCI"]
    assert functions == [xen_dmop_pci_sbdf(0, 0, dev, fn)
                         for dev, fn in ((0, 0), (1, 0), (1, 1), (2, 0), (3, 0))]
    hvm = d.hvm
    assert hvm.ioreq_enabled and hvm.ioreq_ranges[PORT].ranges() == ports
    assert hvm.ioreq_ranges[PCI].ranges() == [(0, 0), (8, 9), (0x10, 0x10), (0x18, 0x18)]
    # without a VGA adapter its ports are not claimed (and neither is slot 3)
    _lab2, d2 = _hvm(tmp_path / "novga", vga="none")
    assert not d2.hvm.ioreq_ranges[PORT].overlaps_range(0x3B4, 0x3DA)
    assert d2.hvm.ioreq_ranges[PCI].ranges() == [(0, 0), (8, 9), (0x10, 0x10)]
    assert dm.claimed_ports() == ports


def test_unclaimed_accesses_end_in_xens_null_handler(tmp_path: Path) -> None:
    """An empty PCI slot, a port no device claimed, an access running past the end of a
    claimed range: all ones, no ioreq, the exit's handler is "null" and it costs the
    exit only. The claimed ones still go to the device model."""
    lab, d = _hvm(tmp_path)
    host, hvm = lab.host, d.hvm
    dm = lab.toolstack.device_models[d.domid]

    def access(port: int, size: int, read: bool, value: int = 0) -> tuple[int, str, int, int]:
        """(result, the exit record's handler, how many ioreq records, ns charged)"""
        n, clock = len(lab.trace.records), _Clock()
        result = handle_pio(host, d, hvm, port, size, read, value, clock)
        recs = lab.trace.records[n:]
        io = [r for r in recs if r.kind is Kind.VMEXIT and r.name == "io"]
        assert len(io) == 1
        return result, io[0].args["handler"], sum(r.kind is Kind.IOREQ for r in recs), clock.ns

    null, dm_cost = VMEXIT_COST_NS, VMEXIT_COST_NS + IOREQ_COST_NS
    empty = 0x80000000 | (5 << 11)                  # 00:05.0: nobody there
    assert handle_pio(host, d, hvm, 0xCF8, 4, False, empty) == 0
    assert access(0xCFC, 4, True) == (0xFFFFFFFF, "null", 0, null)
    assert access(0xCFE, 2, True) == (0xFFFF, "null", 0, null)
    assert access(0xCFC, 4, False, 0x1234) == (0, "null", 0, null)
    handle_pio(host, d, hvm, 0xCF8, 4, False, 0x80000000 | (1 << 11))   # 00:01.0, PIIX3
    assert access(0xCFC, 4, True) == (0x70008086, "dm", 2, dm_cost)     # ioreq + ioresp
    assert access(0x92, 1, True) == (0xFF, "null", 0, null)    # no port92 device here
    assert access(0x3FD, 1, True)[1:] == ("dm", 2, dm_cost)      # the UART's line status
    # four bytes from 0x3FD run past the UART's range (0x3F8-0x3FF): not all of it is
    # claimed, so Xen does not send it (rangeset_contains_range)
    assert access(0x3FD, 4, True) == (0xFFFFFFFF, "null", 0, null)
    requests = dm.requests
    assert access(0x510, 2, False, 0x19)[1:] == ("null", 0, null) and dm.requests == requests
    assert access(0x70, 1, True)[1:] == ("xen", 0, null)       # Xen's own RTC: as before


def test_the_guest_boot_never_sends_an_unclaimed_access(tmp_path: Path) -> None:
    """The firmware's PCI scan and its probes of absent devices: every ioreq the boot
    made was for a port or PCI function the device model claimed."""
    lab, d = _hvm(tmp_path)
    hvm = d.hvm
    recs = lab.trace.select(kind=Kind.IOREQ, name="ioreq", dom=d.domid)
    assert recs
    for r in recs:
        addr = int(r.args["addr"], 16)
        if r.args["type"] == "IOREQ_TYPE_PCI_CONFIG":
            assert hvm.ioreq_ranges[PCI].contains_singleton(addr >> 32)
        else:
            assert hvm.ioreq_ranges[PORT].contains_range(addr, addr + r.args["size"] - 1)
    nulls = {r.args["port"] for r in lab.trace.select(kind=Kind.VMEXIT, name="io", dom=d.domid)
             if r.args["handler"] == "null"}
    assert "0xf4" in nulls   # the boot sector's write to QEMU's isa-debug-exit port


def test_a_string_io_to_an_unclaimed_port_is_one_null_exit(tmp_path: Path) -> None:
    """``rep insw`` from a port nobody claimed: one exit for the page's elements, each
    read all ones into guest memory by Xen's null handler, no ioreq; ``rep outsw`` to it
    is dropped the same way."""
    from xenlab.xen.hvm.io import handle_pio_rep
    lab, d = _hvm(tmp_path)
    host, hvm = lab.host, d.hvm

    def guest(gpa: int, n: int) -> bytes:
        return bytes(host.mem.view((d.pfn_to_mfn(gpa >> 12) << 12) | (gpa & 0xFFF), n))

    gpa = 0x20000 - 16                      # 64 words: 8 bytes end one page, the rest next
    assert hvm.guest_write(gpa, bytes(128))
    for write in (False, True):
        n, clock = len(lab.trace.records), _Clock()
        assert handle_pio_rep(host, d, hvm, 0x510, 2, 64, gpa, write, clock) == 64
        recs = lab.trace.records[n:]
        assert [(r.args["rep"], r.args["handler"]) for r in recs] == [(8, "null"), (56, "null")]
        assert clock.ns == 2 * VMEXIT_COST_NS
        assert guest(gpa, 128) == b"\xff" * 128        # the ins filled it; the outs left it
    # Xen's own ports still go element by element
    assert handle_pio_rep(host, d, hvm, 0x70, 1, 4, gpa, False) == 0


@pytest.mark.skipif(not SEABIOS_OK, reason="needs Debian's xen-utils-4.17 and seabios")
def test_the_pci_scans_of_hvmloader_and_seabios_stay_in_xen() -> None:
    """Both scan every device number of bus 0; only the five functions the device model
    claimed are ever an ioreq, the empty slots are Xen's null handler's."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('hvm-seabios.cfg')}")
    lab.run(max_seconds=5.0)
    assert "(d1) Booting from 0000:7c00" in lab.xl_output("dmesg")
    d = lab.domain("hvm-seabios")
    sent = {int(r.args["addr"], 16) >> 32
            for r in lab.trace.select(kind=Kind.IOREQ, name="ioreq", dom=d.domid)
            if r.args["type"] == "IOREQ_TYPE_PCI_CONFIG"}
    assert sent == {0x00, 0x08, 0x09, 0x10, 0x18}
    empty = [r for r in lab.trace.select(kind=Kind.VMEXIT, name="io", dom=d.domid)
             if r.args["port"] in ("0xcfc", "0xcfe") and r.args["handler"] == "null"]
    reads = [r.args["value"] for r in empty if r.args["dir"] == "in"]
    assert len(reads) > 200 and set(reads) <= {"0xffff", "0xffffffff"}   # all ones


def test_map_and_unmap_errors_and_what_a_claim_changes(tmp_path: Path) -> None:
    lab, d = _hvm(tmp_path)
    host, hvm = lab.host, d.hvm
    dm = lab.toolstack.device_models[d.domid]

    def mapping(kind: int, start: int, end: int, who: int = 0) -> int:
        return ioreq_server_map_io_range(host, d, hvm, who, kind, start, end)

    def unmapping(kind: int, start: int, end: int, who: int = 0) -> int:
        return ioreq_server_unmap_io_range(host, d, hvm, who, kind, start, end)

    assert mapping(PORT, 0x3FF, 0x3F8) == -Errno.EINVAL           # start > end
    assert mapping(7, 0x500, 0x500) == -Errno.EINVAL               # no such type
    assert mapping(PORT, 0x500, 0x500, who=d.domid) == -Errno.EPERM  # not its emulator
    assert mapping(PORT, 0x3FC, 0x404) == -Errno.EEXIST            # part is the UART's
    assert unmapping(PORT, 0x3F8, 0x400) == -Errno.ENOENT         # 0x400 is not claimed
    before = hvm.ioreq_ranges[PCI].ranges()
    added = 0
    while (rc := mapping(PCI, 0x100 + 2 * added, 0x100 + 2 * added)) == 0:
        added += 1
    assert rc == -Errno.ENOMEM and len(hvm.ioreq_ranges[PCI]) == MAX_NR_IO_RANGES
    assert added == MAX_NR_IO_RANGES - len(before)
    # give COM1 back: the guest's writes to it no longer reach the UART
    assert unmapping(PORT, 0x3F8, 0x3FF) == 0
    assert not ioreq_server_select(hvm, PORT, 0x3F8, 0x3F8)
    sent = bytes(hvm.serial)
    handle_pio(host, d, hvm, 0x3F8, 1, False, ord("x"))
    assert bytes(hvm.serial) == sent
    assert mapping(PORT, 0x3F8, 0x3FF) == 0
    handle_pio(host, d, hvm, 0x3F8, 1, False, ord("x"))
    assert bytes(hvm.serial) == sent + b"x"
    # a disabled server is sent nothing; only its emulator may switch it
    assert ioreq_server_set_state(host, d, hvm, d.domid, False) == -Errno.EPERM
    assert ioreq_server_set_state(host, d, hvm, 0, False) == 0
    requests = dm.requests
    assert handle_pio(host, d, hvm, 0x3FD, 1, True) == 0xFF and dm.requests == requests
    assert ioreq_server_set_state(host, d, hvm, 0, True) == 0
    assert handle_pio(host, d, hvm, 0x3FD, 1, True) != 0xFF and dm.requests == requests + 1
    # no server, nothing to map onto
    vp_eport, hvm.ioreq_port = hvm.ioreq_port, 0
    assert mapping(PORT, 0x500, 0x500) == -Errno.ENOENT
    assert ioreq_server_set_state(host, d, hvm, 0, True) == -Errno.ENOENT
    hvm.ioreq_port = vp_eport
    lab.host.check_invariants()


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["map", "unmap", "in", "out"]),
                              st.integers(0x500, 0x520), st.sampled_from([0, 1, 3, 7])),
                    max_size=30))
def test_an_access_goes_to_the_device_model_exactly_when_all_of_it_is_claimed(
        tmp_path_factory, ops: list[tuple[str, int, int]]) -> None:
    """Random claims and give-backs over ports no device of xenlab's has, against a plain
    set of claimed ports: each map or unmap fails exactly as Xen's would (-EEXIST on any
    overlap, -ENOENT unless one claimed range holds it all), and an access of 1, 2 or 4
    bytes is an ioreq exactly when every byte of it is claimed (the device model then
    answers all ones: nothing decodes there), else Xen's null handler takes it."""
    lab, d = _hvm_once(tmp_path_factory)
    host, hvm = lab.host, d.hvm
    claimed: set[int] = set()
    try:
        for op, start, span in ops:
            end = start + span
            if op in ("map", "unmap"):
                run = set(range(start, end + 1))
                if op == "map":
                    rc = ioreq_server_map_io_range(host, d, hvm, 0, PORT, start, end)
                    assert rc == (-Errno.EEXIST if run & claimed else 0)
                    claimed |= run if rc == 0 else set()
                else:
                    rc = ioreq_server_unmap_io_range(host, d, hvm, 0, PORT, start, end)
                    assert rc == (0 if run <= claimed else -Errno.ENOENT)
                    claimed -= run if rc == 0 else set()
                continue
            size = 1 << (span % 3)                    # 1, 2 or 4 bytes
            n = len(lab.trace.records)
            result = handle_pio(host, d, hvm, start, size, op == "in", 0x5A5A5A5A)
            recs = lab.trace.records[n:]
            ioreqs = sum(r.kind is Kind.IOREQ and r.name == "ioreq" for r in recs)
            want = set(range(start, start + size)) <= claimed
            assert recs[-1].args["handler"] == ("dm" if want else "null")
            assert ioreqs == (1 if want else 0)
            if op == "in":
                assert result == (1 << (8 * size)) - 1
    finally:
        for s, e in hvm.ioreq_ranges[PORT].ranges():
            if s >= 0x500 and e <= 0x530:
                ioreq_server_unmap_io_range(host, d, hvm, 0, PORT, s, e)


_ONCE: dict[str, tuple[Lab, object]] = {}


def _hvm_once(factory) -> tuple[Lab, object]:
    """One booted HVM domain for all of the property test's examples."""
    if "lab" not in _ONCE:
        _ONCE["lab"] = _hvm(factory.mktemp("hvm"))
    return _ONCE["lab"]
