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
