"""HVM guests: the firmware boot from hvmloader to the boot sector, VM exits, ioreqs.

The guest is unmodified machine code: xenlab's teaching hvmloader and BIOS
(images/firmware/) and a boot sector. The same BIOS and disk boot on real
QEMU; the serial output must agree.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from firmware_boot import SEABIOS_OK
from qemu_monitor import qemu_monitor

from xenlab.cli import run_configs
from xenlab.lab import Lab
from xenlab.xen.hvm.io import handle_pio
from xenlab.xen.trace import Kind

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "images" / "firmware"
QEMU = shutil.which("qemu-system-i386")
BOOT_LINES = ["Hello from the boot sector!", "int 12h: memory 639 KiB",
              "int 15h: e820 entries 4", "int 13h: extensions present",
              "LBA 1: second sector says hi"]


def _boot(tmp: Path, disk: bytes | None = None, extra: str = "",
          **kw: int) -> tuple[Lab, str]:
    image = tmp / "disk.img"
    image.write_bytes(disk if disk is not None else (FW / "bootdisk.img").read_bytes())
    cfg = tmp / "hvm.cfg"
    cfg.write_text(f'name = "hvm"\ntype = "hvm"\nmemory = 32\n'
                   f"disk = [ 'format=raw, vdev=hda, access=rw, target={image}' ]\n"
                   'on_crash = "preserve"\n' + extra)
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=kw.get("budget", 20_000_000), max_seconds=2.0)
    return lab, lab.xl_output("console -t serial hvm")


def test_firmware_boots_the_boot_sector(tmp_path: Path) -> None:
    lab, serial = _boot(tmp_path)
    lines = serial.splitlines()
    for expected in BOOT_LINES:
        assert expected in lines
    phases = [r.name for r in lab.trace.select(kind=Kind.PHASE)]
    assert phases[0] == "HVM Loader"
    assert "xenlab BIOS: POST" in phases and "xenlab BIOS: INT 19h boot from hd0" in phases
    assert phases.index("xenlab BIOS: POST") < phases.index("xenlab BIOS: INT 19h boot from hd0")
    # the screen shows what int 10h wrote
    dm = lab.toolstack.device_models[lab.domain("hvm").domid]
    assert dm.screen_text().splitlines()[0] == "Hello from the boot sector!"
    # it ended halted, interrupts off: blocked with nothing that can wake it
    assert lab.domain("hvm").state_flags() == "-b----"


def test_vga_none_is_a_machine_without_a_vga_adapter(tmp_path: Path) -> None:
    """vga = "none" (QEMU's -nodefaults machine): no VGA function on the PCI bus, its
    ports read as an empty ISA bus, its window is unassigned memory; the guest still
    boots and talks through the serial port."""
    lab, serial = _boot(tmp_path, extra='vga = "none"\n')
    for expected in BOOT_LINES:
        assert expected in serial.splitlines()
    d = lab.domain("hvm")
    dm = lab.toolstack.device_models[d.domid]
    assert dm.vga is None and dm.screen_text() == ""
    assert dm.pci.config(3 << 3, 0, 4, False, 0) == 0xFFFFFFFF       # no 00:03.0
    assert dm.pci.config(2 << 3, 0, 4, False, 0) == 0x00015853       # the platform device
    # (in the slot the VGA would have, as QEMU's xenfv machine without VGA gives it)
    assert d.pfn_to_mfn(0xB8) >= 1 << 52                             # no video memory
    # the BIOS's cursor updates reach no one: the device model did not claim the VGA's
    # ports, so Xen's null handler takes them
    cursor = [r.args for r in lab.trace.select(kind=Kind.VMEXIT) if r.args.get("port") == "0x3d4"]
    assert cursor and all(a["handler"] == "null" for a in cursor)
    assert d.hvm is not None
    assert handle_pio(lab.host, d, d.hvm, 0x3D5, 1, True) == 0xFF   # CRTC data: nobody
    out = io.StringIO()
    cfg = tmp_path / "hvm.cfg"
    run_configs([str(cfg)], out=out, screen=True, max_instructions=20_000_000)
    assert '(no VGA adapter: vga = "none")' in out.getvalue()


def test_vm_exits_say_who_handled_them(tmp_path: Path) -> None:
    lab, _serial = _boot(tmp_path)
    exits = lab.trace.select(kind=Kind.VMEXIT)
    io_by_handler: dict[str, set[str]] = {}
    for r in exits:
        if r.name == "io":
            io_by_handler.setdefault(r.args["handler"], set()).add(r.args["port"])
    assert {"0xe9", "0x70", "0x71", "0x20", "0x21", "0x43", "0x40"} <= io_by_handler["xen"]
    assert {"0x3f8", "0x1f7", "0x1f0"} <= io_by_handler["dm"]
    names = {r.name for r in exits}
    assert {"cpuid", "wrmsr", "vmcall", "io"} <= names
    calls = lab.trace.select(kind=Kind.HYPERCALL, dom=lab.domain("hvm").domid)
    assert any(r.name == "xen_version" and r.ret == 0x40011 for r in calls)
    # every device-model access is an ioreq answered with STATE_IORESP_READY
    reqs = lab.trace.select(kind=Kind.IOREQ, name="ioreq")
    resps = lab.trace.select(kind=Kind.IOREQ, name="ioresp")
    assert reqs and len(reqs) == len(resps)
    assert all(r.args["state"] == "STATE_IORESP_READY" for r in resps)
    assert any(r.args["type"] == "IOREQ_TYPE_PCI_CONFIG" for r in reqs)


def test_no_bootable_device(tmp_path: Path) -> None:
    _lab, serial = _boot(tmp_path, disk=bytes(1 << 20), budget=5_000_000)
    assert "xenlab BIOS: No bootable device." in serial
    assert "Hello from the boot sector!" not in serial


def test_hvm_triple_fault_is_contained(tmp_path: Path) -> None:
    """A boot sector that empties its IVT and traps: triple fault, the HVM guest crashes
    (Xen's domain_crash), a PV guest beside it runs to the end."""
    disk = bytearray(1 << 20)
    disk[0:6] = bytes.fromhex("0f011e107c" "cc")  # lidt [0x7c10] (limit 0) ; int3
    disk[510:512] = b"\x55\xaa"
    image = tmp_path / "bad.img"
    image.write_bytes(bytes(disk))
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(f'name = "bad"\ntype = "hvm"\nmemory = 16\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={image}' ]\n"
                   'on_crash = "preserve"\n')
    out = io.StringIO()
    host = run_configs([str(cfg), str(ROOT / "images" / "pv-hello.cfg")], out)
    text = out.getvalue()
    assert "triple fault" in text
    assert "Shutting down (SHUTDOWN_poweroff)." in text
    host.check_invariants()


@pytest.mark.skipif(QEMU is None, reason="qemu-system-i386 not installed")
def test_serial_matches_real_qemu(tmp_path: Path) -> None:
    """The fidelity check: the same BIOS and disk on qemu-system-i386 print the same."""
    disk = tmp_path / "q.img"
    shutil.copy(FW / "bootdisk.img", disk)
    proc = subprocess.run(
        [QEMU, "-nodefaults", "-machine", "pc", "-m", "32", "-bios", str(FW / "xenlab-bios.bin"),
         "-drive", f"file={disk},format=raw,if=ide,index=0", "-serial", "stdio",
         "-display", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
        capture_output=True, timeout=60)
    qemu_lines = proc.stdout.decode("latin-1").replace("\r\n", "\n").splitlines()
    _lab, serial = _boot(tmp_path)
    ours = serial.splitlines()

    def comparable(lines: list[str]) -> list[str]:
        return [line for line in lines if line and "memory" not in line and "ticks" not in line]

    assert comparable(ours) == comparable(qemu_lines)
    assert all(line in ours for line in BOOT_LINES)




@pytest.mark.skipif(not SEABIOS_OK, reason="needs Debian's xen-utils-4.17 and seabios")
def test_real_hvmloader_and_seabios_boot_the_same_disk() -> None:
    """bios = "seabios": the distribution's real Xen hvmloader and SeaBIOS run under the
    same VM exits and device model, and boot the teaching boot sector."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('hvm-seabios.cfg')}")
    lab.run(max_seconds=5.0)
    log = lab.xl_output("dmesg")
    for line in ("(d1) HVM Loader", "(d1) Detected Xen v4.17", "(d1) Invoking SeaBIOS ...",
                 "(d1) Found Xen hypervisor signature at 40000000",
                 "(d1) Booting from Hard Disk...", "(d1) Booting from 0000:7c00",
                 "(d1) hvm-hello: done"):
        assert line in log, line
    # the distribution's VGA BIOS, from the VGA adapter's PCI ROM, put SeaBIOS on the screen
    screen = lab.toolstack.device_models[lab.domain("hvm-seabios").domid].screen_text()
    assert screen.splitlines()[0].startswith("SeaBIOS (version")
    assert "Booting from Hard Disk..." in screen and "hvm-hello: done" not in screen
    assert "protected mode: wrote VGA memory directly" in screen
    # hvmloader read its BIOS choice from xenstore, over the ring, through xenstored
    reads = [r for r in lab.trace.select(kind=Kind.XENSTORE, dom=1) if r.name == "XS_READ"]
    assert any("hvmloader/bios" in str(r.args.get("path")) for r in reads)


GRUB_PVH = Path("/usr/lib/grub-xen/grub-i386-xen_pvh.bin")


@pytest.mark.skipif(not GRUB_PVH.is_file(), reason="needs Debian's grub-xen-host (PVH GRUB)")
def test_pvh_grub_prompt_answers_typed_commands() -> None:
    """type = "pvh": the distribution's PVH GRUB reaches grub> on the PV console ring,
    and a command typed into the console (what xl console sends) is answered."""
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('pvh-grub.cfg')}")
    lab.run(max_instructions=30_000_000)
    console = lab.console("pvh-grub")
    assert "GNU GRUB" in console and console.rstrip().endswith("grub>")
    assert lab.console_input("pvh-grub", "echo hello from xl console\r") > 0
    lab.run(max_instructions=30_000_000)
    assert "hello from xl console\n\rgrub> " in lab.console("pvh-grub")
    d = lab.domain("pvh-grub")
    assert d.dtype.value == "pvh" and lab.toolstack.device_models.get(d.domid) is None


SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")


def _qemu_screen(disk: Path) -> list[str]:
    """Boot ``disk`` on qemu-system-i386 with its SeaBIOS and read the VGA text memory
    back through the QEMU monitor (pmemsave)."""
    dump = disk.with_suffix(".vga")
    qemu_monitor(disk, [f'pmemsave 0xb8000 4000 "{dump}"'])
    raw = dump.read_bytes()
    return ["".join(chr(c) if 32 <= c < 127 else " " for c in raw[r * 160:(r + 1) * 160:2])
            .rstrip() for r in range(25)]


@pytest.mark.skipif(not SYSLINUX_MBR.is_file() or QEMU is None,
                    reason="needs Debian's syslinux-common (mbr.bin) and qemu-system-i386")
def test_third_party_boot_sector_behaves_as_on_qemu(tmp_path: Path) -> None:
    """An unmodified boot sector from outside the repository (syslinux's MBR, from
    Debian) on a disk with no partitions: on the teaching BIOS under xenlab and on
    QEMU + SeaBIOS it prints the same message on the screen."""
    disk = bytearray(1 << 20)
    mbr = SYSLINUX_MBR.read_bytes()
    disk[: len(mbr)] = mbr
    disk[510:512] = b"\x55\xaa"
    image = tmp_path / "mbr.img"
    image.write_bytes(bytes(disk))
    lab, _serial = _boot(tmp_path, disk=bytes(disk))
    ours = lab.toolstack.device_models[lab.domain("hvm").domid].screen_text().splitlines()
    qemu = _qemu_screen(image)
    assert "Missing operating system." in ours
    assert "Missing operating system." in qemu


def test_typing_reaches_the_keyboard_and_serial(tmp_path: Path) -> None:
    lab, _ = _boot(tmp_path)
    d = lab.domain("hvm")
    dm = lab.toolstack.device_models[d.domid]
    assert lab.console_input("hvm", "Ab") == 2
    # scan codes, set 1: shift make, 'a' make/break, shift break, 'b' make/break
    assert list(dm.kbd.queue) == [0x2A, 0x1E, 0x9E, 0xAA, 0x30, 0xB0]
    assert d.hvm.vpic.master.irr & 0b10            # IRQ 1 raised
    assert bytes(dm.serial.rx) == b"Ab"


def test_hvm_bad_inputs_and_a_spinning_guest(tmp_path: Path, capsys) -> None:
    """A missing disk image is exit 2 with one line; a boot sector that spins forever is
    stopped by the budget and reported."""
    from xenlab.cli import main

    missing = tmp_path / "missing.cfg"
    missing.write_text('name = "m"\ntype = "hvm"\nmemory = 16\n'
                       f"disk = [ 'format=raw, vdev=hda, access=ro, target={tmp_path}/no.img' ]\n")
    assert main(["run", str(missing)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("xenlab: error:") and "no.img" in err[0]
    disk = bytearray(1 << 20)
    disk[0:2] = bytes.fromhex("ebfe")  # jmp $
    disk[510:512] = b"\x55\xaa"
    (tmp_path / "spin.img").write_bytes(bytes(disk))
    spin = tmp_path / "spin.cfg"
    spin.write_text('name = "spin"\ntype = "hvm"\nmemory = 16\n'
                    f"disk = [ 'format=raw, vdev=hda, access=ro, target={tmp_path}/spin.img' ]\n")
    assert main(["run", str(spin), "--max-instructions", "3000000"]) == 0
    out = capsys.readouterr().out
    assert "xenlab: instruction budget of 3,000,000 ended; still running: spin" in out


def test_ioreqs_travel_over_the_ioreq_servers_event_channel(tmp_path: Path) -> None:
    """Xen notifies the device model on vp_eport (a port of the guest's whose consumer is
    Xen, bound by Dom0); the device model answers and notifies back. The guest itself may
    not use that port."""
    from xenlab.public.errno import Errno
    from xenlab.xen.event_channel import ECS

    lab, _serial = _boot(tmp_path)
    d = lab.domain("hvm")
    hvm = d.hvm
    dm = lab.toolstack.device_models[d.domid]
    vp_eport = hvm.ioreq_port
    ch = d.evtchn.lookup(vp_eport)
    assert ch.state is ECS.INTERDOMAIN and ch.remote_domid == 0 and ch.xen_consumer
    assert ch.remote_port == dm.local_port and lab.host.dom0_handlers[dm.local_port]
    # one round trip, record by record: exit -> ioreq -> Dom0's port pending -> Dom0
    # notifies back (Dom0's EVTCHNOP_send hypercall) -> response; then the exit record
    # that says "dm"
    recs = lab.trace.records
    i = next(k for k, r in enumerate(recs) if r.kind is Kind.IOREQ and r.name == "ioreq"
             and r.args.get("addr") == "0x3f8")
    trip = [(r.kind, r.name, r.dom) for r in recs[i : i + 5]]
    assert trip == [(Kind.IOREQ, "ioreq", d.domid), (Kind.EVENT, "evtchn_set_pending", 0),
                    (Kind.HYPERCALL, "event_channel_op", 0), (Kind.IOREQ, "ioresp", d.domid),
                    (Kind.VMEXIT, "io", d.domid)]
    assert recs[i].args["port"] == vp_eport and recs[i + 1].args["port"] == dm.local_port
    assert recs[i + 2].args == {"nr": 32, "cmd": "EVTCHNOP_send", "port": dm.local_port,
                                "why": "ioresp"} and recs[i + 2].ret == 0
    assert recs[i + 4].args["handler"] == "dm"
    # the guest cannot send on Xen's port, close it or ask for its status
    from xenlab.public.event_channel import EvtchnOp
    from xenlab.public.xen import DOMID_SELF
    from xenlab.xen.event_channel import do_event_channel_op

    class Ctx:  # the smallest HypercallContext do_event_channel_op needs
        host, domain = lab.host, d

        def decode(self, **kw: object) -> None: ...
        def enum_name(self, enum: object, value: int) -> str: return str(value)
        def copy_from_guest(self, addr: int, size: int) -> bytes:
            return int(addr).to_bytes(4, "little").ljust(size, b"\0")
        def copy_to_guest(self, addr: int, data: bytes) -> bool: return True

    for op in (EvtchnOp.EVTCHNOP_send, EvtchnOp.EVTCHNOP_close):
        assert do_event_channel_op(Ctx(), op, vp_eport) == -Errno.EINVAL
    status = DOMID_SELF.to_bytes(2, "little") + b"\0\0" + vp_eport.to_bytes(4, "little")

    class StatusCtx(Ctx):
        def copy_from_guest(self, addr: int, size: int) -> bytes:
            return status.ljust(size, b"\0")

    assert do_event_channel_op(StatusCtx(), EvtchnOp.EVTCHNOP_status, 0) == -Errno.EACCES
    assert d.evtchn.lookup(vp_eport).state is ECS.INTERDOMAIN
    # destroying the guest unbinds the device model's port in Dom0
    lab.xl("destroy hvm")
    assert dm.local_port == 0 and lab.host.domains[0].evtchn.lookup(ch.remote_port) is None
    lab.host.check_invariants()


def test_exits_cost_the_guest_virtual_time(tmp_path: Path) -> None:
    """Each VM exit is charged VMEXIT_COST_NS of the guest's clock, each ioreq
    IOREQ_COST_NS more: the vCPU's exit time is exactly that sum."""
    from xenlab.xen.hvm.io import IOREQ_COST_NS, VMEXIT_COST_NS

    lab, _serial = _boot(tmp_path)
    d = lab.domain("hvm")
    exits = lab.trace.select(kind=Kind.VMEXIT, dom=d.domid)
    to_dm = sum(1 for r in exits if r.args.get("handler") == "dm")
    assert to_dm and len(exits) > to_dm
    assert d.exit_time == len(exits) * VMEXIT_COST_NS + to_dm * IOREQ_COST_NS
    assert d.cpu_time > d.exit_time > 0


# A boot sector that writes a 512-byte pattern to LBA 5 with int 13h AH=43h (the BIOS
# sends it with `rep outsw`), reads LBA 5 back to another buffer with AH=42h
# (`rep insw`), compares, and writes "S" (same) or "F" (failed) to port 0xE9:
#   xor ax,ax; mov ds/es/ss,ax; mov sp,0x7c00; cld
#   mov di,0x8000; mov cx,512; 1: mov al,cl; xor al,0x5a; stosb; loop 1b
#   mov si,dap_w; mov ax,0x4300; int 13h; jc fail
#   mov si,dap_r; mov ah,0x42; int 13h; jc fail
#   mov si,0x8000; mov di,0x9000; mov cx,512; repe cmpsb; jne fail
#   mov al,'S'; jmp out; fail: mov al,'F'; out: out 0xe9,al; mov al,10; out 0xe9,al; cli; hlt
#   dap_w: 16,0, dw 1, 0x8000, 0, dq 5     dap_r: 16,0, dw 1, 0x9000, 0, dq 5
WRITE_READ_SECTOR = bytes.fromhex(
    "31c08ed88ec08ed0bc007cfcbf0080b9000288c8345aaae2f9be487cb80043cd13721abe587cb442"
    "cd137211be0080bf0090b90002f3a67504b053eb02b046e6e9b00ae6e9faf49010000100008000"
    "00050000000000000010000100009000000500000000000000")


@pytest.mark.parametrize("access", ["rw", "ro"])
def test_int13_write_lands_in_the_image_by_rep_outsw(tmp_path: Path, access: str) -> None:
    """The BIOS's disk write is one `rep outsw` of 256 words: one exit, one ioreq with
    data_is_ptr (the device model reads the guest's buffer itself). The sector lands in
    the image file; a read-only disk refuses the write and the file stays as it was."""
    disk = bytearray(1 << 20)
    disk[: len(WRITE_READ_SECTOR)] = WRITE_READ_SECTOR
    disk[510:512] = b"\x55\xaa"
    image = tmp_path / "w.img"
    image.write_bytes(bytes(disk))
    cfg = tmp_path / "w.cfg"
    cfg.write_text(f'name = "w"\ntype = "hvm"\nmemory = 16\n'
                   f"disk = [ 'format=raw, vdev=hda, access={access}, target={image}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=20_000_000, max_seconds=2.0)
    pattern = bytes((n & 0xFF) ^ 0x5A for n in range(512, 0, -1))
    verdict = [r.args["line"] for r in lab.trace.select(kind=Kind.CONSOLE, name="debug_port")]
    written = image.read_bytes()[5 * 512 : 6 * 512]
    outs = [r.args for r in lab.trace.select(kind=Kind.IOREQ, name="ioreq")
            if r.args.get("data_is_ptr") and r.args["dir"] == "write"]
    if access == "rw":
        assert verdict[-1] == "S" and written == pattern
        assert [(a["addr"], a["count"], a["data"]) for a in outs] == [("0x1f0", 256, "0x8000")]
    else:
        assert verdict[-1] == "F" and written == bytes(512)
    lab.host.check_invariants()


def test_the_trace_lists_every_firmware_phase_in_order(tmp_path: Path) -> None:
    """From hvmloader's first line to the jump into the boot sector, each step is a phase
    record, in the order the firmware runs them."""
    lab, _serial = _boot(tmp_path)
    phases = [r.name for r in lab.trace.select(kind=Kind.PHASE)]
    expected = ["HVM Loader", "hypercall page at 0x80000", "Detected Xen v4.17",
                "memory map:", "hvm_info_table at 0x9F800", "Loading xenlab BIOS",
                "CMOS memory size", "E820 table:", "Invoking xenlab BIOS",
                "xenlab BIOS: POST", "xenlab BIOS: IVT and BDA", "xenlab BIOS: PIC and PIT",
                "xenlab BIOS: PCI", "xenlab BIOS: disks", "xenlab BIOS: memory",
                "xenlab BIOS: video", "xenlab BIOS: INT 19h boot from hd0",
                "xenlab BIOS: boot sector loaded at 0000:7C00, signature 55AA",
                "xenlab BIOS: jump to 0000:7C00 with DL=80h"]
    assert len(phases) == len(expected)
    assert all(p.startswith(e) for p, e in zip(phases, expected, strict=True)), phases
    # every phase has a note and a source to read in the stepper
    from xenlab.views.stepper import explain_phase
    assert all(explain_phase(p)[1] != "xenlab's own" for p in phases)


def test_ioreq_page_follows_the_p2m(tmp_path: Path) -> None:
    """Xen and the device model keep their view of the shared ioreq page while the P2M
    stays as it was; when the guest's P2M changes under it they look again: a page
    taken away means nobody answers (all ones), one put back is used again."""
    from xenlab.public.hvm import HvmParam
    from xenlab.xen.domain import INVALID_MFN

    image = tmp_path / "disk.img"
    image.write_bytes((FW / "bootdisk.img").read_bytes())
    cfg = tmp_path / "p.cfg"
    cfg.write_text(f'name = "p"\ntype = "hvm"\nmemory = 16\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={image}' ]\n")
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create -p {cfg}")
    d = lab.domain("p")
    hvm = d.hvm
    assert hvm is not None
    dm = lab.toolstack.device_models[d.domid]
    pfn = hvm.params[HvmParam.HVM_PARAM_IOREQ_PFN]
    mfn = d.pfn_to_mfn(pfn)

    def crtc_index() -> int:   # 0x3D4 reads back the CRTC index the device model holds
        return handle_pio(lab.host, d, hvm, 0x3D4, 1, True)

    handle_pio(lab.host, d, hvm, 0x3D4, 1, False, 0x0E)
    assert crtc_index() == 0x0E
    served, sent = dm.requests, len(lab.trace.select(kind=Kind.IOREQ, name="ioreq"))
    d.set_p2m(pfn, INVALID_MFN)          # the ioreq page is gone from the guest's P2M
    assert crtc_index() == 0xFF and dm.requests == served
    assert len(lab.trace.select(kind=Kind.IOREQ, name="ioreq")) == sent  # Xen sent none
    d.set_p2m(pfn, mfn)                  # and back
    assert crtc_index() == 0x0E and dm.requests == served + 1
    maps = len(lab.trace.select(kind=Kind.GRANT, name="foreign_map"))
    d.set_p2m(pfn, d.pfn_to_mfn(0x10))   # moved to another of the guest's frames
    assert crtc_index() == 0x0E and dm.requests == served + 2
    assert len(lab.trace.select(kind=Kind.GRANT, name="foreign_map")) == maps + 1


def test_pci_slots_are_those_xens_qemu_gives(tmp_path: Path) -> None:
    """QEMU's xenfv machine: i440FX 00:00.0, PIIX3 00:01.0/.1, VGA 00:02.0, and the Xen
    platform device (5853:0001) at the next free slot, 00:03.0 (hw/i386/pc_piix.c)."""
    from xenlab.devicemodel.pci import PciBus
    bus = PciBus(vga=True)
    ids = {devfn: bus.config(devfn, 0, 4, False, 0) for devfn in range(0, 8 << 3)}
    present = {f"00:{d >> 3:02x}.{d & 7}": hex(v) for d, v in ids.items() if v != 0xFFFFFFFF}
    assert present == {"00:00.0": "0x12378086", "00:01.0": "0x70008086",
                       "00:01.1": "0x70108086", "00:02.0": "0x11111234",
                       "00:03.0": "0x15853"}


def test_cpuid_leaf_1_hides_rdrand_and_keeps_the_cpus_own_bits() -> None:
    """unicorn's RDRAND is the host's randomness: an HVM or PVH guest that used it
    (Debian's Linux does) drew different numbers on every run. Leaf 1 is the CPU's
    own answer without RDRAND, OSXSAVE following the guest's CR4 as on the CPU."""
    from unicorn import UC_ARCH_X86, UC_MODE_32, Uc
    from unicorn import x86_const as X

    def unicorns(cr4: int) -> tuple[int, int, int, int]:
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x1000)
        uc.mem_write(0, b"\x0f\xa2")
        uc.reg_write(X.UC_X86_REG_CR0, 0x11)
        uc.reg_write(X.UC_X86_REG_CR4, cr4)
        uc.reg_write(X.UC_X86_REG_EAX, 1)
        uc.emu_start(0, 2)
        return tuple(uc.reg_read(r) & 0xFFFFFFFF for r in (  # type: ignore[return-value]
            X.UC_X86_REG_EAX, X.UC_X86_REG_EBX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX))

    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('hvm-hello.cfg')}")
    v = lab.domain("hvm-hello").vcpus[0]
    for cr4 in (0, 1 << 18):                         # OSXSAVE off, on
        v.cpu.set_reg("cr4", cr4)
        a, b, c, d = v.cpu.exits.cpuid(v.cpu, 1, 0)
        own = unicorns(cr4)
        assert own[2] & (1 << 30)                    # unicorn offers RDRAND ...
        assert not c & (1 << 30)                     # ... the guest is not told
        assert (a, b, c, d) == (own[0], own[1], own[2] & ~(1 << 30), own[3])
    assert c & (1 << 27)                             # OSXSAVE with CR4.OSXSAVE set
