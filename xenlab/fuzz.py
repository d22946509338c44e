"""Guest-level fuzzing: hostile guests driven by a seed, next to a victim (``make fuzz``).

A round boots a small host, runs a **victim** (``images/pv-hello``) to its end
(``on_poweroff = "preserve"``: the domain stays, shut down, with its memory,
its grant table, its event channels and Dom0's mappings of its console and
xenstore pages), hashes every frame the victim owns, and then starts a
**fuzzer** guest next to it:

* ``pv``: ``images/pv-fuzz/pv-fuzz.elf`` (C on mini-OS), with
  ``extra = "seed=S ops=N victim=D"``: random hypercalls 0..63 with edge-case
  arguments, grant table, event channel, memory_op, update_va_mapping,
  vcpu_op, sched_op and callback operations, random bytes in its own console
  and xenstore rings;
* ``hvm``: ``images/hvm-fuzz.img`` (a boot sector on the teaching BIOS), the
  seed patched into a copy of the disk at offset 0x1F0: random ``in``/``out``
  on all ports, ``rep ins``/``rep outs`` with wild counts and addresses, and
  random ``vmcall`` hypercalls.

The round fails, naming the seed, if a Python exception escapes
``XenHost.run``, if ``host.check_invariants()`` fails (checked between run
slices every ``check_every`` hypercalls of the fuzzer, and at the end), or
if any frame of the victim changed, or its frames or its state did. The victim
is shut down rather than running so that every byte of it must stay as it
is: nothing but an attacker (or a bug in Xen or Dom0) may write to a domain
that no longer runs, so the hash covers all of its memory, not only pages it
does not write itself. The fuzzer itself may crash (Xen crashes a guest that
faults): that is a guest's right, not a failure.

``python -m xenlab.fuzz --time 60 [--seed S]`` runs PV and HVM rounds with
fresh seeds (each printed before it runs) for the first part of the time, and
then the hypothesis suites (``tests/test_fuzz_*.py``) with fresh
``--hypothesis-seed`` values for the rest, and prints how to rerun any seed.
The tests (``tests/test_fuzz_guest.py``) run fixed seeds, derandomized.

Real Xen: tools/fuzz/ (Xen's fuzzing harnesses: libelf, the x86 instruction
emulator), and XTF (xenbits.xen.org/xtf), whose guests attack Xen from guest code
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xenlab.errors import UsageError, XenlabError
from xenlab.tools.libs.light.libxl import Libxl
from xenlab.tools.xl.xl_parse import parse_config_file, parse_config_text
from xenlab.xen.page_alloc import PAGE_SHIFT, PAGE_SIZE
from xenlab.xen.setup import XenHost
from xenlab.xen.trace import Kind, TraceRecord

if TYPE_CHECKING:
    from xenlab.xen.domain import Domain

__all__ = ["HVM_OPS_OFFSET", "HVM_SEED_OFFSET", "KINDS", "FuzzResult", "fuzz_round", "main"]

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
PV_FUZZ_ELF = IMAGES / "pv-fuzz" / "pv-fuzz.elf"
HVM_FUZZ_IMG = IMAGES / "hvm-fuzz.img"
VICTIM_CFG = IMAGES / "pv-hello.cfg"
#: Where hvm-fuzz.S keeps its seed and its number of operations (dwords in the boot sector).
HVM_SEED_OFFSET = 0x1F0
HVM_OPS_OFFSET = 0x1F4
KINDS = ("pv", "hvm")
SEED_MAX = 1 << 32

#: Defaults per round: enough operations to reach every structured path many times, and
#: an instruction budget that ends a fuzzer that loops (its own code overwritten, say).
DEFAULT_OPS = {"pv": 1500, "hvm": 1000}
DEFAULT_BUDGET = 60_000_000
#: Virtual time a round may last, like ``xenlab run --max-time``: a fuzzer that sleeps on a
#: timer far in the future (set_timer_op(-1), then SCHEDOP_block) ends the round here.
DEFAULT_MAX_TIME_NS = 10_000_000_000


@dataclass
class FuzzResult:
    """What one round did and what went wrong (nothing, if ``failures`` is empty)."""

    kind: str
    seed: int
    ops: int
    failures: list[str] = field(default_factory=list)
    fuzzer_domid: int = 0
    victim_domid: int = 0
    outcome: str = ""                     # "shut down (...)", "crashed: ...", "still running"
    status: str = ""                      # how XenHost.run ended (RunStatus)
    hypercalls: Counter[int] = field(default_factory=Counter)   # number -> calls
    returns_ok: int = 0                   # hypercalls that returned >= 0
    returns_errno: Counter[int] = field(default_factory=Counter)  # -errno -> calls
    port_io: int = 0                      # VM exits for port I/O (HVM)
    ioreqs: int = 0                       # of them, requests to the device model
    invariant_checks: int = 0
    log: list[str] = field(default_factory=list)   # the fuzzer's lines in Xen's console

    @property
    def ok(self) -> bool:
        return not self.failures

    def rerun(self) -> str:
        return f"python -m xenlab.fuzz --kind {self.kind} --seed {self.seed} --ops {self.ops}"

    def summary(self) -> str:
        errs = sum(self.returns_errno.values())
        line = (f"{self.kind} seed {self.seed}: {sum(self.hypercalls.values())} hypercalls "
                f"({len(self.hypercalls)} numbers, {self.returns_ok} ok, {errs} errno), ")
        if self.kind == "hvm":
            line += f"{self.port_io} port I/O exits ({self.ioreqs} ioreqs), "
        line += f"{self.invariant_checks} invariant checks; fuzzer {self.outcome}"
        return line

    def report(self) -> str:
        """The failures, each with the seed and how to run it again."""
        head = f"{self.kind} fuzz round with seed {self.seed} failed (rerun: {self.rerun()})"
        return "\n".join([head, *(f"  {f}" for f in self.failures)])


# ------------------------------------------------------------------ the victim
def frames_of(host: XenHost, d: Domain) -> list[int]:
    """Every machine frame the domain owns, in extent order."""
    return [mfn for ext in d.extents for mfn in range(ext.mfn, ext.end)]


def hash_frames(host: XenHost, d: Domain) -> dict[int, str]:
    """frame -> sha256 of its 4 KiB, over all the domain's frames (d.extents)."""
    return {mfn: hashlib.sha256(host.mem.read(mfn << PAGE_SHIFT, PAGE_SIZE)).hexdigest()
            for mfn in frames_of(host, d)}


def victim_state(d: Domain) -> tuple[object, ...]:
    return (d.is_shut_down, d.shutdown_code, d.is_crashed, d.is_dying, d.tot_pages,
            bytes(d.console))


def _compare_victim(host: XenHost, d: Domain, before: dict[int, str],
                    state: tuple[object, ...]) -> list[str]:
    if host.domains.get(d.domid) is not d:
        return [f"victim d{d.domid} ({d.name}) no longer exists"]
    out = []
    after = hash_frames(host, d)
    if after.keys() != before.keys():
        gone, new = sorted(before.keys() - after.keys()), sorted(after.keys() - before.keys())
        out.append(f"victim d{d.domid}'s frames changed: lost {[hex(m) for m in gone][:8]}, "
                   f"gained {[hex(m) for m in new][:8]}")
    changed = sorted(m for m in before.keys() & after.keys() if before[m] != after[m])
    if changed:
        where = [f"mfn {m:#x} (pfn {d.mfn_to_pfn(m)})" for m in changed[:8]]
        out.append(f"victim d{d.domid}: {len(changed)} frame(s) changed: {', '.join(where)}")
    now = victim_state(d)
    if now != state:
        names = ("is_shut_down", "shutdown_code", "is_crashed", "is_dying", "tot_pages",
                 "console")
        diff = [f"{n} {a!r:.60} -> {b!r:.60}"
                for n, a, b in zip(names, state, now, strict=True) if a != b]
        out.append(f"victim d{d.domid}'s state changed: {'; '.join(diff)}")
    return out


# ------------------------------------------------------------------ a round
def _hvm_disk(tmp: Path, seed: int, ops: int) -> Path:
    disk = tmp / "hvm-fuzz.img"
    shutil.copyfile(HVM_FUZZ_IMG, disk)
    with open(disk, "r+b") as f:
        f.seek(HVM_SEED_OFFSET)
        f.write(struct.pack("<II", seed & 0xFFFFFFFF, ops))
    return disk


def _fuzzer_config(kind: str, seed: int, ops: int, victim: int, tmp: Path) -> str:
    common = ('on_poweroff = "preserve"\non_reboot = "preserve"\non_crash = "preserve"\n'
              "vcpus = 1\n")
    if kind == "pv":
        return (f'name = "pv-fuzz"\ntype = "pv"\nkernel = "{PV_FUZZ_ELF}"\nmemory = 16\n'
                f'extra = "seed={seed} ops={ops} victim={victim} log=250"\n' + common)
    disk = _hvm_disk(tmp, seed, ops)
    return (f'name = "hvm-fuzz"\ntype = "hvm"\nmemory = 16\nbios = "xenlab"\n'
            f"disk = [ 'format=raw, vdev=hda, access=ro, target={disk}' ]\n" + common)


def _outcome(d: Domain, status: str) -> str:
    """How the fuzzer's domain ended, as the round's report says it. Xen's domain_crash
    gives a reason; a guest's own SCHEDOP_shutdown with SHUTDOWN_crash gives none."""
    if d.is_crashed:
        return f"crashed: {d.crash_reason or 'SHUTDOWN_crash, its own SCHEDOP_shutdown'}"
    if d.is_shut_down:
        return f"shut down ({d.shutdown_reason_name})"
    return f"not finished (run ended: {status})"


def fuzz_round(kind: str, seed: int, *, ops: int | None = None,
               budget: int = DEFAULT_BUDGET, check_every: int = 50,
               max_time_ns: int | None = DEFAULT_MAX_TIME_NS) -> FuzzResult:
    """One round: victim, hash, fuzzer with ``seed``, checks. Never raises for a finding:
    every exception of the host, broken invariant or change to the victim is a failure
    in the result."""
    if kind not in KINDS:
        raise UsageError(f"unknown fuzzer kind {kind!r} (pv or hvm)")
    if not 0 <= seed < SEED_MAX:
        raise UsageError(f"seed must be between 0 and {SEED_MAX - 1}, not {seed}")
    ops = DEFAULT_OPS[kind] if ops is None else ops
    if not 1 <= ops <= 10_000_000:
        raise UsageError(f"--ops must be between 1 and 10000000, not {ops}")
    res = FuzzResult(kind, seed, ops)
    host = XenHost(memory_mib=256, nr_cpus=2, dom0_mem_mib=64)
    xl = Libxl(host)
    victim = xl.domain_create_new(parse_config_file(VICTIM_CFG))
    res.victim_domid = victim.domid
    host.run(max_instructions=20_000_000)
    if not victim.is_shut_down or victim.is_crashed:
        raise XenlabError(f"the victim {VICTIM_CFG.name} did not shut down cleanly")
    host.check_invariants()
    before = hash_frames(host, victim)
    state = victim_state(victim)

    with tempfile.TemporaryDirectory(prefix="xenlab-fuzz-") as tmpdir:
        text = _fuzzer_config(kind, seed, ops, victim.domid, Path(tmpdir))
        cfg = parse_config_text(text, f"<{kind}-fuzz seed {seed}>")
        fuzzer = xl.domain_create_new(cfg)
        res.fuzzer_domid = fid = fuzzer.domid
        calls_at_check = [0]

        def listen(rec: TraceRecord) -> None:
            if rec.dom != fid:
                return
            if rec.kind is Kind.HYPERCALL:
                nr = (rec.args or {}).get("nr")
                res.hypercalls[nr if isinstance(nr, int) else -1] += 1
                if rec.ret is not None and rec.ret < 0:
                    res.returns_errno[-rec.ret] += 1
                else:
                    res.returns_ok += 1
            elif rec.kind is Kind.VMEXIT and rec.name == "io":
                res.port_io += 1
            elif rec.kind is Kind.IOREQ and rec.name == "ioreq":
                res.ioreqs += 1

        def between_slices() -> bool:
            """Called by the run loop between slices: check the invariants every
            ``check_every`` hypercalls of the fuzzer; stop at the first failure."""
            calls = fuzzer.hypercall_count
            if calls - calls_at_check[0] >= check_every:
                calls_at_check[0] = calls
                _check(host, res, "during the run")
            return bool(res.failures)

        host.trace.listeners.append(listen)
        try:
            res.status = host.run(max_instructions=budget, until=between_slices,
                                  max_time_ns=max_time_ns).value
        except Exception:  # any host exception is the finding
            res.failures.append("host exception escaped XenHost.run:\n    " +
                                traceback.format_exc().rstrip().replace("\n", "\n    "))
        finally:
            host.trace.listeners.remove(listen)
        if not res.failures:
            _check(host, res, "after the run")
            res.failures.extend(_compare_victim(host, victim, before, state))
    res.outcome = _outcome(fuzzer, res.status)
    res.log = [line for line in host.log.text().splitlines()
               if line.startswith(f"(d{fid})")]
    return res


def _check(host: XenHost, res: FuzzResult, when: str) -> None:
    res.invariant_checks += 1
    try:
        host.check_invariants()
    except Exception as err:  # AssertionError, or a crash of the check
        tb = traceback.format_exc().rstrip().splitlines()
        res.failures.append(f"invariant broken {when}: {type(err).__name__}: {err}\n    "
                            + "\n    ".join(tb[-4:]))


# ------------------------------------------------------------------ make fuzz
def _suites() -> list[str]:
    tests = ROOT / "tests"
    return sorted(str(p.relative_to(ROOT)) for p in tests.glob("test_fuzz_*.py")
                  if p.name != "test_fuzz_guest.py")


def _run_suites(seed: int, seconds: float, out) -> int | None:
    """The hypothesis suites once with a fresh seed; None if time ran out first."""
    suites = _suites()
    if not suites:
        out.write("xenlab fuzz: no tests/test_fuzz_*.py here (not a checkout); skipped\n")
        return 0
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           f"--hypothesis-seed={seed}", *suites]
    env = dict(os.environ, XENLAB_FUZZ_FRESH="1")
    out.write(f"xenlab fuzz: hypothesis suites, --hypothesis-seed={seed} "
              f"(rerun: XENLAB_FUZZ_FRESH=1 python -m {' '.join(cmd[2:])})\n")
    out.flush()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=max(1.0, seconds),
                              capture_output=True, text=True, check=False)
    except subprocess.TimeoutExpired:
        out.write("xenlab fuzz:   time is up before the suites finished (not a failure)\n")
        return None
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    out.write(f"xenlab fuzz:   {tail[0]}\n")
    if proc.returncode != 0:
        out.write(proc.stdout[-4000:] + proc.stderr[-2000:])
    return proc.returncode


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m xenlab.fuzz",
                                description="guest-level fuzzing (PV and HVM fuzzer guests "
                                            "next to a victim), then the hypothesis suites, "
                                            "with fresh seeds")
    p.add_argument("--time", type=float, default=300.0, metavar="SECONDS",
                   help="wall-clock time for everything (default 300)")
    p.add_argument("--seed", type=int, default=None,
                   help="run this one seed only (with --kind), e.g. to reproduce a failure")
    p.add_argument("--kind", choices=KINDS, default=None, help="only this fuzzer")
    p.add_argument("--ops", type=int, default=None, metavar="N",
                   help="operations per round (default: pv 1500, hvm 1000)")
    p.add_argument("--guest-share", type=float, default=0.5, metavar="F",
                   help="share of the time for the guest rounds (the rest: the suites)")
    p.add_argument("--no-suites", action="store_true", help="guest rounds only")
    return p


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        if not args.time > 0:
            raise UsageError("--time must be positive")
        if not 0 <= args.guest_share <= 1:
            raise UsageError("--guest-share must be between 0 and 1")
        return _main(args, out)
    except XenlabError as err:
        out.write(f"xenlab: error: {err}\n")
        return 2


def _main(args: argparse.Namespace, out) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    if args.seed is not None:  # reproduce: that seed, each kind asked for, once
        failed = 0
        for kind in kinds:
            res = fuzz_round(kind, args.seed, ops=args.ops)
            out.write(res.summary() + "\n")
            if not res.ok:
                out.write(res.report() + "\n")
                failed += 1
        return 1 if failed else 0
    rng = random.SystemRandom()
    start = time.monotonic()
    guest_end = start + args.time * (1.0 if args.no_suites else args.guest_share)
    used: list[str] = []
    failures: list[FuzzResult] = []
    rounds = 0
    while time.monotonic() < guest_end or rounds == 0:
        kind = kinds[rounds % len(kinds)]
        seed = rng.randrange(SEED_MAX)
        out.write(f"xenlab fuzz: {kind} seed {seed} ...\n")
        out.flush()
        res = fuzz_round(kind, seed, ops=args.ops)
        gc.collect()  # a host (its RAM is an mmap) sits in reference cycles: free it now
        out.write(f"xenlab fuzz:   {res.summary()}\n")
        used.append(f"{kind}:{seed}")
        if not res.ok:
            out.write(res.report() + "\n")
            failures.append(res)
        rounds += 1
    suite_seeds: list[int] = []
    suite_failed = False
    if not args.no_suites:
        while True:
            left = start + args.time - time.monotonic()
            if left <= 1 or suite_failed:
                break
            seed = rng.randrange(SEED_MAX)
            suite_seeds.append(seed)
            rc = _run_suites(seed, left, out)
            if rc is None:
                break
            suite_failed = rc != 0
    out.write(f"xenlab fuzz: {rounds} guest rounds, seeds {' '.join(used)}\n")
    if suite_seeds:
        out.write(f"xenlab fuzz: hypothesis seeds {' '.join(map(str, suite_seeds))}\n")
    out.write("xenlab fuzz: rerun a guest round with python -m xenlab.fuzz --kind KIND "
              "--seed SEED; a suite with XENLAB_FUZZ_FRESH=1 python -m pytest "
              "--hypothesis-seed=SEED tests/test_fuzz_*.py\n")
    if failures or suite_failed:
        out.write(f"xenlab fuzz: FAILED: {len(failures)} guest round(s)"
                  f"{' and the hypothesis suites' if suite_failed else ''}\n")
        return 1
    out.write("xenlab fuzz: no failures\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
