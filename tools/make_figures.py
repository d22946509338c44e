"""Regenerate the figures in docs/img/ from a real run.

``python tools/make_figures.py`` boots a host, runs pv-net-a, pv-net-b,
pv-disk (on a temporary copy of images/pv-disk.img, so the committed image is
untouched) and the HVM guest hvm-hello with its device model until they are
done, and writes docs/img/topology.png; then it
steps the hvm-hello boot with the Stepper to the BIOS's POST and writes
docs/img/stepper.png, the stepper's panels as the widget shows them. The runs
are deterministic, so the figures only change when xenlab does.

Real Xen: a screenshot of virt-manager's host view, made reproducible
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xenlab.lab import IMAGES, Lab  # noqa: E402
from xenlab.views.topology import save_topology  # noqa: E402

OUT = ROOT / "docs" / "img"


def _disk_cfg(tmp: Path) -> str:
    shutil.copy(IMAGES / "pv-disk.img", tmp / "pv-disk.img")
    text = (IMAGES / "pv-disk.cfg").read_text().replace(
        'kernel = "pv-disk/pv-disk.elf"', f'kernel = "{IMAGES / "pv-disk" / "pv-disk.elf"}"')
    (tmp / "pv-disk.cfg").write_text(text)
    return str(tmp / "pv-disk.cfg")


def make_topology(path: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="xenlab-fig-") as tmp:
        lab = Lab()
        for cfg in (str(IMAGES / "pv-net-a.cfg"), str(IMAGES / "pv-net-b.cfg"),
                    _disk_cfg(Path(tmp)), str(IMAGES / "hvm-hello.cfg")):
            out = lab.xl_output(f"create {cfg}")
            if "Created domain" not in out:
                sys.stderr.write(out)
                return 1
        lab.run()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_topology(lab.host, path, dpi=80, metadata={"Software": None})
        for domid in sorted(lab.host.domains, reverse=True):  # closes blkback's image
            if domid:
                lab.xl_output(f"destroy {domid}")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
    return 0


def make_stepper(path: Path) -> int:
    """The stepper's panels, drawn as text with matplotlib (what the widget shows)."""
    from matplotlib.figure import Figure

    from xenlab.views.stepper import Stepper

    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl_output(f"create -p {IMAGES / 'hvm-hello.cfg'}")
    st = Stepper(lab, "hvm-hello")
    st.run_to_phase("xenlab BIOS: IVT")
    for _ in range(40):
        st.step()
    panels = st.panels()
    fig = Figure(figsize=(12, 8))
    boxes = (("registers", 0.02, 0.74, 0.96, 0.16), ("disassembly", 0.02, 0.24, 0.50, 0.44),
             ("port_io", 0.56, 0.24, 0.42, 0.44), ("phase", 0.02, 0.02, 0.96, 0.16))
    for key, x, y, w, h in boxes:
        text = panels.get(key, "")
        ax = fig.add_axes((x, y, w, h))
        ax.set_axis_off()
        ax.set_title(key.replace("_", " "), loc="left", fontsize=10, fontweight="bold")
        ax.text(0, 1, text, va="top", ha="left", family="monospace", fontsize=7.5,
                transform=ax.transAxes)
    fig.suptitle(f"xenlab boot stepper: hvm-hello at {st.cs_ip()} after "
                 f"{st.position:,} instructions", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
    return 0


def main() -> int:
    return make_topology(OUT / "topology.png") or make_stepper(OUT / "stepper.png")


if __name__ == "__main__":
    raise SystemExit(main())
