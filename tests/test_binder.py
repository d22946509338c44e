"""The Binder files work: a fresh venv built from binder/requirements.txt runs lab 00.

repo2docker (what mybinder.org runs) installs ``binder/requirements.txt`` with pip
from the repository's root, so ``.`` there is xenlab itself. This test does the
same in a brand-new virtual environment (no system site-packages, so nothing
leaks in from the environment running the tests), adds nbval, pytest and
ipykernel, and runs ``pytest --nbval`` on ``labs/00-start-here`` with that
environment's Python. pip uses the same configuration (index, find-links,
constraints) as the environment running this test: it reads the same
``pip.conf`` files and inherits the ``PIP_*`` variables.

The install is done from a copy of the repository, so pip's in-tree build
never writes ``build/`` into the working tree.

Real Xen: (none: packaging of the teaching material)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP_TIMEOUT = 900


def _run(cmd: list[str], cwd: Path, timeout: int = PIP_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)          # nothing from the outer environment
    env.pop("VIRTUAL_ENV", None)
    env["PIP_NO_INPUT"] = "1"
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _copy_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".ipynb_checkpoints",
                                    ".mypy_cache", ".ruff_cache")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


@pytest.mark.slow
def test_binder_requirements_run_lab_00(tmp_path: Path) -> None:
    repo = _copy_repo(tmp_path / "repo")
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, timeout=300)
    assert made.returncode == 0, made.stderr
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg, cfg
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    # can pip reach an index at all? (same config as the outer environment)
    probe = _run([str(python), "-m", "pip", "download", "--no-deps", "--dest",
                  str(tmp_path / "probe"), "nbval"], cwd=tmp_path, timeout=300)
    if probe.returncode != 0:
        pytest.skip("pip cannot reach a package index (or find-links) from this machine: "
                    + (probe.stderr.strip().splitlines() or ["no output"])[-1])

    # exactly what repo2docker does: pip install -r binder/requirements.txt from the root
    req = _run([str(python), "-m", "pip", "install", "-r", "binder/requirements.txt"],
               cwd=repo)
    assert req.returncode == 0, req.stdout[-3000:] + req.stderr[-3000:]
    extra = _run([str(python), "-m", "pip", "install", "nbval", "pytest", "ipykernel"],
                 cwd=repo)
    assert extra.returncode == 0, extra.stdout[-3000:] + extra.stderr[-3000:]

    # the package installed from binder/ (editable, "-e ." as repo2docker runs it in the
    # repository it cloned), not this checkout, is what the kernel imports
    where = _run([str(python), "-c", "import xenlab, unicorn; print(xenlab.__file__)"],
                 cwd=tmp_path, timeout=120)
    assert where.returncode == 0, where.stderr
    assert str(repo) in where.stdout, where.stdout

    nb = _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
               "--nbval-current-env", "--nbval-sanitize-with", "labs/sanitize.cfg",
               "labs/00-start-here"], cwd=repo, timeout=600)
    assert nb.returncode == 0, nb.stdout[-5000:] + nb.stderr[-3000:]
    assert " passed" in nb.stdout, nb.stdout[-2000:]


def test_the_binder_badge_opens_the_student_edition() -> None:
    """The README's launch link opens a notebook of labs-student/ (no answers in it), and
    that notebook exists: a student who clicks the badge does not land on the answers."""
    import re
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"https://mybinder\.org/v2/gh/[^)\s]*urlpath=lab/tree/([^)\s]+)", readme)
    assert links, "the README has no Binder badge"
    for path in links:
        assert path.startswith("labs-student/"), path
        assert (ROOT / path).is_file(), path
