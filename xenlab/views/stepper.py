"""A debugger for one guest's boot: Step, Step over, Run to event/phase, and Back.

``Stepper(lab, "hvm-hello")`` takes a guest created paused (``xl create -p``),
unpauses it and from then on moves it only itself. It runs on
``xenlab.views.replay``, which works as record/replay debuggers do:

* **Position** = instructions this vCPU has started since the Stepper attached,
  counted exactly in native code. ``step()`` goes to position + 1, ``back(n)``
  to position - n, ``back_to(n)`` anywhere; each stops the vCPU just before it
  starts the next instruction.
* **Full speed.** The guest runs in ``XenHost.run`` as it does without the
  Stepper (slices, the scheduler, timers, exits, Dom0's back ends, the trace),
  with one native hook counting instructions. ``run_to_phase``,
  ``run_to_next_event``, ``run_until`` and ``step_over`` run until what they wait
  for (a trace record of this domain; the instruction after a ``call``) and stop
  before the vCPU's next instruction; ``run_to(address)`` stops before the
  instruction at a linear address. The SeaBIOS boot (about 6 M instructions
  counted this way) runs to its boot sector in about a second.
* **Back** restores the nearest checkpoint before the position (taken
  automatically while the guest runs: every ``checkpoint_every_s`` of wall
  time) and replays the difference at full speed, ending each of the vCPU's
  slices where the first pass ended it: the same registers, memory, devices and
  trace records as when the run first passed there. A move forward from a stop
  inside a slice goes the same way (the host was left inside that slice), so a
  Step costs a restore and a short replay (tens of milliseconds), not one
  emulated instruction.
* With the counter on, a stop a VM exit asks for takes effect at the next
  instruction rather than at the end of its block, and a slice ends after at
  most 500,000 instructions: a boot the Stepper drives is a valid timeline of
  its own, the same whether it was stopped on the way or not (the same phases
  and screen as a free run, its clock a few nanoseconds apart). Input typed
  into the guest after a checkpoint is not replayed.

``StepperView(stepper)`` (or ``stepper.widget()``) is the ipywidgets front
end; tests click its buttons and read the model's panel strings.

Real Xen: ``gdbsx`` (tools/debugger/gdbsx: a gdb stub over
XEN_DOMCTL_gdbsx_guestmemio / XEN_DOMCTL_gdbsx_pausevcpu) and ``xl debug-keys``;
the Back button is xenlab's own (real Xen has no reverse execution; QEMU's is
replay/replay.c with ``-icount rr=``)
"""

from __future__ import annotations

import html
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import capstone
import ipywidgets as W

from xenlab.cpu.x86 import CpuMode
from xenlab.errors import UsageError, XenlabError
from xenlab.views.replay import CHECKPOINT_EVERY_S, MAX_RUN_NS, Replay, Snapshot
from xenlab.xen.trace import Kind, TraceRecord

if TYPE_CHECKING:
    from xenlab.devicemodel.qemu import DeviceModel
    from xenlab.lab import Lab
    from xenlab.xen.domain import Domain, Vcpu

__all__ = ["EVENT_KINDS", "PHASES", "TEACHING_PHASES", "Snapshot", "Stepper", "StepperView"]

#: Instructions ``step_over`` and ``run_until`` run at most (a call that never returns).
MAX_INSTRUCTIONS = 100_000_000

#: Trace kinds that end ``run_to_next_event``.
EVENT_KINDS = frozenset({Kind.VMEXIT, Kind.IOREQ, Kind.HYPERCALL, Kind.PHASE, Kind.EVENT})

#: Firmware phase (prefix of the PHASE record's name) -> (what happens, the real source).
PHASES: dict[str, tuple[str, str]] = {
    "HVM Loader": (
        "Xen started the vCPU in 32-bit flat mode in hvmloader, which sets up the platform "
        "(hypercall page, E820, tables) and copies the BIOS below 1 MiB.",
        "tools/firmware/hvmloader/hvmloader.c main()"),
    "hypercall page at": (
        "hvmloader asked CPUID leaf 0x40000002 for Xen's hypercall MSR and wrote the page's "
        "address to it (wrmsr, a VM exit); Xen filled the page with vmcall stubs.",
        "tools/firmware/hvmloader/hvmloader.c init_hypercalls()"),
    "Detected Xen": (
        "CPUID leaf 0x40000000 answered \"XenVMMXenVMM\"; the first hypercall, xen_version, "
        "gave the version.",
        "tools/firmware/hvmloader/hvmloader.c init_hypercalls()"),
    "memory map:": (
        "hvmloader found the start-of-day information Xen left for it (hvm_start_info in "
        "EBX) and the BIOS image passed as a module.",
        "xen/include/public/arch-x86/hvm/start_info.h"),
    "hvm_info_table at": (
        "hvmloader checked the hvm_info_table the domain builder wrote at 0x9F800: vCPUs "
        "and where memory ends.",
        "xen/include/public/hvm/hvm_info_table.h, tools/firmware/hvmloader/util.c"),
    "Writing SMBIOS": (
        "hvmloader writes the SMBIOS tables (what dmidecode shows inside the guest).",
        "tools/firmware/hvmloader/smbios.c"),
    "Creating MP tables": (
        "hvmloader writes the MultiProcessor tables that list the vCPUs and interrupt routing.",
        "tools/firmware/hvmloader/mp_tables.c"),
    "Loading ": (
        "hvmloader copies the BIOS image to the top of the first megabyte (0xF0000 up).",
        "tools/firmware/hvmloader/hvmloader.c main()"),
    "Loading ACPI": (
        "hvmloader writes the ACPI tables (FADT with the PM timer's port, DSDT, MADT ...).",
        "tools/libacpi/build.c acpi_build_tables()"),
    "CMOS memory size": (
        "hvmloader writes the memory size into the CMOS registers a BIOS reads at POST.",
        "tools/firmware/hvmloader/hvmloader.c cmos_write_memory_size()"),
    "E820 table": (
        "hvmloader builds the E820 memory map the BIOS hands out through int 15h E820h.",
        "tools/firmware/hvmloader/e820.c build_e820_table()"),
    "Invoking ": (
        "hvmloader leaves 32-bit protected mode for real mode and jumps to the BIOS's reset "
        "vector, F000:FFF0.",
        "tools/firmware/hvmloader/hvmloader.c main()"),
    "hvmloader: ": (
        "hvmloader reports a step of the platform set-up.",
        "tools/firmware/hvmloader/hvmloader.c main()"),
    "xenlab BIOS: POST": (
        "The BIOS's power-on self test starts in real mode at F000:xxxx.",
        "SeaBIOS src/post.c handle_post()"),
    "xenlab BIOS: IVT and BDA": (
        "The BIOS fills the real-mode interrupt vector table and the BIOS data area.",
        "SeaBIOS src/post.c ivt_init(), bda_init()"),
    "xenlab BIOS: PIC and PIT": (
        "The BIOS programs the 8259 interrupt controllers and the 8254 timer (IRQ 0).",
        "SeaBIOS src/hw/pic.c pic_setup(), src/hw/timer.c timer_setup()"),
    "xenlab BIOS: PCI": (
        "The BIOS enables the IDE controller's I/O ports through PCI configuration space.",
        "SeaBIOS src/fw/pciinit.c pci_setup()"),
    "xenlab BIOS: disks": (
        "The BIOS probes the IDE disks (IDENTIFY DEVICE) through the device model.",
        "SeaBIOS src/hw/ata.c ata_setup()"),
    "xenlab BIOS: memory": (
        "The BIOS takes the memory size and E820 map hvmloader prepared (for int 15h).",
        "SeaBIOS src/fw/xen.c xen_biostable_setup(), src/e820map.c"),
    "xenlab BIOS: video": (
        "The BIOS sets up text mode and its int 10h services.",
        "SeaBIOS vgasrc/vgabios.c, src/optionroms.c vgarom_setup()"),
    "xenlab BIOS: INT 19h": (
        "int 19h: the BIOS reads the boot sector to 0000:7C00 and jumps to it.",
        "SeaBIOS src/boot.c handle_19(), do_boot()"),
    "xenlab BIOS: boot sector loaded": (
        "Sector 0 of the disk is at 0000:7C00 and ends in the 55h AAh signature.",
        "SeaBIOS src/boot.c boot_disk()"),
    "xenlab BIOS: jump": (
        "The BIOS jumps to 0000:7C00 with DL = 80h, the boot drive: the guest's own code "
        "runs from here on.",
        "SeaBIOS src/boot.c call_boot_entry()"),
    "Booting from ": (
        "SeaBIOS's int 19h loaded a boot sector and jumps to it.",
        "SeaBIOS src/boot.c boot_disk(), call_boot_entry()"),
    "SeaBIOS": (
        "SeaBIOS (loaded by hvmloader) reports a step of its POST.",
        "SeaBIOS src/post.c"),
}


#: The phases xenlab's teaching hvmloader and BIOS (``bios = "xenlab"``, the default)
#: report, in boot order; each comes once per boot. tests/test_stepper.py checks that a
#: boot of hvm-hello reaches every one.
TEACHING_PHASES: tuple[str, ...] = (
    "HVM Loader", "hypercall page at", "Detected Xen", "memory map:", "hvm_info_table at",
    "Loading ", "CMOS memory size", "E820 table", "Invoking ",
    "xenlab BIOS: POST", "xenlab BIOS: IVT and BDA", "xenlab BIOS: PIC and PIT",
    "xenlab BIOS: PCI", "xenlab BIOS: disks", "xenlab BIOS: memory", "xenlab BIOS: video",
    "xenlab BIOS: INT 19h", "xenlab BIOS: boot sector loaded", "xenlab BIOS: jump",
)


def explain_phase(name: str) -> tuple[str, str]:
    """(explanation, source to read) for a PHASE record's name (longest matching prefix)."""
    best = ""
    for prefix in PHASES:
        if name.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    if best:
        return PHASES[best]
    return ("The firmware reported a phase xenlab has no note for.", "xenlab's own")


class Stepper:
    """Step one guest vCPU, run it to events at full speed, go Back; text panels."""

    def __init__(self, lab: Lab, domain_name: str | int, *, vcpu: int = 0,
                 checkpoint_every_s: float = CHECKPOINT_EVERY_S, history: int = 4) -> None:
        self.lab = lab
        self.host = lab.host
        self.d: Domain = lab.domain(domain_name)
        self.v: Vcpu = self.d.vcpus[vcpu]
        assert self.v.cpu is not None
        self.cpu = self.v.cpu
        self.dm: DeviceModel | None = lab.toolstack.device_models.get(self.d.domid)
        self.history = history
        self._scan = 0                                        # trace records scanned
        self._io: list[tuple[int, TraceRecord]] = []
        self._phases: list[tuple[int, TraceRecord]] = []
        self.last_event: TraceRecord | None = None
        if self.d.paused:
            lab.xl_output(f"unpause {self.d.domid}")
        self.replay = Replay(lab, self.d, self.v, self.dm,
                             checkpoint_every_s=checkpoint_every_s)
        # a Stepper dropped (a notebook cell run again) gives the vCPU back its speed
        weakref.finalize(self, self.replay.close).atexit = False

    def close(self) -> None:
        """Stop driving the guest: the instruction counter leaves its vCPU (``lab.run()``
        then runs it at its own speed, from where the Stepper left it)."""
        self.replay.close()

    @property
    def position(self) -> int:
        """Instructions this vCPU has started since the Stepper attached."""
        return self.replay.position

    @property
    def furthest(self) -> int:
        """The furthest position reached (the slider's end)."""
        return self.replay.furthest

    @property
    def checkpoints(self) -> list[Snapshot]:
        return self.replay.checkpoints

    @property
    def checkpoint_every_s(self) -> float:
        """First-pass wall time between checkpoints (see ``xenlab.views.replay``)."""
        return self.replay.checkpoint_every_s

    # ================================================================ moving forward
    def step(self) -> bool:
        """Execute one instruction of this vCPU; False if the guest can no longer run."""
        before = self.position
        self.back_to(before + 1)
        return self.position != before

    def step_over(self, *, max_instructions: int = MAX_INSTRUCTIONS) -> bool:
        """Step; over a ``call``/``int`` run until the instruction after it."""
        insn = self._decode(self.linear_pc())
        if insn is None or insn[1].split()[0] not in ("call", "int", "lcall", "into"):
            return self.step()
        before = self.position
        self._after_move()
        self.replay.run(before + max_instructions, brk=self.linear_pc() + insn[0])
        return self.position != before

    def run_to(self, linear: int, *, max_instructions: int = MAX_INSTRUCTIONS) -> bool:
        """Run until the vCPU is about to execute the instruction at linear address
        ``linear`` (a breakpoint: ``run_to(0x7C00)`` stops at the first instruction of
        the boot sector). False if the guest stops first, or after ``max_instructions``."""
        self._after_move()
        before = self.position
        self.replay.run(before + max_instructions, brk=linear)
        return self.linear_pc() == linear and self.position > before

    def run_until(self, done: Callable[[TraceRecord], bool], *,
                  kinds: Iterable[Kind] | None = None,
                  max_instructions: int = MAX_INSTRUCTIONS,
                  max_ns: int = MAX_RUN_NS) -> TraceRecord | None:
        """Run until a new trace record of this domain satisfies ``done`` (returns it),
        stopped before the vCPU's next instruction. None if the guest stops first, or
        after ``max_instructions`` or ``max_ns`` of virtual time. ``kinds``: the kinds of
        record ``done`` can accept, if known (faster: see ``Replay.run``)."""
        self._after_move()
        rec = self.replay.run(self.position + max_instructions, done=done, kinds=kinds,
                              max_ns=max_ns)
        if rec is not None:
            self.last_event = rec
        return rec

    def run_to_next_event(self, **kw: int) -> TraceRecord | None:
        """Until a VM exit, ioreq, hypercall, event or firmware phase of this domain."""
        return self.run_until(lambda r: r.kind in EVENT_KINDS, kinds=EVENT_KINDS, **kw)

    def phases(self) -> list[str]:
        """The firmware phases this guest reaches, in boot order (what the widget offers):
        the teaching firmware's ``TEACHING_PHASES``; with ``bios = "seabios"`` the real
        hvmloader's and SeaBIOS's (every ``PHASES`` entry but the teaching BIOS's); none
        for a guest without firmware (PV, PVH)."""
        if self.d.hvm is None or self.dm is None:
            return []
        cfg = self.lab.toolstack.configs.get(self.d.domid)
        if ((cfg.bios if cfg is not None else None) or "xenlab") == "xenlab":
            return list(TEACHING_PHASES)
        return [p for p in PHASES if not p.startswith("xenlab BIOS")]

    def run_to_phase(self, name_prefix: str, **kw: int) -> TraceRecord | None:
        """Until a firmware PHASE record whose name starts with ``name_prefix``.

        A name that is none of ``phases()`` is a ``UsageError`` listing them; so is a phase
        the guest has already passed (firmware phases come once per boot: Back or the
        slider return to it), rather than running to the end of the boot looking for it.
        Returns None if the guest stops before the phase."""
        offered = self.phases()
        if not isinstance(name_prefix, str) or not name_prefix or not any(
                p.startswith(name_prefix) or name_prefix.startswith(p) for p in offered):
            raise UsageError(f"run_to_phase: no phase {name_prefix!r} in {self.d.name}'s "
                             f"boot; its phases: {', '.join(offered) or '(none: no firmware)'}")
        self._scan_trace()
        passed = [r.name for _i, r in self._phases if r.name.startswith(name_prefix)]
        if passed:
            raise UsageError(f"run_to_phase: {self.d.name} has already passed phase "
                             f"{passed[-1]!r} (now: {self.phase()!r}) and the firmware "
                             "reaches each phase once per boot; Back or the slider go back")
        return self.run_until(lambda r: r.kind is Kind.PHASE and r.name.startswith(name_prefix),
                              kinds=(Kind.PHASE,), **kw)

    def run_to_end(self, *, max_instructions: int = MAX_INSTRUCTIONS,
                   max_ns: int = MAX_RUN_NS) -> int:
        """Run until the guest cannot run any more (halted for good, shut down)."""
        self._after_move()
        self.replay.run(self.position + max_instructions, max_ns=max_ns)
        return self.position

    # ================================================================ checkpoints, Back
    def checkpoint(self) -> Snapshot:
        """A checkpoint here, now (a clean point: see ``xenlab.views.replay``)."""
        if not self.replay.clean:
            raise UsageError("checkpoint: the guest stopped inside a slice; checkpoints are "
                             "taken between slices (the Stepper takes them as it runs)")
        return self.replay.checkpoint()

    def restore(self, snap: Snapshot) -> None:
        """Put the host back exactly as it was at ``snap``."""
        self.replay.restore(snap)
        self._after_move()

    def back_to(self, position: int) -> int:
        """Go to instruction ``position`` (backwards or forwards: from the nearest
        checkpoint, replayed at full speed)."""
        self.replay.goto(position)
        self._after_move()
        return self.position

    def back(self, n_instructions: int = 1) -> int:
        return self.back_to(self.position - n_instructions)

    def forward(self, n_instructions: int = 1) -> int:
        return self.back_to(self.position + n_instructions)

    def _after_move(self) -> None:
        """The trace may have been cut back: forget what was scanned beyond it."""
        n = self.host.trace.dropped + len(self.host.trace)
        if self._scan > n:
            self._scan = n
            self._io = [(i, r) for i, r in self._io if i < n]
            self._phases = [(i, r) for i, r in self._phases if i < n]
        if self.last_event is not None and self.last_event.seq >= n:
            self.last_event = None

    # ================================================================ panels
    def linear_pc(self) -> int:
        cpu = self.cpu
        if not cpu.long_mode and not cpu.reg("cr0") & 1:
            return (cpu.reg("cs") << 4) + (cpu.reg("eip") & 0xFFFF)
        return cpu.pc()

    def _read(self, linear: int, size: int) -> bytes:
        if self.d.is_pv:
            return self.host.read_guest_code(self.d, self.cpu, linear, size)
        try:
            return bytes(self.cpu.uc.mem_read(linear, size))
        except Exception:  # unmapped (UcError)
            return b""

    def _capstone(self) -> capstone.Cs:
        mode = self.cpu.mode()
        cs_mode = {CpuMode.REAL: capstone.CS_MODE_16, CpuMode.PROTECTED: capstone.CS_MODE_32,
                   CpuMode.LONG: capstone.CS_MODE_64}[mode]
        if mode is CpuMode.LONG and not self.cpu.long_mode:
            cs_mode = capstone.CS_MODE_32
        return capstone.Cs(capstone.CS_ARCH_X86, cs_mode)

    def _decode(self, linear: int) -> tuple[int, str] | None:
        code = self._read(linear, 15)
        for insn in self._capstone().disasm(code, self._address(linear), 1):
            return insn.size, f"{insn.mnemonic} {insn.op_str}".strip()
        return None

    def _address(self, linear: int) -> int:
        """What capstone prints as the address: the offset in CS in real mode."""
        if self.cpu.mode() is CpuMode.REAL:
            return (linear - (self.cpu.reg("cs") << 4)) & 0xFFFF
        return linear

    def _label(self, linear: int) -> str:
        if self.cpu.mode() is CpuMode.REAL:
            cs = self.cpu.reg("cs")
            off = linear - (cs << 4)
            if 0 <= off <= 0xFFFF:
                return f"{cs:04X}:{off:04X}"
            return f"{linear:05X}"
        return f"{linear:08X}" if not self.cpu.long_mode else f"{linear:016X}"

    def cs_ip(self) -> str:
        cpu = self.cpu
        if cpu.mode() is CpuMode.REAL:
            return f"{cpu.reg('cs'):04X}:{cpu.reg('eip') & 0xFFFF:04X}"
        if cpu.long_mode:
            return f"{cpu.reg('cs'):04X}:{cpu.reg('rip'):016X}"
        return f"{cpu.reg('cs'):04X}:{cpu.reg('eip'):08X}"

    def registers_text(self) -> str:
        regs = self.cpu.registers()
        lines = [f"mode: {self.cpu.mode().value}   CS:IP {self.cs_ip()}   "
                 f"instruction #{self.position}"]
        items = list(regs.items())
        # few enough a line that no line is wider than REGISTER_LINE (the panel never
        # wraps a number in two: see _pre)
        width = 2 if self.cpu.long_mode else 3
        for i in range(0, len(items), width):
            lines.append("  ".join(f"{k:>6} {v:#010x}" if not self.cpu.long_mode
                                   else f"{k:>6} {v:#018x}" for k, v in items[i:i + width]))
        return "\n".join(lines)

    def disassembly_text(self, after: int = 8) -> str:
        """The last executed instructions, ``=>`` the current one, then the next ones."""
        md = self._capstone()
        lines: list[str] = []
        for linear in self.replay.counter.recent(self.history):
            for insn in md.disasm(self._read(linear, 15), self._address(linear), 1):
                lines.append(f"   {self._label(linear)}  {insn.mnemonic} {insn.op_str}".rstrip())
        linear = self.linear_pc()
        code = self._read(linear, 15 * after)
        first = True
        for insn in md.disasm(code, self._address(linear), after):
            mark = "=>" if first else "  "
            first = False
            lines.append(f"{mark} {self._label(linear)}  {insn.bytes.hex():<16} "
                         f"{insn.mnemonic} {insn.op_str}".rstrip())
            linear += insn.size
        if first:
            lines.append(f"=> {self._label(linear)}  (no code readable here)")
        return "\n".join(lines)

    def screen_text(self) -> str:
        return self.dm.screen_text() if self.dm is not None else ""

    def serial_text(self) -> str:
        data = self.d.hvm.serial if self.d.hvm is not None else self.d.console
        return bytes(data).decode("latin-1")

    def _scan_trace(self) -> None:
        trace = self.host.trace
        records = trace.records
        dom = self.d.domid
        first = trace.dropped
        for r in records[max(0, self._scan - first):]:
            if r.dom != dom:
                continue
            if r.kind is Kind.VMEXIT and r.name == "io":
                self._io.append((r.seq, r))
            elif r.kind is Kind.PHASE:
                self._phases.append((r.seq, r))
        self._scan = first + len(records)

    def port_io_text(self, last: int = 12) -> str:
        self._scan_trace()
        rows = [f"{'time':>10}  dir  port   value       handler"]
        for _i, r in self._io[-last:]:
            a = r.args or {}
            rows.append(f"{r.time:>10}  {a.get('dir', ''):<4} {a.get('port', ''):<6} "
                        f"{a.get('value', ''):<11} {a.get('handler', '')}")
        return "\n".join(rows) if self._io else "no port I/O exits yet"

    def e820_text(self) -> str:
        names = {1: "RAM", 2: "reserved", 3: "ACPI", 4: "NVS"}
        e820 = self.host.guest_e820(self.d)
        rows = ["E820 (Xen's map for the guest, what int 15h AX=E820h hands out)"]
        for base, length, kind in e820:
            rows.append(f"  {base:#012x}-{base + length - 1:#012x}  {length:#x} bytes  "
                        f"{names.get(kind, kind)}")
        return "\n".join(rows)

    def phase(self) -> str | None:
        self._scan_trace()
        return self._phases[-1][1].name if self._phases else None

    def phase_text(self) -> str:
        name = self.phase()
        if name is None:
            return "phase: (none yet: Xen's domain builder has not started the firmware)"
        why, source = explain_phase(name)
        return f"phase: {name}\n{why}\nread: {source}"

    def panels(self) -> dict[str, str]:
        return {"registers": self.registers_text(), "disassembly": self.disassembly_text(),
                "screen": self.screen_text(), "serial": self.serial_text(),
                "port_io": self.port_io_text(), "e820": self.e820_text(),
                "phase": self.phase_text()}

    def widget(self) -> StepperView:
        return StepperView(self)


#: The widest line ``registers_text`` writes (two 64-bit or three 32-bit registers).
REGISTER_LINE = 56


def _pre(text: str) -> str:
    """Text as HTML that keeps its lines: never wrapped (a register value is not cut in
    two), scrolled sideways if the panel is narrower."""
    return ("<pre style='margin:0;font-size:11px;white-space:pre;overflow-x:auto'>"
            f"{html.escape(text)}</pre>")


class StepperView(W.VBox):
    """Buttons (Step, Step over, Run to next event, Run to phase, Back), a slider over the
    recorded positions, and the panels as HTML."""

    def __init__(self, stepper: Stepper) -> None:
        self.stepper = stepper
        self.step_button = W.Button(description="Step", icon="step-forward")
        self.step_over_button = W.Button(description="Step over", icon="share")
        self.event_button = W.Button(description="Run to next event", icon="forward",
                                     layout=W.Layout(width="160px"))
        offered = stepper.phases()
        self.phase_choice = W.Dropdown(
            options=offered, description="Phase",
            value="xenlab BIOS: POST" if "xenlab BIOS: POST" in offered
            else (offered[0] if offered else None))
        self.phase_button = W.Button(description="Run to phase", icon="fast-forward")
        self.back_button = W.Button(description="Back", icon="step-backward")
        self.back_count = W.IntText(value=1, description="by", layout=W.Layout(width="140px"))
        self.slider = W.IntSlider(value=0, min=0, max=0, description="Instruction",
                                  continuous_update=False, layout=W.Layout(width="100%"))
        self.status = W.Label()
        self.registers = W.HTML()
        self.disassembly = W.HTML()
        self.phase_panel = W.HTML()
        self.screen = W.HTML()
        self.serial = W.HTML()
        self.port_io = W.HTML()
        self.e820 = W.HTML()
        self._syncing = False

        self.step_button.on_click(lambda _b: self._do(stepper.step))
        self.step_over_button.on_click(lambda _b: self._do(stepper.step_over))
        self.event_button.on_click(lambda _b: self._do(stepper.run_to_next_event))
        self.phase_button.on_click(
            lambda _b: self._do(lambda: stepper.run_to_phase(str(self.phase_choice.value))))
        self.back_button.on_click(
            lambda _b: self._do(lambda: stepper.back(int(self.back_count.value))))
        self.slider.observe(self._on_slider, names="value")
        super().__init__([
            W.HTML("<b>Stepper</b> (xenlab): "
                   f"{html.escape(stepper.d.name)} (domain {stepper.d.domid})"),
            W.HBox([self.step_button, self.step_over_button, self.event_button,
                    self.back_button, self.back_count]),
            W.HBox([self.phase_choice, self.phase_button, self.status]),
            self.slider,
            self.phase_panel,
            W.HBox([W.VBox([W.Label("Registers"), self.registers]),
                    W.VBox([W.Label("Disassembly"), self.disassembly])]),
            W.HBox([W.VBox([W.Label("Screen (VGA text)"), self.screen]),
                    W.VBox([W.Label("Port I/O exits"), self.port_io, W.Label("E820"),
                            self.e820])]),
            W.Label("Serial"), self.serial,
        ])
        self.refresh()

    def _do(self, action: Callable[[], object]) -> None:
        try:
            result = action()
        except XenlabError as e:  # a phase already passed, say, in one line
            self.status.value = str(e)
            self.refresh()
            return
        if isinstance(result, TraceRecord):
            self.status.value = f"stopped at {result.kind.value} {result.name}"
        elif result is False or result is None:
            self.status.value = "the guest did not run (halted for good or shut down?)"
        else:
            self.status.value = ""
        self.refresh()

    def _on_slider(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self.stepper.back_to(int(change["new"]))
        self.refresh()

    def refresh(self) -> None:
        s = self.stepper
        self._syncing = True
        try:
            self.slider.max = max(s.furthest, s.position)
            self.slider.value = s.position
        finally:
            self._syncing = False
        self.registers.value = _pre(s.registers_text())
        self.disassembly.value = _pre(s.disassembly_text())
        self.phase_panel.value = _pre(s.phase_text())
        self.screen.value = _pre(s.screen_text())
        self.serial.value = _pre(s.serial_text()[-4000:])
        self.port_io.value = _pre(s.port_io_text())
        self.e820.value = _pre(s.e820_text())
