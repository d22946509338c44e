"""The README shows real output: these tests fail when the docs drift from the code."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from xenlab.cli import main, run_configs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_tour_is_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"\$ xenlab run images/pv-hello.cfg --trace t.jsonl\n(.*?)```", README,
                      re.S)
    assert block is not None
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    run_configs(["images/pv-hello.cfg"], out, trace_path=str(tmp_path / "t.jsonl"))
    assert out.getvalue() == block.group(1)
    record = re.search(
        r'(\{"seq":\d+,"time":\d+,"dom":1,[^\n]*?"name":"sched_op".*?"ret":0\})', README)
    assert record is not None
    assert record.group(1) in (tmp_path / "t.jsonl").read_text()


def test_readme_error_example(capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    m = re.search(r"\$ xenlab run (tests/configs/bad/\S+)\n(xenlab: error: .*)\n", README)
    assert m is not None
    monkeypatch.chdir(ROOT)
    assert main(["run", m.group(1)]) == 2
    assert capsys.readouterr().err == m.group(2) + "\n"


def test_architecture_table_names_existing_modules() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    modules = re.findall(r"^\| `(xenlab/[\w/]+\.py)` \|", text, re.M)
    assert len(modules) >= 25
    for mod in modules:
        assert (ROOT / mod).is_file(), mod
    for path in ROOT.glob("xenlab/**/*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" or rel in ("xenlab/errors.py", "xenlab/bench.py",
                                                   "xenlab/lab.py", "xenlab/public/gen_headers.py"):
            continue
        assert f"`{rel}`" in text, f"{rel} missing from ARCHITECTURE.md"


def test_every_module_names_its_real_counterpart() -> None:
    for path in ROOT.glob("xenlab/**/*.py"):
        if path.name == "__init__.py" and os.path.getsize(path) < 400:
            continue
        text = path.read_text()
        doc = re.match(r'\s*"""(.*?)"""', text, re.S)
        assert doc is not None, f"{path} has no module docstring"
        assert "Real Xen:" in doc.group(1) or "Real Xen " in doc.group(1), path


def test_readme_disk_console_is_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    block = re.search(r"writes sector 100 of a fresh copy of images/pv-disk.img\n\.\.\.\n(.*?)```",
                      README, re.S)
    assert block is not None
    shutil.copy(ROOT / "images" / "pv-disk.img", tmp_path / "pv-disk.img")
    cfg = (ROOT / "images" / "pv-disk.cfg").read_text()
    cfg = cfg.replace('kernel = "pv-disk/pv-disk.elf"',
                      f'kernel = "{ROOT / "images" / "pv-disk" / "pv-disk.elf"}"')
    (tmp_path / "pv-disk.cfg").write_text(cfg)
    out = io.StringIO()
    run_configs([str(tmp_path / "pv-disk.cfg")], out)
    text = out.getvalue()
    console = text[text.index("--- console of pv-disk ---"):text.index("--- xl log ---")]
    assert console == block.group(1)


def test_readme_compare_is_real_output(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"\$ xenlab compare (images/pv-work.cfg images/hvm-work.cfg)\n(.*?)"
                      r"\.\.\.\n```", README, re.S)
    assert block is not None
    monkeypatch.chdir(ROOT)
    assert main(["compare", *block.group(1).split()]) == 0
    assert capsys.readouterr().out.startswith(block.group(2))


def test_every_nbval_marker_in_the_labs_is_one_nbval_recognises() -> None:
    """nbval compares a comment's whole text with its marker names: ``# NBVAL_IGNORE_OUTPUT:
    why`` is silently no marker, and the cell's output is compared after all."""
    import json

    from nbval.plugin import comment_markers

    notebooks = sorted(ROOT.glob("labs/*/*.ipynb"))
    assert notebooks
    for nb in notebooks:
        for cell in json.loads(nb.read_text())["cells"]:
            for line in "".join(cell["source"]).splitlines():
                comment = line.strip().lstrip("#").strip()
                if line.strip().startswith("#") and comment.startswith("NBVAL"):
                    assert comment in comment_markers, f"{nb.name}: {line.strip()!r}"


def test_every_isolation_promise_names_tests_that_exist() -> None:
    """SECURITY.md: each promise of "What a guest cannot do" and "What bad input gets"
    names its tests (``T:file.py::test`` then ``::test`` for more in the same file,
    or ``tests/file.py`` with test names in parentheses); each named test exists."""
    text = (ROOT / "SECURITY.md").read_text()
    promises = text.split("## What a guest cannot do")[1].split("## How it is tested")[0]
    bullets = [b for b in re.split(r"\n- ", promises) if b.startswith("**")]
    assert len(bullets) >= 9
    for bullet in bullets:
        assert "Tests:" in bullet, f"a promise names no test: {bullet[:70]!r}"
    current = None
    names = 0
    for token in re.findall(r"`([^`]+)`", promises):
        m = re.fullmatch(r"(?:T:(test_\w+\.py))?(?:::(test_\w+))?", token)
        if m is None or not token:
            continue                                    # code, not a test reference
        if m.group(1):
            current = m.group(1)
            assert (ROOT / "tests" / current).exists(), current
        if m.group(2):
            assert current is not None, token
            source = (ROOT / "tests" / current).read_text()
            assert re.search(rf"^def {m.group(2)}\(", source, re.M), f"{current}::{m.group(2)}"
            names += 1
    assert names >= 40
