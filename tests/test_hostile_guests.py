"""Hostile guests as real machine code (tests/elfgen.py) run the way ``xenlab run`` runs
them: a spinning guest, an event storm, a console flood, a guest that blocks with
nothing to wake it, a guest that yields forever. Each time the run returns, the
report says what happened to the hostile domain, Dom0 stays bounded and a
well-behaved pv-hello next to it still completes.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from elfgen import DATA_VA, Asm, build_elf, hypercall, write_image

from xenlab.cli import run_configs
from xenlab.public.console import ConsoleIO
from xenlab.public.event_channel import EvtchnOp
from xenlab.public.sched import SchedOp
from xenlab.public.xen import Hypercall as H
from xenlab.public.xen import StartInfo
from xenlab.xen.console import CONRING_SIZE
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind

IMAGES = Path(__file__).resolve().parents[1] / "images"
HELLO_CFG = str(IMAGES / "pv-hello.cfg")
#: offsetof(start_info_t, console.domU.evtchn): RSI points at start_info on entry
CONSOLE_EVTCHN = StartInfo.console.offset + 8


def _cfg(tmp: Path, name: str, code: bytes, data: bytes = b"") -> str:
    kernel = write_image(build_elf(code, data=data), tmp, f"{name}.elf")
    path = tmp / f"{name}.cfg"
    path.write_text(f'name = "{name}"\nkernel = "{kernel}"\nmemory = 16\n'
                    'on_poweroff = "preserve"\non_crash = "preserve"\n')
    return str(path)


def _jmp_back(a: Asm, target: int) -> Asm:
    a.code += b"\xe9" + struct.pack("<i", target - (a.here + 5))  # jmp target
    return a


def _run(tmp: Path, name: str, code: bytes, data: bytes = b"", *, budget: int,
         with_hello: bool = True) -> tuple[str, XenHost]:
    out = io.StringIO()
    cfgs = [_cfg(tmp, name, code, data)] + ([HELLO_CFG] if with_hello else [])
    host = run_configs(cfgs, out, max_instructions=budget)
    return out.getvalue(), host


def _domain(host: XenHost, name: str):
    return next(d for d in host.domains.values() if d.name == name)


def _hello_completed(text: str, host: XenHost) -> None:
    assert "Shutting down (SHUTDOWN_poweroff)." in text.split("--- console of pv-hello ---")[1]
    hello = _domain(host, "pv-hello")
    assert hello.is_shut_down and not hello.is_crashed


# ------------------------------------------------------------------ jmp .
def test_infinite_loop_ends_by_budget_and_is_named(tmp_path: Path) -> None:
    budget = 20_000_000
    text, host = _run(tmp_path, "spinner", Asm().spin().bytes(), budget=budget)
    assert (f"xenlab: instruction budget of {budget:,} ended; still running: spinner\n"
            in text)
    _hello_completed(text, host)
    spinner = _domain(host, "spinner")
    assert not spinner.is_shut_down and not spinner.is_crashed
    assert host.instructions >= budget
    host.check_invariants()


# ------------------------------------------------------------------ event storm
def _storm() -> bytes:
    """Send on the console event channel (to Dom0's xenconsoled) in a tight loop."""
    a = Asm().raw("4889f3")                                  # mov %rsi, %rbx (start_info)
    a.raw("8b83" + struct.pack("<i", CONSOLE_EVTCHN).hex())  # mov evtchn(%rbx), %eax
    a.raw("50")                                              # push %rax: evtchn_send_t
    top = a.here
    a.mov("rdi", EvtchnOp.EVTCHNOP_send).raw("4889e6")       # mov %rsp, %rsi
    a.code += hypercall(H.event_channel_op, a.here)
    return _jmp_back(a, top).bytes()


def test_event_storm_to_dom0_is_bounded(tmp_path: Path) -> None:
    budget = 250_000
    text, host = _run(tmp_path, "storm", _storm(), budget=budget)
    assert "still running: storm\n" in text
    _hello_completed(text, host)
    storm = _domain(host, "storm")
    sends = [r for r in host.trace.select(kind=Kind.HYPERCALL, dom=storm.domid,
                                          name="event_channel_op")]
    assert len(sends) > 1000 and {r.ret for r in sends} == {0}
    assert not host._dom0_pending or len(host._dom0_pending) <= len(host.dom0_handlers)
    host.check_invariants()


# ------------------------------------------------------------------ console flood
def _flood(line: bool) -> tuple[bytes, bytes]:
    a = Asm()
    top = a.here
    a.call(H.console_io, ConsoleIO.CONSOLEIO_write, 4000, DATA_VA)
    data = b"x" * 3999 + (b"\n" if line else b"x")
    return _jmp_back(a, top).bytes(), data


def test_console_flood_keeps_the_xen_log_bounded(tmp_path: Path) -> None:
    code, data = _flood(line=True)
    text, host = _run(tmp_path, "flood", code, data, budget=20_000)
    assert "still running: flood" in text
    assert sum(len(line) + 1 for line in host.log.lines) <= CONRING_SIZE
    assert len(host.log.text()) <= CONRING_SIZE
    host.check_invariants()


def test_console_flood_keeps_the_domain_console_bounded(tmp_path: Path) -> None:
    code, data = _flood(line=True)
    _text, host = _run(tmp_path, "flood", code, data, budget=20_000, with_hello=False)
    assert len(_domain(host, "flood").console) <= 1 << 20


def test_console_flood_without_newline_keeps_the_partial_line_bounded(tmp_path: Path
                                                                       ) -> None:
    code, data = _flood(line=False)
    _text, host = _run(tmp_path, "flood", code, data, budget=3_000, with_hello=False)
    d = _domain(host, "flood")
    assert len(host.log._partial.get(d.domid, "")) <= CONRING_SIZE


# ------------------------------------------------------------------ block forever
def test_block_with_nothing_bound_returns_idle(tmp_path: Path) -> None:
    code = Asm().call(H.sched_op, SchedOp.SCHEDOP_block, 0).spin().bytes()
    text, host = _run(tmp_path, "sleeper", code, budget=50_000_000)
    assert "xenlab: nothing left to run; blocked with no timer or event pending: sleeper\n" \
        in text
    assert "instruction budget" not in text
    _hello_completed(text, host)
    sleeper = _domain(host, "sleeper")
    assert sleeper.vcpus[0].blocked and not sleeper.is_shut_down
    assert host.instructions < 50_000_000
    host.check_invariants()


# ------------------------------------------------------------------ yield forever
def test_yielding_forever_does_not_starve_pv_hello(tmp_path: Path) -> None:
    a = Asm()
    top = a.here
    a.call(H.sched_op, SchedOp.SCHEDOP_yield, 0)
    text, host = _run(tmp_path, "yielder", _jmp_back(a, top).bytes(), budget=1_500_000)
    assert "still running: yielder\n" in text
    _hello_completed(text, host)
    yields = host.trace.select(kind=Kind.SCHED, dom=_domain(host, "yielder").domid,
                               name="yield")
    assert len(yields) > 100
    host.check_invariants()
