"""PV versus HVM, measured from the trace (xenlab compare)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from xenlab.cli import main, run_configs
from xenlab.compare import domain_costs, format_costs

IMAGES = Path(__file__).resolve().parents[1] / "images"


def test_pv_needs_few_entries_hvm_many_exits(tmp_path: Path,
                                             capsys) -> None:
    shutil.copy(IMAGES / "pv-disk.img", tmp_path / "pv-disk.img")
    cfg = (IMAGES / "pv-disk.cfg").read_text().replace(
        'kernel = "pv-disk/pv-disk.elf"', f'kernel = "{IMAGES / "pv-disk" / "pv-disk.elf"}"')
    (tmp_path / "pv-disk.cfg").write_text(cfg)
    host = run_configs([str(tmp_path / "pv-disk.cfg"), str(IMAGES / "hvm-hello.cfg")],
                       io.StringIO())
    costs = {c.name: c for c in domain_costs(host).values()}
    pv, hvm = costs["pv-disk"], costs["hvm-hello"]
    assert pv.dtype == "pv" and hvm.dtype == "hvm"
    assert sum(pv.hypercalls.values()) > 0 and not pv.vmexits
    assert hvm.exits_to_dm > 0 and hvm.ioreqs == hvm.exits_to_dm
    assert pv.dom0_work["blkback.blkif_request"] >= 3
    # the measured point: a PV guest runs far longer between entries into Xen
    assert pv.instructions / pv.traps > 10 * hvm.instructions / hvm.traps
    out = io.StringIO()
    format_costs(domain_costs(host), out)
    assert "VM exits sent to the device model" in out.getvalue()
    assert main(["compare", str(tmp_path / "pv-disk.cfg"), str(IMAGES / "hvm-hello.cfg")]) == 0
    assert "instructions per entry into Xen" in capsys.readouterr().out


def test_the_same_job_as_pv_and_as_hvm(capsys) -> None:
    """pv-work and hvm-work read the same eight sectors of the same disk and print the
    same eight lines; between their workload markers the PV guest enters Xen a few times
    per sector, the HVM guest hundreds of times, nearly all of them ioreqs to Dom0."""
    out = io.StringIO()
    host = run_configs([str(IMAGES / "pv-work.cfg"), str(IMAGES / "hvm-work.cfg")], out)
    lines = [f"workload: sector {n} of 8" for n in range(1, 9)]
    doms = {d.name: d for d in host.domains.values()}
    pv_console = doms["pv-work"].console.decode().splitlines()
    hvm_serial = doms["hvm-work"].hvm.serial.decode().replace("\r", "").splitlines()
    assert [ln for ln in pv_console if ln.startswith("workload:")] == lines
    assert [ln for ln in hvm_serial if ln.startswith("workload:")] == lines
    costs = {c.name: c for c in domain_costs(host).values()}
    pv, hvm = costs["pv-work"], costs["hvm-work"]
    assert pv.job_time is not None and hvm.job_time is not None  # both markers seen
    # PV: one request per sector on the ring, a notification each way at most
    assert pv.dom0_work["blkback.blkif_request"] == 8
    assert 8 <= pv.traps <= 4 * 8 and not pv.vmexits
    # HVM: every port access is an exit; the disk and screen are in the device model
    assert hvm.dom0_work["qemu.ide.read"] == 8
    assert hvm.exits_to_dm == hvm.ioreqs > 20 * pv.traps
    assert hvm.exit_time > 100 * pv.exit_time and hvm.job_time > 100 * pv.job_time
    whole = {c.name: c for c in domain_costs(host, job=False).values()}
    assert whole["hvm-work"].traps > hvm.traps  # the firmware's boot is left out
    assert main(["compare", str(IMAGES / "pv-work.cfg"), str(IMAGES / "hvm-work.cfg")]) == 0
    report = capsys.readouterr().out
    assert "job's virtual time (us)" in report and "io/dm" in report
