"""Port I/O from an HVM guest: the VM exit, who handles it, and ioreqs to the device model.

Every ``in``/``out`` of an HVM guest is a VM exit (``handle_pio``). Xen first
offers it to the devices it emulates itself (``hvm_portio_intercept``): the
PIT (0x40-0x43, 0x61), the RTC/CMOS (0x70-0x71), the two PICs (0x20-0x21,
0xA0-0xA1) and the 0xE9 debug port. xenlab's Xen also keeps the PCI address
latch (0xCF8) itself. Everything else goes to the **ioreq server** that claimed
it (``ioreq_server_select``): the device model (QEMU) in Dom0 claims the ports
of its devices and its PCI functions (``XEN_DMOP_map_io_range_to_ioreq_server``,
ranges kept as rangesets). A data-window access (0xCFC-0xCFF) while the latch
is enabled is a PCI configuration access: the server that claimed that PCI
function gets an ``IOREQ_TYPE_PCI_CONFIG`` request; any other claimed port an
``IOREQ_TYPE_PIO`` one. Xen fills the ``ioreq`` in the shared ioreq page, moves
it to ``STATE_IOREQ_READY`` and notifies the device model through the ioreq
server's event channel (``vp_eport``: a port of the guest's whose consumer is
Xen, bound by the device model in Dom0); the device model handles it, writes the
data back, sets ``STATE_IORESP_READY`` and notifies back; Xen's consumer of the
port (``hvm_io_assist``) completes the instruction. An access nobody claimed
(an empty PCI slot, a port no device decodes) never leaves Xen: its
``null_handler`` reads all ones and drops writes, and the exit's record names
the handler ``null``. (Real Xen also passes each 0xCF8 write on to the server
after latching it, ``hvm_access_cf8``; xenlab's Xen answers it alone.)

The exits Xen answers from what it decided at the last claim (the null handler,
the PCI latch and the window of a function nobody claimed, the PM timer read
whole, the RTC index register's reads) the vCPU answers natively from a table of
each port's kind (``hvm_native_ports``, made again at every claim) and hands over
with their values before its next exit reaches Python: ``handle_pio_answered``
makes the same records, at the same virtual times, and updates the latch.

xenlab runs that round trip synchronously inside the VM exit: a real vCPU
would sleep until QEMU answers on Dom0's CPU; here Dom0's handler for the
notification runs at once. Every step is in the trace: the exit, the ioreq,
the event raised on Dom0's port, Dom0's notification back, the response.

Exits are not free. On real hardware a VM exit, Xen's handler and the VM entry
take about a microsecond, and a round trip to QEMU in Dom0 (event channel,
Dom0's scheduler, QEMU's handler, the answer) takes ten or more. xenlab
charges the guest's virtual clock ``VMEXIT_COST_NS`` for each exit and
``IOREQ_COST_NS`` more for each ioreq: the model's round figures, not
measurements. A firmware delay loop that polls a timer port therefore takes as
many polls as it would on a real host, not one per few nanoseconds.

Real Xen: xen/arch/x86/hvm/io.c (handle_pio), xen/arch/x86/hvm/intercept.c,
xen/arch/x86/hvm/emulate.c (hvmemul_do_io, null_handler), xen/arch/x86/hvm/ioreq.c
(arch_ioreq_server_get_type_addr, hvm_access_cf8), xen/common/ioreq.c
(ioreq_server_select, ioreq_server_map_io_range), xen/arch/x86/hvm/dm.c
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from xenlab.cpu.x86 import (
    PORT_CLOCK,
    PORT_LATCH,
    PORT_NULL,
    PORT_ONES,
    PORT_PYTHON,
    PORT_WINDOW,
)
from xenlab.public.domctl import IoRangeType
from xenlab.public.errno import Errno
from xenlab.public.hvm import IOREQ_DATA_IS_PTR, IOREQ_READ, IOREQ_WRITE, IoreqState, IoreqType
from xenlab.xen.event_channel import alloc_unbound_xen_event_channel, notify_via_xen_event_channel
from xenlab.xen.hvm.pmtimer import PM_BASE
from xenlab.xen.rangeset import RangeSet
from xenlab.xen.trace import Kind

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain
    from xenlab.xen.hvm.hvm import HvmDomain
    from xenlab.xen.setup import XenHost

__all__ = ["DEBUG_PORT", "IOREQ_COST_NS", "MAX_NR_IO_RANGES", "VMEXIT_COST_NS", "handle_pio",
           "handle_pio_answered", "handle_pio_log", "handle_pio_rep", "hvm_create_ioreq_server",
           "hvm_native_ports", "hvm_update_native_ports",
           "ioreq_server_map_io_range", "ioreq_server_select", "ioreq_server_set_state",
           "ioreq_server_unmap_io_range"]

VMEXIT_COST_NS = 1_000   # VM exit + Xen's handler + VM entry (xenlab's model)
IOREQ_COST_NS = 9_000    # the ioreq round trip to the device model in Dom0, on top
MAX_NR_IO_RANGES = 256   # ranges of each type one ioreq server may claim (xen/ioreq.h)

PCI_CF8 = 0xCF8                  # the PCI address latch
PCI_CFC, PCI_CFF = 0xCFC, 0xCFF  # its data window
PM_TMR = PM_BASE + 8             # the ACPI PM timer, read whole
RTC_INDEX = 0x70                 # the RTC's index register

IOREQ_FORMAT = struct.Struct("<QQIIIHBB")  # addr data count size vp_eport pad state|flags type


def hvm_create_ioreq_server(host: XenHost, d: Domain, hvm: HvmDomain,
                            emulator_domid: int) -> int:
    """ioreq_server_create + ioreq_server_add_vcpu: the device model in ``emulator_domid``
    becomes the domain's ioreq server. Xen allocates the port it will notify it on
    (``vp_eport``, a port of the guest's whose consumer is Xen) and writes it into the
    ioreq slot; the device model binds to it. Returns the port or a negative errno."""
    port = alloc_unbound_xen_event_channel(host, d, 0, emulator_domid, hvm.io_assist)
    if port < 0:
        return port
    hvm.ioreq_port = port
    hvm.ioreq_emulator = emulator_domid
    hvm.ioreq_enabled = False      # until the device model says (set_ioreq_server_state)
    hvm.ioreq_ranges = tuple(      # claims nothing yet (ioreq_server_alloc_rangesets)
        RangeSet(f"ioreq_server 0 {name}", MAX_NR_IO_RANGES)
        for name in ("port", "memory", "pci"))
    page = hvm.ioreq_page()
    if page is not None:
        IOREQ_FORMAT.pack_into(page, 0, 0, 0, 0, 0, port, 0, 0, 0)
    hvm_update_native_ports(d, hvm)
    host.trace.emit(host.now(), d.domid, 0, Kind.IOREQ, "ioreq_server_create",
                    {"emulator": emulator_domid, "vp_eport": port})
    return port


def _server_range(hvm: HvmDomain, emulator_domid: int, range_type: int, start: int,
                  end: int) -> RangeSet | int:
    """The checks ioreq_server_map_io_range and ..._unmap_... share: the server's rangeset
    of ``range_type``, or the error."""
    if start > end:
        return -Errno.EINVAL
    if not hvm.ioreq_port:
        return -Errno.ENOENT                 # no such server
    if hvm.ioreq_emulator != emulator_domid:
        return -Errno.EPERM                  # only its emulator may change its ranges
    if range_type not in _RANGE_TYPES:
        return -Errno.EINVAL
    return hvm.ioreq_ranges[range_type]


def ioreq_server_map_io_range(host: XenHost, d: Domain, hvm: HvmDomain, emulator_domid: int,
                              range_type: int, start: int, end: int) -> int:
    """XEN_DMOP_map_io_range_to_ioreq_server: the server claims ``start..end`` (inclusive)
    of ``range_type`` (ports, MMIO, or PCI functions as XEN_DMOP_PCI_SBDF numbers). 0,
    or -EINVAL (``start`` > ``end``, an unknown type), -ENOENT (no server), -EPERM (not
    its emulator), -EEXIST (some of it is claimed already), -ENOMEM (MAX_NR_IO_RANGES
    ranges of that type already)."""
    ranges = _server_range(hvm, emulator_domid, range_type, start, end)
    if isinstance(ranges, int):
        return ranges
    if ranges.overlaps_range(start, end):
        return -Errno.EEXIST
    rc = ranges.add_range(start, end)
    if rc == 0:
        hvm_update_native_ports(d, hvm)
    return rc


def ioreq_server_unmap_io_range(host: XenHost, d: Domain, hvm: HvmDomain,
                                emulator_domid: int, range_type: int, start: int,
                                end: int) -> int:
    """XEN_DMOP_unmap_io_range_from_ioreq_server: give ``start..end`` back; -ENOENT
    unless all of it lies in one claimed range (and the errors of mapping)."""
    ranges = _server_range(hvm, emulator_domid, range_type, start, end)
    if isinstance(ranges, int):
        return ranges
    if not ranges.contains_range(start, end):
        return -Errno.ENOENT
    rc = ranges.remove_range(start, end)
    if rc == 0:
        hvm_update_native_ports(d, hvm)
    return rc


def ioreq_server_set_state(host: XenHost, d: Domain, hvm: HvmDomain, emulator_domid: int,
                           enabled: bool) -> int:
    """XEN_DMOP_set_ioreq_server_state: a disabled server is sent nothing."""
    if not hvm.ioreq_port:
        return -Errno.ENOENT
    if hvm.ioreq_emulator != emulator_domid:
        return -Errno.EPERM
    hvm.ioreq_enabled = bool(enabled)
    hvm_update_native_ports(d, hvm)
    return 0


def ioreq_server_select(hvm: HvmDomain, range_type: int, start: int, end: int) -> bool:
    """ioreq_server_select: is there an enabled server that claimed ``start..end`` (a port
    access: all its bytes inside one claimed range) or, for PCI, the function
    ``start``? (xenlab's HVM domains have at most one server, their device model's.)"""
    return hvm.ioreq_enabled and hvm.ioreq_ranges[range_type].contains_range(start, end)


def _send_ioreq(host: XenHost, d: Domain, hvm: HvmDomain, ioreq_type: int, addr: int,
                size: int, read: bool, value: int, *, count: int = 1,
                data_is_ptr: bool = False) -> int:
    """hvm_send_ioreq: fill the slot, notify the device model's port, wait for its answer,
    take the result (hvm_io_assist). Returns the data read (all ones when nobody
    answered), or with ``data_is_ptr`` (``value`` is then a guest address) the state."""
    port = hvm.ioreq_port
    page = hvm.ioreq_page()
    mask = (1 << (8 * size)) - 1
    if not port or page is None:
        if data_is_ptr:
            return _IOREQ_NONE
        return mask if read else 0  # nobody home: reads float high
    flags = (_IOREQ_READY | (IOREQ_DATA_IS_PTR if data_is_ptr else 0)
             | ((IOREQ_READ if read else IOREQ_WRITE) << 5))
    IOREQ_FORMAT.pack_into(page, 0, addr, value if data_is_ptr or not read else 0, count,
                           size, port, 0, flags, ioreq_type)
    tracing = host.trace.enabled
    if tracing:
        # the round trip takes no virtual time of its own: one clock for both records
        now = host.now()
        host.trace.emit_deferred(now, d.domid, 0, _KIND_IOREQ, "ioreq", _ioreq_args,
                                 (ioreq_type, addr, size, read, value, count, data_is_ptr, port))
    hvm.io_answered = False
    # The vCPU now waits for the device model; xenlab runs Dom0's handler for the
    # notification at once (host.dom0_inline) instead of switching CPUs.
    host.dom0_inline += 1
    try:
        notify_via_xen_event_channel(host, d, port)
    finally:
        host.dom0_inline -= 1
    _addr, data, _count, _size, _port, _pad, flags, _type = IOREQ_FORMAT.unpack_from(page, 0)
    state = flags & 0x0F
    if not hvm.io_answered or state != _IORESP_READY:
        state = _IOREQ_NONE if not hvm.io_answered else state
        data = mask  # the device model did not answer: all ones
    IOREQ_FORMAT.pack_into(page, 0, 0, 0, 0, 0, port, 0, 0, 0)  # back to STATE_IOREQ_NONE
    if tracing:
        host.trace.emit_deferred(now, d.domid, 0, _KIND_IOREQ, "ioresp", _ioresp_args,
                                 (addr, state, data & mask if read and not data_is_ptr else None))
    if data_is_ptr:
        return state
    return data & mask


def _ioreq_args(ioreq_type: int, addr: int, size: int, read: bool, value: int, count: int,
                data_is_ptr: bool, port: int) -> dict[str, object]:
    args: dict[str, object] = {"type": _TYPE_NAMES[ioreq_type], "addr": hex(addr),
                               "size": size, "dir": "read" if read else "write"}
    if data_is_ptr:
        args.update(count=count, data_is_ptr=True, data=hex(value))
    elif not read:
        args["data"] = hex(value)
    args["state"] = "STATE_IOREQ_READY"
    args["port"] = port
    return args


def _ioresp_args(addr: int, state: int, data: int | None) -> dict[str, object]:
    args: dict[str, object] = {"addr": hex(addr), "state": _STATE_NAMES.get(state, state)}
    if data is not None:
        args["data"] = hex(data)
    return args


def _exit_args(port: int, size: int, read: bool, value: int, who: str) -> dict[str, object]:
    return {"port": hex(port), "size": size, "dir": "in" if read else "out",
            "value": hex(value), "handler": who}


Internal = Callable[[int, bool, int], int]
# enum members as plain values on the exit paths (an enum class attribute costs a lookup
# through EnumType's __getattr__ hook)
_IOREQ_NONE = int(IoreqState.STATE_IOREQ_NONE)
_IOREQ_READY = int(IoreqState.STATE_IOREQ_READY)
_IORESP_READY = int(IoreqState.STATE_IORESP_READY)
_KIND_IOREQ, _KIND_VMEXIT = Kind.IOREQ, Kind.VMEXIT
_TYPE_PIO = int(IoreqType.IOREQ_TYPE_PIO)
_TYPE_PCI_CONFIG = int(IoreqType.IOREQ_TYPE_PCI_CONFIG)
_TYPE_NAMES = {int(t): t.name for t in IoreqType}
_RANGE_PORT = int(IoRangeType.XEN_DMOP_IO_RANGE_PORT)
_RANGE_PCI = int(IoRangeType.XEN_DMOP_IO_RANGE_PCI)
_RANGE_TYPES = frozenset(int(t) for t in IoRangeType)
_STATE_NAMES = {int(t): t.name for t in IoreqState}


class _Clock(Protocol):
    def charge(self, ns: int) -> None: ...


class _SliceClock(_Clock, Protocol):
    def elapsed(self) -> int: ...


def handle_pio(host: XenHost, d: Domain, hvm: HvmDomain, port: int, size: int, read: bool,
               value: int = 0, cpu: _Clock | None = None) -> int:
    """One port access: Xen's own device, a PCI config access, or an ioreq to the DM.
    ``cpu`` (the exiting vCPU) is charged the exit's cost in virtual time."""
    handler: Internal | None = hvm.intercepts.get(port)
    who = "xen"
    if port == PM_TMR and size == 4 and read:  # the PM timer, read whole (SeaBIOS's delays)
        result = hvm.pmtimer.read32()
    elif handler is not None:
        result = handler(port, not read, value) if size == 1 else _wide(hvm, port, size,
                                                                        read, value)
    elif port == PCI_CF8 and size == 4:
        if not read:
            hvm.pci_cf8 = value & 0xFFFFFFFF
        result = hvm.pci_cf8
    elif PCI_CFC <= port <= PCI_CFF and hvm.pci_cf8 & 0x80000000:
        # arch_ioreq_server_get_type_addr: a PCI configuration access, for whoever
        # claimed the function; IOREQ_TYPE_PCI_CONFIG: addr = SBDF << 32 | register
        sbdf = (hvm.pci_cf8 >> 8) & 0xFFFF
        if ioreq_server_select(hvm, _RANGE_PCI, sbdf, sbdf):
            who = "dm"
            reg = (hvm.pci_cf8 & 0xFC) | (port & 3)
            result = _send_ioreq(host, d, hvm, _TYPE_PCI_CONFIG,
                                 (sbdf << 32) | reg, size, read, value)
        else:
            who = "null"   # an empty slot: null_handler
            result = (1 << (8 * size)) - 1
    elif ioreq_server_select(hvm, _RANGE_PORT, port, port + size - 1):
        who = "dm"
        result = _send_ioreq(host, d, hvm, _TYPE_PIO, port, size, read, value)
    else:
        who = "null"       # no server claimed it: null_handler reads all ones
        result = (1 << (8 * size)) - 1
    if cpu is not None:
        cpu.charge(VMEXIT_COST_NS + IOREQ_COST_NS if who == "dm" else VMEXIT_COST_NS)
    if host.trace.enabled:
        host.trace.emit_deferred(host.now(), d.domid, 0, _KIND_VMEXIT, "io", _exit_args,
                                 (port, size, read, result if read else value, who))
    return result if read else 0


DEBUG_PORT = 0xE9     # Bochs' debug port: firmware's console (Xen's hvm_print_line)


def handle_pio_log(host: XenHost, d: Domain, hvm: HvmDomain, writes: list[tuple[int, int]],
                   cpu: _SliceClock) -> None:
    """The debug port's byte writes that the vCPU kept natively instead of one trip to
    Python each (``X86Vcpu.log_port_writes``; SeaBIOS writes its whole log there, a
    character per exit): each the exit ``handle_pio`` would have made, in order, at its
    own virtual time (``writes``: the slice's elapsed time before the exit and the
    byte): ``hvm_print_line``, then the ``io`` record. Their cost was charged as they
    happened. The vCPU hands them over before its next exit reaches Python and when its
    run ends, so the trace and the log are what one exit at a time makes."""
    base = host.now() - cpu.elapsed()      # the slice's start on this pCPU
    trace, domid = host.trace, d.domid
    if hvm.hvm_print_run(bytes([value for _elapsed, value in writes])):
        # no line ended among them (the vCPU keeps no more than the line has room for
        # and exits at a newline): the records only, made together
        if trace.enabled:
            end = base + VMEXIT_COST_NS
            trace.emit_deferred_series(
                domid, 0, _KIND_VMEXIT, "io", _exit_args,
                [end + elapsed for elapsed, _value in writes],
                [(DEBUG_PORT, 1, False, value, "xen") for _elapsed, value in writes])
        return
    for elapsed, value in writes:
        now = base + elapsed
        hvm.hvm_print_line(value, now)
        if trace.enabled:
            trace.emit_deferred(now + VMEXIT_COST_NS, domid, 0, _KIND_VMEXIT, "io",
                                _exit_args, (DEBUG_PORT, 1, False, value, "xen"))


#: the handler an exit the vCPU answered names, by its port's kind
_ANSWERED_BY = {PORT_NULL: "null", PORT_WINDOW: "null", PORT_LATCH: "xen", PORT_CLOCK: "xen",
                PORT_ONES: "xen"}


def hvm_native_ports(hvm: HvmDomain) -> tuple[bytes, bytes]:
    """What ``handle_pio`` decides for each port without state kept in Python, for the
    vCPU to answer natively (``X86Vcpu.set_port_kinds``): the PM timer's dword reads
    (PORT_CLOCK), the RTC index register's byte reads (PORT_ONES), Xen's other
    devices and the rest of theirs (Python), the PCI latch (PORT_LATCH) and its
    window (PORT_WINDOW: an access to a function no server claimed is the null
    handler's), the ports an enabled server claimed (Python: an ioreq), and the rest,
    no one's (PORT_NULL). With the claimed PCI functions' bitmap (segment 0)."""
    kinds = bytearray([PORT_NULL]) * 0x10000
    functions = bytearray(0x2000)
    if hvm.ioreq_enabled:
        for start, end in hvm.ioreq_ranges[_RANGE_PORT].ranges():
            if start <= 0xFFFF:
                kinds[start:min(end, 0xFFFF) + 1] = bytes(min(end, 0xFFFF) + 1 - start)
        for start, end in hvm.ioreq_ranges[_RANGE_PCI].ranges():
            for sbdf in range(start, min(end, 0xFFFF) + 1):
                functions[sbdf >> 3] |= 1 << (sbdf & 7)
    kinds[PCI_CFC:PCI_CFF + 1] = bytes([PORT_WINDOW]) * 4
    kinds[PCI_CF8] = PORT_LATCH
    for port in hvm.intercepts:
        kinds[port] = PORT_PYTHON
    kinds[PM_TMR] = PORT_CLOCK
    kinds[RTC_INDEX] = PORT_ONES      # the RTC's index register reads 0xff (rtc.io)
    return bytes(kinds), bytes(functions)


def hvm_update_native_ports(d: Domain, hvm: HvmDomain) -> None:
    """Give every vCPU of ``d`` the ports it may answer natively, after a change to the
    ioreq server's claims or state (and when the vCPU is made)."""
    kinds, functions = hvm_native_ports(hvm)
    hvm.native_port_kinds = kinds
    for v in d.vcpus:
        if v.cpu is not None:
            v.cpu.set_port_kinds(kinds)
            v.cpu.set_port_functions(functions)


def handle_pio_answered(host: XenHost, d: Domain, hvm: HvmDomain,
                        exits: list[tuple[int, int, int, bool, int]], cpu: _SliceClock) -> None:
    """The exits the vCPU answered natively as ``handle_pio`` would have, from the table
    ``hvm_native_ports`` gave it (``X86Vcpu.answer_ports``; a PCI scan of empty slots,
    SeaBIOS's PM-timer delays and port 0x92: some 2,700 exits a SeaBIOS boot): the
    latch's writes reach ``hvm.pci_cf8`` in order and each makes the ``io`` record it
    would have made, at its own virtual time (``exits``: the slice's elapsed time
    before each, port, size, out, the value read or written). Their cost was charged
    as they happened; the vCPU hands them over before its next exit reaches Python."""
    for _elapsed, port, _size, out, value in exits:
        if out and port == PCI_CF8:
            hvm.pci_cf8 = value
    trace = host.trace
    if trace.enabled:
        end = host.now() - cpu.elapsed() + VMEXIT_COST_NS
        kinds = hvm.native_port_kinds
        trace.emit_deferred_series(
            d.domid, 0, _KIND_VMEXIT, "io", _exit_args,
            [end + elapsed for elapsed, _port, _size, _out, _value in exits],
            [(port, size, not out, value, _ANSWERED_BY[kinds[port]])
             for _elapsed, port, size, out, value in exits])


MAX_REP_CHUNKS = 16   # pages of one ``rep ins/outs`` handled per exit; the rest restarts
LEGACY_VGA_BEGIN, LEGACY_VGA_END = 0xA0000, 0xC0000   # the VGA window: device memory


def handle_pio_rep(host: XenHost, d: Domain, hvm: HvmDomain, port: int, size: int,
                   count: int, gpa: int, write: bool, cpu: _Clock | None = None) -> int:
    """``rep ins``/``rep outs`` (hvmemul_rep_ins/outs) to a port Xen does not emulate
    itself: for each guest page one exit with ``count`` elements. To a claimed port, one
    ioreq with ``data_is_ptr`` (the device model reads or writes guest memory at ``data``
    itself); to a port no server claimed, Xen's null handler (``ins`` stores all ones,
    ``outs`` is dropped). Returns how many elements moved; 0 leaves the instruction to
    run element by element (Xen's own ports, an element that straddles pages, memory
    that is not the guest's RAM)."""
    if (port in hvm.intercepts or port == PCI_CF8 or PCI_CFC <= port <= PCI_CFF
            or size not in (1, 2, 4)):
        return 0
    claimed = ioreq_server_select(hvm, _RANGE_PORT, port, port + size - 1)
    done = 0
    for _chunk in range(MAX_REP_CHUNKS):
        addr = gpa + done * size
        reps = min(count - done, (4096 - (addr & 0xFFF)) // size)
        if reps <= 0 or d.pfn_to_mfn(addr >> 12) >= 1 << 52 or (
                LEGACY_VGA_BEGIN <= addr < LEGACY_VGA_END):  # video memory, not RAM
            break
        if claimed:
            if cpu is not None:
                cpu.charge(VMEXIT_COST_NS + IOREQ_COST_NS)
            state = _send_ioreq(host, d, hvm, IoreqType.IOREQ_TYPE_PIO, port, size,
                                not write, addr, count=reps, data_is_ptr=True)
        else:   # null_handler, element by element inside Xen (hvm_process_io_intercept)
            if cpu is not None:
                cpu.charge(VMEXIT_COST_NS)
            if not write:
                hvm.guest_write(addr, b"\xff" * (reps * size))
            state = _IORESP_READY
        if host.trace.enabled:
            host.trace.emit(host.now(), d.domid, 0, Kind.VMEXIT, "io", {
                "port": hex(port), "size": size, "dir": "out" if write else "in",
                "rep": reps, "data": hex(addr), "handler": "dm" if claimed else "null"})
        if state != _IORESP_READY:
            break
        if claimed and not write:  # the device model wrote guest memory: drop its code
            hvm.invalidate_code(addr, addr + reps * size)
        done += reps
        if done >= count:
            break
    return done


def _wide(hvm: HvmDomain, port: int, size: int, read: bool, value: int) -> int:
    """A 16/32-bit access to byte-wide devices: one byte per port; ports nobody decodes
    read as 0xFF."""
    result = 0
    for i in range(size):
        handler = hvm.intercepts.get(port + i)
        byte = 0xFF if handler is None else handler(port + i, not read,
                                                    (value >> (8 * i)) & 0xFF)
        result |= (byte & 0xFF) << (8 * i)
    return result
