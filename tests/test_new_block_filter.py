"""The native new-block filter (x86._NEWTB_THUNK): it answers exactly the blocks Python's
new-block hook would have found nothing to do in, and hands it every other one.

Python's hook (X86Vcpu._on_new_tb) looks at each block unicorn translates for code new
to its page (the identity TLB drops its entries then) and for the code traps' patterns
(x86._ANY_CODE_TRAP: wrmsr, rdmsr, mov to CR, rdrand, rep ins/outs). The native callback is
called here directly with blocks of random bytes and compared with that regular
expression; then a firmware boot with and without it leaves the same trace.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
from firmware_boot import FIRMWARES, assert_same_boot, boot_bootdisk
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xenlab.cpu import x86

PC = 0x000F_1FF0                 # a block may cross into the next page
_READ = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
                         ctypes.c_size_t)
_VREAD = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_size_t)
_FILTER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(x86._UcTb),
                           ctypes.POINTER(x86._UcTb), ctypes.c_void_p)

pytestmark = pytest.mark.skipif(x86._native_newtb() is None,
                                reason="the native callbacks cannot run here")
# (x86._NEWTB64_THUNK, the PV vCPUs' filter, is tested further down)


def _filter(code: bytes, *, pc: int = PC, seen: tuple[int, ...] | None = None,
            enabled: bool = True, readable: bool = True, paging: bool = False
            ) -> tuple[bool, int]:
    """Run the native filter on a block of ``code`` at ``pc`` whose pages (``seen``:
    those Python has noted; default both) are known, with the identity TLB or (``paging``)
    through the guest's page tables: (Python called, answered)."""
    called: list[int] = []

    def python(uc: int, cur: ctypes._Pointer[x86._UcTb], prev: object, user: int) -> None:
        called.append(int(cur.contents.pc))

    wrong: list[tuple] = []               # (an assert in a ctypes callback is only printed)

    def fetch(addr: int, buf: int, size: int) -> int:
        if not readable:
            return 11                     # UC_ERR_READ_UNMAPPED
        if addr != pc or size != len(code):
            wrong.append((addr, size))
        ctypes.memmove(buf, code, min(size, len(code)))
        return 0

    def read(uc: int, addr: int, buf: int, size: int) -> int:
        if paging:                        # guest-physical: the identity TLB only
            wrong.append(("physical read while paging", addr))
        return fetch(addr, buf, size)

    def vread(uc: int, addr: int, prot: int, buf: int, size: int) -> int:
        if not paging or prot != 4:       # through the page tables, UC_PROT_EXEC
            wrong.append(("virtual read", addr, prot))
        return fetch(addr, buf, size)

    py_cb, read_cb, vread_cb = x86._EDGE_CB(python), _READ(read), _VREAD(vread)
    t = x86._NewTb()
    t.vmem_read = ctypes.cast(vread_cb, ctypes.c_void_p).value or 0
    bitmap = (ctypes.c_uint64 * (1 << 14))()
    for page in (seen if seen is not None else (pc >> 12, (pc + len(code) - 1) >> 12)):
        if page < 1 << 20:
            bitmap[page >> 6] |= 1 << (page & 63)
    t.python = ctypes.cast(py_cb, ctypes.c_void_p).value or 0
    t.mem_read = ctypes.cast(read_cb, ctypes.c_void_p).value or 0
    t.seen = ctypes.addressof(bitmap)
    t.enabled = (x86._NEWTB_OFF if not enabled else
                 x86._NEWTB_PAGING if paging else x86._NEWTB_IDENTITY)
    tb = x86._UcTb(pc, 1, len(code))
    _FILTER(x86._native_newtb())(None, ctypes.byref(tb), None, ctypes.addressof(t))
    assert called in ([], [pc]) and not wrong, wrong
    return bool(called), int(t.answered)


_interesting = st.sampled_from([0x0F, 0x22, 0x30, 0x32, 0x20, 0x31, 0xF3, 0xF2, 0x26, 0x2E,
                                0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0x6C, 0x6D, 0x6E, 0x6F,
                                0x68, 0x6B, 0x90, 0xA4, 0xAA, 0x06, 0xE6, 0xC7, 0xF0, 0xF7,
                                0xF8, 0xEF])


@settings(derandomize=True, deadline=None, max_examples=400)
@given(st.lists(st.one_of(_interesting, st.integers(0, 255)), min_size=1, max_size=40))
@example([0xF3, 0x26, 0x66, 0x6C])       # two prefixes: still rep ins
@example([0xF3, 0x26, 0x66, 0x67, 0x6C])  # three: not the pattern
@example([0x90, 0x0F])                   # 0F as the last byte
@example([0x0F, 0x0F, 0x30])             # wrmsr after a stray 0F
@example([0xF3, 0xF3, 0x6F])
@example([0xF3, 0x2E, 0xF3, 0x6E])
@example([0xF3, 0x2E, 0x6E])             # each segment prefix: ES CS SS DS FS GS
@example([0x90, 0xF3, 0x36, 0x3E, 0x6D])
@example([0xF3, 0x26, 0x6C])
@example([0xF3, 0x64, 0x65, 0x6F])
@example([0xF3, 0x63, 0x6F])             # not prefixes: 63, 68, 06
@example([0xF3, 0x68, 0x6F])
@example([0xF3, 0x06, 0x6F])
@example([0x0F, 0xC7, 0xF0])             # rdrand eax
@example([0x66, 0x0F, 0xC7, 0xF7])       # rdrand di
@example([0x0F, 0xC7, 0xF8])             # rdseed: not trapped
@example([0x0F, 0xC7, 0x0E])             # cmpxchg8b [esi]: not rdrand
@example([0x90, 0x0F, 0xC7])             # the ModRM byte past the block's end
def test_the_filter_hands_python_exactly_the_blocks_with_a_trap_pattern(code: list[int]) -> None:
    block = bytes(code)
    wanted = x86._ANY_CODE_TRAP.search(block) is not None
    for paging in (False, True):          # the identity TLB, then the page tables
        to_python, answered = _filter(block, paging=paging)
        assert to_python == wanted
        assert answered == (not to_python)


def test_what_the_filter_always_hands_python() -> None:
    nop = b"\x90" * 32                  # crosses from one page into the next
    assert _filter(nop) == (False, 1)
    assert _filter(nop, seen=(PC >> 12,)) == (True, 0)        # the next page is new code
    assert _filter(nop, seen=()) == (True, 0)
    assert _filter(nop, enabled=False) == (True, 0)           # the identity TLB is off
    assert _filter(nop, readable=False) == (True, 0)          # cannot read it: Python's call
    assert _filter(nop, pc=0x1_0000_0000) == (True, 0)        # at or above 4 GiB
    assert _filter(b"\x90" * x86._NEWTB_BUF, pc=0x10000) == (False, 1)
    assert _filter(b"\x90" * (x86._NEWTB_BUF + 1), pc=0x10000) == (True, 0)
    assert _filter(b"", pc=0x10000) == (False, 0)             # nothing translated
    # paging on: no page bitmap to consult, the block read through the page tables
    assert _filter(nop, seen=(), paging=True) == (False, 1)
    assert _filter(nop, pc=0x1_0000_0000, paging=True) == (False, 1)
    assert _filter(nop, readable=False, paging=True) == (True, 0)


# -- a PV vCPU's filter: rdtsc, rdtscp, rdrand, read through the guest's page tables --
VA = 0xFFFF_8000_0010_0FF0


def _filter64(code: bytes, *, readable: bool = True, enabled: bool = True
              ) -> tuple[bool, int]:
    """Run the PV filter on a block of ``code`` at virtual ``VA``: (Python called,
    answered)."""
    called: list[int] = []

    def python(uc: int, cur: ctypes._Pointer[x86._UcTb], prev: object, user: int) -> None:
        called.append(int(cur.contents.pc))

    wrong: list[tuple[int, int, int]] = []

    def vread(uc: int, addr: int, prot: int, buf: int, size: int) -> int:
        if not readable:
            return 14                     # UC_ERR_EXCEPTION: not mapped in the guest
        if addr != VA or prot != 4 or size != len(code):         # UC_PROT_EXEC
            wrong.append((addr, prot, size))
        ctypes.memmove(buf, code, min(size, len(code)))
        return 0

    py_cb, read_cb = x86._EDGE_CB(python), _VREAD(vread)
    t = x86._NewTb()
    t.python = ctypes.cast(py_cb, ctypes.c_void_p).value or 0
    t.vmem_read = ctypes.cast(read_cb, ctypes.c_void_p).value or 0
    t.enabled = int(enabled)
    tb = x86._UcTb(VA, 1, len(code))
    _FILTER(x86._native_newtb64())(None, ctypes.byref(tb), None, ctypes.addressof(t))
    assert called in ([], [VA]) and not wrong, wrong
    return bool(called), int(t.answered)


_interesting64 = st.sampled_from([0x0F, 0x31, 0x01, 0xF9, 0x66, 0xF3, 0x48, 0x90, 0xC3,
                                  0xC7, 0xF0, 0xF7, 0xF8, 0xEF, 0x49])


@pytest.mark.skipif(x86._native_newtb64() is None, reason="needs unicorn's uc_vmem_read")
@settings(derandomize=True, deadline=None, max_examples=400)
@given(st.lists(st.one_of(_interesting64, st.integers(0, 255)), min_size=1, max_size=40))
@example([0x0F, 0x31])
@example([0x0F, 0x01, 0xF9])
@example([0x90, 0x0F, 0x01])             # rdtscp's first two bytes at the block's end
@example([0x0F, 0x0F, 0x31])
@example([0x0F, 0x01, 0xF8])             # swapgs, not rdtscp
@example([0x0F])
@example([0x49, 0x0F, 0xC7, 0xF1])       # rdrand r9
@example([0x0F, 0xC7, 0xF8])             # rdseed: not trapped
@example([0x48, 0x0F, 0xC7, 0x0E])       # cmpxchg16b [rsi]: not rdrand
@example([0x90, 0x0F, 0xC7])             # the ModRM byte past the block's end
def test_the_pv_filter_hands_python_exactly_the_blocks_with_rdtsc_or_rdrand(
        code: list[int]) -> None:
    block = bytes(code)
    to_python, answered = _filter64(block)
    assert to_python == (x86._RDTSC.search(block) is not None
                         or x86._RDRAND.search(block) is not None)
    assert answered == (not to_python)


@pytest.mark.skipif(x86._native_newtb64() is None, reason="needs unicorn's uc_vmem_read")
def test_what_the_pv_filter_always_hands_python() -> None:
    ret = b"\xc3"
    assert _filter64(ret) == (False, 1)
    assert _filter64(ret, readable=False) == (True, 0)
    assert _filter64(ret, enabled=False) == (True, 0)


def test_a_pv_guests_rdtsc_is_trapped_the_same_with_and_without_the_filter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The PV guest that reads its TSC three ways: the same values, the same trace, the
    same code traps, whether its new blocks went to Python or through the filter."""
    from elfgen import boot, results
    from test_pv_cpu_state import _tsc_guest

    def run() -> tuple[list[int], list[tuple], list[int], int]:
        host, d = boot(_tsc_guest())
        assert d.is_shut_down and not d.is_crashed, d.crash_reason
        cpu = d.vcpus[0].cpu
        records = [(r.time, r.dom, r.vcpu, r.kind, r.name, r.args, r.ret)
                   for r in host.trace.records]
        return results(host, d, 4), records, sorted(cpu._rdtsc_hooks), cpu.native_new_blocks()

    values, records, traps, answered = run()
    monkeypatch.setattr(x86, "_native_newtb64", lambda: None)
    plain_values, plain_records, plain_traps, none = run()
    assert none == 0 and (answered > 0 or x86._uc_vmem_read is None)
    assert len(traps) >= 3 and traps == plain_traps          # every rdtsc(p) trapped
    assert values == plain_values and records == plain_records


def test_a_guest_with_paging_on_runs_the_same_with_and_without_the_filter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """test_hvm_paging's PVH guest: its own page tables, long mode, MSRs (code traps in
    blocks translated with paging on), exceptions: the same trace either way."""
    from test_hvm_paging import _boot

    def run(where: Path) -> tuple[list[tuple], int, int]:
        lab, _sym = _boot(where)
        d = lab.domain("paging")
        assert not d.is_crashed, d.crash_reason
        cpu = d.vcpus[0].cpu
        return ([(r.time, r.dom, r.vcpu, r.kind, r.name, r.args, r.ret)
                 for r in lab.trace.records], cpu.native_new_blocks(),
                int(cpu._newtb.enabled))

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    filtered, answered, mode = run(tmp_path / "a")
    monkeypatch.setattr(x86, "_native_newtb", lambda: None)
    plain, none, _mode = run(tmp_path / "b")
    assert mode == x86._NEWTB_PAGING and answered > 0 and none == 0
    assert any(r[4] == "wrmsr" for r in plain)
    assert filtered == plain


@pytest.mark.parametrize("bios", FIRMWARES)
def test_a_firmware_boot_is_the_same_with_and_without_the_filter(
        tmp_path: Path, bios: str, monkeypatch: pytest.MonkeyPatch) -> None:
    *filtered, lab = boot_bootdisk(tmp_path / "a", bios)
    answered = lab.domain("boot").vcpus[0].cpu.native_new_blocks()
    monkeypatch.setattr(x86, "_native_newtb", lambda: None)
    *plain, lab = boot_bootdisk(tmp_path / "b", bios)
    assert lab.domain("boot").vcpus[0].cpu.native_new_blocks() == 0
    assert answered > 200                     # most blocks never reached Python
    assert_same_boot(filtered, plain)
