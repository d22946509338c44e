"""Regenerate the figures in docs/img/ from a real run.

``python tools/make_figures.py`` boots a host, runs pv-net-a, pv-net-b and
pv-disk (on a temporary copy of images/pv-disk.img, so the committed image is
untouched) until they are done, and writes docs/img/topology.png. The run is
deterministic, so the figure only changes when xenlab does.

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
                    _disk_cfg(Path(tmp))):
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


def main() -> int:
    return make_topology(OUT / "topology.png")


if __name__ == "__main__":
    raise SystemExit(main())
