"""xl commands on a live host: formats, life-cycle actions, and refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from xenlab.errors import DomainError, UsageError
from xenlab.tools.libs.light.libxl import Libxl
from xenlab.tools.xl.xl_cmdtable import CMD_TABLE, xl_main
from xenlab.tools.xl.xl_parse import parse_config_file, parse_config_text

IMAGES = Path(__file__).resolve().parents[1] / "images"


def xl_out(xl: Libxl, line: str) -> str:
    out = io.StringIO()
    assert xl_main(xl, line, out) == 0
    return out.getvalue()


def _cfg(name: str, **extra: str) -> str:
    body = {"name": f'"{name}"', "kernel": f'"{IMAGES / "pv-hello" / "pv-hello.elf"}"',
            "memory": "16", **extra}
    return "\n".join(f"{k} = {v}" for k, v in body.items()) + "\n"


def test_create_list_destroy_frees_everything(xl: Libxl) -> None:
    host = xl.host
    free_before = host.mem.free_pages
    out = xl_out(xl, f"create -p {IMAGES / 'pv-hello.cfg'}")
    assert out.splitlines() == [f"Parsing config from {IMAGES / 'pv-hello.cfg'}",
                                "Created domain 1 (pv-hello)"]
    listing = xl_out(xl, "list").splitlines()
    assert listing[2].split() == ["pv-hello", "1", "32", "1", "--p---", "0.0"]
    assert len(listing[2]) == len(listing[0])  # columns line up like xl's printf
    host.check_invariants()
    xl_out(xl, "destroy pv-hello")
    assert list(host.domains) == [0]
    assert host.mem.free_pages == free_before
    host.check_invariants()


def test_list_long_is_json(xl: Libxl) -> None:
    xl_out(xl, f"create -p {IMAGES / 'pv-hello.cfg'}")
    data = json.loads(xl_out(xl, "list -l pv-hello"))
    assert data[0]["domid"] == 1
    assert data[0]["config"]["c_info"] == {"type": "pv", "name": "pv-hello"}
    assert data[0]["config"]["b_info"]["max_memkb"] == 32 * 1024


def test_pause_unpause_and_run(xl: Libxl) -> None:
    xl_out(xl, f"create -p {IMAGES / 'pv-hello.cfg'}")
    d = xl.lookup("pv-hello")
    xl.host.run(max_instructions=10_000_000)
    assert d.console == b""  # paused: not one instruction ran
    xl_out(xl, "unpause 1")
    xl.host.run(max_instructions=10_000_000)
    assert b"Shutting down" in bytes(d.console)
    with pytest.raises(DomainError):
        xl_out(xl, "unpause pv-hello")


def test_vcpu_list_info_dmesg_top(xl: Libxl) -> None:
    xl_out(xl, f"create {IMAGES / 'pv-spin.cfg'}")
    xl.host.run(max_instructions=5_000_000)
    vl = xl_out(xl, "vcpu-list").splitlines()
    assert vl[0].split()[:6] == ["Name", "ID", "VCPU", "CPU", "State", "Time(s)"]
    assert any(line.startswith("pv-spin") for line in vl)
    info = dict(line.split(": ", 1) for line in xl_out(xl, "info").splitlines())
    keys = {k.strip(): v for k, v in info.items()}
    assert keys["xen_major"] == "4" and keys["xen_minor"] == "17"
    assert keys["xen_scheduler"] == "credit" and keys["nr_cpus"] == "2"
    assert int(keys["free_memory"]) < int(keys["total_memory"])
    assert "(XEN) Xen version 4.17" in xl_out(xl, "dmesg")
    top = xl_out(xl, "top").splitlines()
    assert top[1].startswith("2 domains:")
    assert "NAME  STATE   CPU(sec) CPU(%)" in top[3]


def test_shutdown_needs_pv_control_or_force(xl: Libxl) -> None:
    xl_out(xl, f"create -p {IMAGES / 'pv-spin.cfg'}")
    with pytest.raises(DomainError, match="PV control interface not available"):
        xl_out(xl, "shutdown pv-spin")
    xl_out(xl, "shutdown -F pv-spin")
    d = xl.lookup("pv-spin")
    assert d.state_flags() == "---s--"  # on_poweroff = "preserve"


def test_reboot_restarts_with_a_new_domid(xl: Libxl, tmp_path: Path) -> None:
    path = tmp_path / "r.cfg"
    path.write_text(_cfg("r", on_reboot='"restart"'))
    xl_out(xl, f"create -p {path}")
    xl_out(xl, "reboot -F r")
    assert [d.name for d in xl.host.domains.values()] == ["Domain-0", "r"]
    assert xl.lookup("r").domid == 2
    assert "Domain 1 restarted as domain 2" in xl.xl_log


def test_on_poweroff_destroy_removes_the_domain(xl: Libxl, tmp_path: Path) -> None:
    path = tmp_path / "p.cfg"
    path.write_text(_cfg("p"))  # default on_poweroff = "destroy"
    xl_out(xl, f"create {path}")
    xl.host.run(max_instructions=10_000_000)
    assert list(xl.host.domains) == [0]
    assert "Action for shutdown reason code 0 is destroy" in xl.xl_log
    xl.host.check_invariants()


def test_on_crash_restart_loops_until_budget(xl: Libxl, tmp_path: Path) -> None:
    path = tmp_path / "c.cfg"
    path.write_text(f'name = "c"\nkernel = "{IMAGES / "pv-crash" / "pv-crash.elf"}"\n'
                    'memory = 8\non_crash = "restart"\n')
    xl_out(xl, f"create {path}")
    xl.host.run(max_instructions=100_000)
    assert xl.lookup("c").domid > 3  # crashed and came back several times
    xl.host.check_invariants()


def test_refusals(xl: Libxl) -> None:
    with pytest.raises(DomainError, match="invalid domain identifier"):
        xl_out(xl, "destroy nosuch")
    with pytest.raises(DomainError):
        xl_out(xl, "destroy 0")
    with pytest.raises(UsageError, match="unknown command"):
        xl_out(xl, "frobnicate")
    with pytest.raises(UsageError):
        xl_out(xl, "list -z")
    xl_out(xl, f"create -p {IMAGES / 'pv-hello.cfg'}")
    from xenlab.errors import ConfigError

    with pytest.raises(ConfigError, match="already exists"):
        xl_out(xl, f"create {IMAGES / 'pv-hello.cfg'}")


def test_help_lists_every_command(xl: Libxl) -> None:
    text = xl_out(xl, "help")
    for name in CMD_TABLE:
        assert f" {name}" in text


def test_failed_build_leaves_nothing(xl: Libxl) -> None:
    cfg = parse_config_text(_cfg("tiny", memory="2"), "tiny.cfg")
    before = xl.host.mem.free_pages
    from xenlab.errors import ImageError

    with pytest.raises(ImageError, match="memory = 2 MiB"):
        xl.domain_create_new(cfg)
    assert list(xl.host.domains) == [0] and xl.host.mem.free_pages == before


def test_every_image_config_parses() -> None:
    for cfg in sorted(IMAGES.glob("*.cfg")):
        parsed = parse_config_file(cfg)
        if parsed.type == "hvm":  # firmware comes from bios =, the disk boots
            assert all(Path(parsed.resolve(d.target)).is_file() for d in parsed.disk if d.target)
        else:
            assert Path(parsed.resolve(parsed.kernel or "")).is_file()
