"""The notebook facade: what the labs call."""

from __future__ import annotations

from pytest import CaptureFixture

from xenlab.lab import Lab


def test_lab_session(capsys: CaptureFixture[str]) -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('pv-hello.cfg')}")
    lab.run()
    assert "magic: xen-3.0-x86_64" in lab.console("pv-hello")
    lab.xl("list")
    lab.xl("destroy nosuch")
    out = capsys.readouterr().out
    assert "Created domain 1 (pv-hello)" in out
    assert "---s--" in out
    assert "xl: error: 'nosuch' is an invalid domain identifier" in out
    assert lab.xl_output("list").startswith("Name ")
    assert lab.trace.select(kind="hypercall")
