"""Every bad input ``xenlab run`` can be handed: exit 2, one ``xenlab: error:`` line on
stderr, nothing on stdout, and no guest domain left on the host.

Corpora:

* ``tests/configs/bad/*.cfg``: configs the parser refuses (tests/test_xl_parse.py
  checks each one's ``# expect:`` message at parse level);
* ``tests/configs/bad/create/*.cfg``: configs that parse but that the toolstack
  refuses before creating a domain (absurd memory, a missing / directory / too
  small disk image, a kernel that is a directory); paths are relative to that
  directory, and the first line ``# expect: ...`` is part of the error;
* ``tests/images/bad/*``: broken kernel images, each run through a temporary
  config whose ``kernel`` points at it.

Disk images: only whole 512-byte sectors are exported. An image of 3 bytes is
refused ("smaller than one sector"); an image of 1000 bytes is a 1-sector disk
whose trailing 488 bytes are never touched (checked below).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xenlab import cli
from xenlab.cli import main
from xenlab.dom0.blkback import BlkbackDevice
from xenlab.tools.libs.light.libxl import Libxl, dom0_services
from xenlab.tools.xl.xl_parse import parse_config_file
from xenlab.xen.setup import XenHost

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BAD_CONFIGS = sorted((HERE / "configs" / "bad").glob("*.cfg"))
CREATE_CONFIGS = sorted((HERE / "configs" / "bad" / "create").glob("*.cfg"))
BAD_IMAGES = sorted(p for p in (HERE / "images" / "bad").iterdir() if p.is_file())
HELLO = ROOT / "images" / "pv-hello" / "pv-hello.elf"


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> list[XenHost]:
    """Every host ``xenlab run`` boots during the test."""
    created: list[XenHost] = []
    real = cli._make_host

    def spy(*a: object, **k: object) -> XenHost:
        h = real(*a, **k)  # type: ignore[arg-type]
        created.append(h)
        return h

    monkeypatch.setattr(cli, "_make_host", spy)
    return created


def _assert_refused(argv: list[str], capsys: pytest.CaptureFixture[str],
                    hosts: list[XenHost]) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("xenlab: error: ")
    assert "Traceback" not in captured.err
    for h in hosts:  # a host may have booted, but no guest domain is left behind
        assert list(h.domains) == [0]
    return lines[0]


def _expect(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first[len("# expect: "):]


def test_corpora_are_there() -> None:
    names = {p.name for p in BAD_CONFIGS}
    assert {"memory-negative.cfg", "maxmem-far-below-memory.cfg", "bad-mac-seven-bytes.cfg",
            "duplicate-vdev-keyed.cfg", "maxmem-below-memory.cfg", "bad-mac.cfg",
            "duplicate-vdev.cfg"} <= names
    assert {p.name for p in CREATE_CONFIGS} >= {
        "memory-absurd.cfg", "disk-missing.cfg", "disk-is-directory.cfg",
        "disk-three-bytes.cfg", "kernel-is-directory.cfg", "kernel-missing.cfg"}
    assert len(BAD_IMAGES) >= 20


@pytest.mark.parametrize("path", BAD_CONFIGS, ids=[p.name for p in BAD_CONFIGS])
def test_bad_config_is_refused(path: Path, capsys: pytest.CaptureFixture[str],
                               hosts: list[XenHost]) -> None:
    line = _assert_refused(["run", str(path)], capsys, hosts)
    assert _expect(path) in line


@pytest.mark.parametrize("path", CREATE_CONFIGS, ids=[p.name for p in CREATE_CONFIGS])
def test_config_refused_at_create(path: Path, capsys: pytest.CaptureFixture[str],
                                  hosts: list[XenHost]) -> None:
    parse_config_file(path)  # it parses: the refusal comes from the toolstack
    line = _assert_refused(["run", str(path)], capsys, hosts)
    assert _expect(path) in line


@pytest.mark.parametrize("image", BAD_IMAGES, ids=[p.name for p in BAD_IMAGES])
def test_bad_kernel_image_is_refused(image: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     hosts: list[XenHost]) -> None:
    cfg = tmp_path / "bad-kernel.cfg"
    cfg.write_text(f'name = "badk"\nkernel = "{image}"\nmemory = 16\n')
    line = _assert_refused(["run", str(cfg)], capsys, hosts)
    assert str(image) in line


def test_bad_second_config_creates_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           hosts: list[XenHost]) -> None:
    bad = HERE / "configs" / "bad" / "create" / "disk-three-bytes.cfg"
    _assert_refused(["run", str(ROOT / "images" / "pv-hello.cfg"), str(bad)], capsys, hosts)


def test_unreadable_disk_image(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               hosts: list[XenHost]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads and writes any file: chmod 000 proves nothing")
    img = tmp_path / "locked.img"
    img.write_bytes(bytes(4096))
    img.chmod(0)
    try:
        cfg = tmp_path / "locked.cfg"
        cfg.write_text(f'name = "l"\nkernel = "{HELLO}"\n'
                       f"disk = [ 'vdev=xvda, access=rw, target={img}' ]\n")
        line = _assert_refused(["run", str(cfg)], capsys, hosts)
        assert "permission denied" in line
    finally:
        img.chmod(0o600)


def test_disk_of_1000_bytes_is_one_whole_sector(tmp_path: Path) -> None:
    """Decision: a partial trailing sector is not part of the disk (like a loop device)."""
    img = tmp_path / "odd.img"
    img.write_bytes(b"\xab" * 1000)
    cfg = tmp_path / "odd.cfg"
    cfg.write_text(f'name = "odd"\nkernel = "{HELLO}"\nmemory = 16\n'
                   f"disk = [ 'vdev=xvda, access=rw, target={img}' ]\n")
    host = XenHost(memory_mib=256, dom0_mem_mib=64)
    xl = Libxl(host)
    d = xl.domain_create_new(parse_config_file(str(cfg)), paused=True)
    dev = next(x for x in dom0_services(host).devices[d.domid] if isinstance(x, BlkbackDevice))
    assert dev.sectors == 1
    be = f"/local/domain/0/backend/vbd/{d.domid}/{dev.devid}"
    assert dom0_services(host).store.read(f"{be}/sectors") == "1"
    xl.domain_destroy(d)
    assert img.read_bytes() == b"\xab" * 1000
    host.check_invariants()


def test_bad_input_in_a_real_process_has_no_traceback() -> None:
    for path in (HERE / "configs" / "bad" / "create" / "disk-is-directory.cfg",
                 HERE / "configs" / "bad" / "memory-negative.cfg"):
        proc = subprocess.run([sys.executable, "-m", "xenlab.cli", "run", str(path)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("xenlab: error: ")
