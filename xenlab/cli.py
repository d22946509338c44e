"""The ``xenlab`` command: boot an emulated Xen host and run guests on it.

``xenlab run CFG [CFG ...]`` creates each domain, runs the host until every
guest is done (shut down, crashed, or asleep with nothing that could wake it)
or the instruction budget ends, then prints ``xl dmesg``, each domain's
console and the final ``xl list``. ``xenlab shell`` is an interactive prompt
for ``xl`` commands on one live host. Bad input exits 2 with one line
``xenlab: error: ...`` and creates nothing.

Real Xen: tools/xl/xl.c (the ``xl`` program a Dom0 administrator runs)
"""

from __future__ import annotations

import argparse
import cmd
import contextlib
import io
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from typing import IO

from xenlab import __version__
from xenlab.compare import domain_costs, format_costs
from xenlab.errors import UsageError, XenlabError
from xenlab.tools.libs.guest.xg_dom_core import file_kind
from xenlab.tools.libs.light.libxl import Libxl, rtc_base_wallclock
from xenlab.tools.xenstore.xenstore_client import XENSTORE_COMMANDS, xenstore_main
from xenlab.tools.xl.xl_cmdimpl import format_list
from xenlab.tools.xl.xl_cmdtable import CMD_TABLE, xl_main
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen.setup import DEFAULT_DOM0_MIB, DEFAULT_HOST_MIB, RunStatus, XenHost

__all__ = ["main", "run_configs"]

DEFAULT_BUDGET = 2_000_000_000
SHELL_STEP = 500_000_000


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other bad input
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _ArgParser(prog="xenlab", description="An emulated Xen host for teaching.")
    p.add_argument("--version", action="version", version=f"xenlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgParser)
    run = sub.add_parser("run", help="boot a host, run guests from xl.cfg files, report")
    run.add_argument("configs", nargs="+", metavar="CFG")
    run.add_argument("--trace", metavar="FILE.jsonl", help="write every trace record")
    run.add_argument("--max-instructions", type=int, default=DEFAULT_BUDGET, metavar="N",
                     help=f"virtual instruction budget (default {DEFAULT_BUDGET:,})")
    run.add_argument("--max-time", type=float, default=60.0, metavar="SECONDS",
                     help="virtual time budget (default 60 s): idle guests burn time, "
                          "not instructions")
    run.add_argument("--pcap", metavar="FILE.pcap",
                     help="write every frame crossing Dom0's bridge xenbr0 (tshark -r FILE)")
    run.add_argument("--screen", action="store_true",
                     help="also print HVM guests' text screens (none for PV guests)")
    run.add_argument("--host-memory", type=int, default=DEFAULT_HOST_MIB, metavar="MIB")
    run.add_argument("--cpus", type=int, default=2, metavar="N")
    cmp_ = sub.add_parser("compare", help="run guests together and compare what each cost "
                                          "Xen and Dom0 (PV versus HVM)")
    cmp_.add_argument("configs", nargs="+", metavar="CFG")
    cmp_.add_argument("--max-instructions", type=int, default=DEFAULT_BUDGET, metavar="N")
    cmp_.add_argument("--max-time", type=float, default=60.0, metavar="SECONDS")
    shell = sub.add_parser("shell", help="interactive xl prompt on one live host")
    shell.add_argument("--host-memory", type=int, default=DEFAULT_HOST_MIB, metavar="MIB")
    shell.add_argument("--cpus", type=int, default=2, metavar="N")
    return p


def _make_host(memory: int, cpus: int, trace: bool = True) -> XenHost:
    if not 64 <= memory <= 65536:
        raise UsageError(f"--host-memory must be between 64 and 65536 MiB, not {memory}")
    if not 1 <= cpus <= 64:
        raise UsageError(f"--cpus must be between 1 and 64, not {cpus}")
    dom0_mem = max(16, min(DEFAULT_DOM0_MIB, memory // 4))
    return XenHost(memory_mib=memory, nr_cpus=cpus, dom0_mem_mib=dom0_mem, trace=trace,
                   wallclock=rtc_base_wallclock(None, "xenlab"))


def run_configs(paths: Sequence[str], out: IO[str], *, trace_path: str | None = None,
                max_instructions: int = DEFAULT_BUDGET, host_memory: int = DEFAULT_HOST_MIB,
                cpus: int = 2, pcap_path: str | None = None, screen: bool = False,
                max_time: float = 60.0) -> XenHost:
    """What ``xenlab run`` does; raises XenlabError for bad input before creating anything."""
    if max_instructions <= 0:
        raise UsageError("--max-instructions must be positive")
    if not max_time > 0:
        raise UsageError("--max-time must be positive")
    for path, what in ((trace_path, "trace"), (pcap_path, "pcap")):
        if path is not None:
            _check_output(path, what)
    if trace_path is not None and pcap_path is not None and \
            os.path.realpath(trace_path) == os.path.realpath(pcap_path):
        raise UsageError(f"{trace_path}: --trace and --pcap name the same file")
    configs = [parse_config_file(p) for p in paths]
    names = [c.name for c in configs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two configs define the domain name '{name}'")
    host = _make_host(host_memory, cpus)
    xl = Libxl(host)
    prepared = [xl.prepare(c) for c in configs]
    xl.check_host_memory(prepared)
    bridge = xl.services.bridge("xenbr0")
    # both output files are opened before any guest exists: one that cannot be written
    # is one error line, and no guest has run
    if pcap_path is not None:
        try:
            bridge.capture(pcap_path)
        except OSError as err:
            raise UsageError(f"{pcap_path}: cannot write pcap: {err.strerror}") from None
    trace_file = None
    created = []
    try:
        trace_file = _TraceFile.create(trace_path) if trace_path is not None else None
        for prep in prepared:
            d = xl.domain_create_new(prep.cfg, prep)
            created.append((d.domid, d.name, d))
        if trace_file is not None:  # records the ring lets go are written as they go
            host.trace.spill_to(trace_file)
        status = _run_with_progress(host, max_instructions, int(max_time * 1e9))
    except BaseException:
        if trace_file is not None:
            host.trace.spill_to(None)
            trace_file.close()
        bridge.stop_capture()
        raise
    bridge.stop_capture()
    out.write("--- xl dmesg ---\n")
    out.write(host.log.text())
    for domid, name, d in created:
        if domid in xl.device_models:
            out.write(f"--- serial of {name} ---\n")
            text = d.hvm.serial.decode("latin-1").replace("\r\n", "\n")
        else:
            out.write(f"--- console of {name} ---\n")
            text = d.console.decode("latin-1")
        out.write(text if text.endswith("\n") or not text else text + "\n")
        dm = xl.device_models.get(domid)
        if screen and dm is not None:
            out.write(f"--- screen of {name} ---\n")
            out.write(dm.screen_text() if dm.vga is not None
                      else '(no VGA adapter: vga = "none")\n')
    if xl.xl_log:
        out.write("--- xl log ---\n")
        out.write("".join(line + "\n" for line in xl.xl_log))
    for domid, name, _d in created:   # xenlab's shipped images are never written
        for shipped, copy in xl.disk_copies.get(domid, ()):
            out.write(f"xenlab: {name} wrote a fresh copy of {shipped}: {copy}\n")
    out.write("--- xl list ---\n")
    out.write(format_list(xl))
    if status is RunStatus.BUDGET:
        busy = [d.name for d in host.domains.values() if d.domid and not d.is_shut_down]
        what = (f"instruction budget of {max_instructions:,}"
                if host.instructions >= max_instructions else
                f"virtual time budget of {max_time:g} s")
        out.write(f"xenlab: {what} ended; still running: {', '.join(busy) or 'none'}\n")
    else:
        asleep = [d.name for d in host.domains.values()
                  if d.domid and not d.is_shut_down and not d.paused]
        if asleep:
            out.write(f"xenlab: nothing left to run; blocked with no timer or event pending: "
                      f"{', '.join(asleep)}\n")
    if pcap_path is not None:
        out.write(f"xenlab: {bridge.frames} frames crossed xenbr0, written to {pcap_path}\n")
    out.write(f"xenlab: {host.instructions:,} guest instructions, "
              f"{host.elapsed() / 1e6:.3f} ms of virtual time\n")
    if host.trace.dropped:
        kept = len(host.trace)
        where = (f"the --trace file has all {host.trace.dropped + kept:,}" if trace_path
                 else "--trace FILE keeps every record")
        out.write(f"xenlab: trace: {host.trace.dropped:,} oldest records dropped (the last "
                  f"{kept:,} kept in memory; {where})\n")
    if trace_file is not None:
        trace_file.finish(host)
    if bridge.capture_error is not None:
        raise UsageError(f"{pcap_path}: cannot write pcap: {bridge.capture_error.strerror}")
    return host


def _check_output(path: str, what: str) -> None:
    """``--trace`` / ``--pcap``: a new or existing regular file in a directory that exists
    and can be written; checked before the host boots (special files such as /dev/full
    or /dev/null, directories and FIFOs are refused: a run writes a regular file)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        what_is = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise UsageError(f"{path}: directory {parent} {what_is}")
    try:
        st = os.stat(path)
    except FileNotFoundError:  # a new file (or a dangling symlink, whose target it creates)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{path}: cannot write {what}: permission denied "
                             f"(directory {parent})") from None
        return
    except OSError as err:
        raise UsageError(f"{path}: cannot write {what}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path}: cannot write {what}: it is {file_kind(st.st_mode)}, "
                         "not a regular file")
    if not os.access(path, os.W_OK):
        raise UsageError(f"{path}: cannot write {what}: permission denied")


class _TraceFile:
    """The ``--trace`` file, written while the guests run: the trace's ring spills the
    records it lets go into it, and ``finish`` adds the ones still kept, so the file has
    every record. A write that fails mid-run (a full disk) is remembered, not raised in
    the middle of a hypercall, and becomes one error line at the end; the partial file
    is removed."""

    def __init__(self, path: str, fp: IO[str]) -> None:
        self.path = path
        self.fp = fp
        self.error: OSError | None = None

    @classmethod
    def create(cls, path: str) -> _TraceFile:
        try:
            fp = open(path, "w", encoding="utf-8")  # noqa: SIM115 (run_configs closes it)
        except OSError as err:
            raise UsageError(f"{path}: cannot write trace: {err.strerror}") from None
        return cls(path, fp)

    def writelines(self, lines: Iterable[str]) -> None:
        if self.error is None:
            try:
                self.fp.writelines(lines)
            except OSError as err:
                self.error = err

    def close(self) -> None:
        try:
            self.fp.close()
        except OSError as err:
            self.error = self.error or err

    def finish(self, host: XenHost) -> None:
        """Write the records still kept, after the spilled ones; raise UsageError if any
        write failed."""
        host.trace.write_jsonl(self)  # reading the records may spill a last few first
        host.trace.spill_to(None)
        self.close()
        if self.error is not None:
            with contextlib.suppress(OSError):
                if os.path.isfile(self.path):
                    os.unlink(self.path)
            raise UsageError(f"{self.path}: cannot write trace: {self.error.strerror}")


def _run_with_progress(host: XenHost, max_instructions: int, max_time_ns: int) -> RunStatus:
    """Run; on a terminal, show a one-line progress report on stderr as it goes (the
    output on stdout stays the same, so runs remain comparable byte for byte)."""
    if not sys.stderr.isatty():
        return host.run(max_instructions=max_instructions, max_time_ns=max_time_ns)
    chunk = 50_000_000
    start_time = host.elapsed()
    while True:
        left = max_instructions - host.instructions
        time_left = max_time_ns - (host.elapsed() - start_time)
        status = host.run(max_instructions=min(chunk, max(1, left)),
                          max_time_ns=max(1, time_left))
        sys.stderr.write(f"\rxenlab: {host.instructions:,} instructions, "
                         f"{host.elapsed() / 1e6:,.1f} ms virtual ")
        sys.stderr.flush()
        if status is not RunStatus.BUDGET or host.instructions >= max_instructions or \
                host.elapsed() - start_time >= max_time_ns:
            sys.stderr.write("\n")
            return status


class XlShell(cmd.Cmd):
    """``xenlab shell``: xl commands on one live host; guests run between commands."""

    intro = ("xenlab shell: an emulated Xen host. Type xl commands (e.g. 'xl create "
             "images/pv-hello.cfg', 'xl list', 'xl console pv-hello', 'xl dmesg'),\n"
             "xenstore-ls / xenstore-read / xenstore-write, "
             "'run [N]' to let guests run for N more instructions, 'help', 'quit'.")
    prompt = "[root@dom0 ~]# "

    def __init__(self, host: XenHost, stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.host = host
        self.xl = Libxl(host)

    def _run_guests(self, budget: int = SHELL_STEP) -> None:
        status = self.host.run(max_instructions=budget)
        if status is RunStatus.BUDGET:
            self.stdout.write(f"(guests still running after {budget:,} instructions; "
                              "'run' continues)\n")

    def default(self, line: str) -> bool:
        words = line.split()
        if words and words[0] in XENSTORE_COMMANDS:
            buf = io.StringIO()
            try:
                xenstore_main(self.xl.services.store, line, buf,
                              after_write=self.xl.services.xenstored.flush)
            except XenlabError as err:
                buf.write(f"{words[0]}: {err}\n")
            self.stdout.write(buf.getvalue())
            return False
        if words and (words[0] == "xl" or words[0] in CMD_TABLE):
            buf = io.StringIO()
            try:
                xl_main(self.xl, line, buf)
            except XenlabError as err:
                buf.write(f"xl: error: {err}\n")
            self.stdout.write(buf.getvalue())
            spec = CMD_TABLE.get(words[1] if words[0] == "xl" and len(words) > 1 else words[0])
            if spec is not None and spec.modifies:
                self._run_guests()
            return False
        self.stdout.write(f"unknown command '{words[0] if words else line}' (try 'help')\n")
        return False

    def do_type(self, arg: str) -> bool:
        """type NAME TEXT: send TEXT (and a newline) to the domain's console, as if typed
        into `xl console NAME`."""
        name, _, text = arg.partition(" ")
        try:
            d = self.xl.lookup(name)
        except XenlabError as err:
            self.stdout.write(f"type: {err}\n")
            return False
        dm = self.xl.device_models.get(d.domid)
        if dm is not None:  # HVM: the keyboard and the serial port
            dm.type_keys(text + "\n")
            dm.send_serial_input((text + "\n").encode("latin-1"))
            self.stdout.write(f"({len(text) + 1} keys typed on the keyboard and COM1 of "
                              f"{d.name})\n")
        else:
            n = self.xl.services.xenconsoled.send_input(d.domid,
                                                        (text + "\n").encode("latin-1"))
            self.stdout.write(f"({n} bytes into the console ring of {d.name})\n")
        self._run_guests()
        return False

    def do_run(self, arg: str) -> bool:
        """run [N]: let the guests run for N more virtual instructions."""
        try:
            budget = int(arg.replace("_", "")) if arg.strip() else SHELL_STEP
        except ValueError:
            self.stdout.write("usage: run [N]\n")
            return False
        self._run_guests(budget)
        self.stdout.write(format_list(self.xl))
        return False

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell (the emulated host goes away)."""
        return True

    do_exit = do_quit
    do_EOF = do_quit

    def do_help(self, arg: str) -> bool:
        xl_main(self.xl, ["help"], self.stdout)
        self.stdout.write("\nxenstore commands: " + ", ".join(XENSTORE_COMMANDS) + "\n")
        self.stdout.write("shell commands: run [N], type NAME TEXT, help, quit\n")
        return False

    def emptyline(self) -> bool:
        return False


def _shell(host: XenHost) -> int:
    history = os.path.expanduser("~/.xenlab_history")
    try:
        import readline

        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    except ImportError:  # pragma: no cover - no readline on this platform
        readline = None  # type: ignore[assignment]
    try:
        XlShell(host).cmdloop()
    except KeyboardInterrupt:
        print()
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            run_configs(args.configs, sys.stdout, trace_path=args.trace,
                        max_instructions=args.max_instructions, host_memory=args.host_memory,
                        cpus=args.cpus, pcap_path=args.pcap, screen=args.screen,
                        max_time=args.max_time)
            return 0
        if args.command == "compare":
            devnull = io.StringIO()
            host = run_configs(args.configs, devnull, max_instructions=args.max_instructions,
                               max_time=args.max_time)
            format_costs(domain_costs(host), sys.stdout)
            return 0
        return _shell(_make_host(args.host_memory, args.cpus))
    except XenlabError as err:
        print(f"xenlab: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
