"""The Binder files work: apt.txt names exist on the image Binder builds, and a fresh
venv built from binder/requirements.txt, after postBuild, runs lab 00 in each language.

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

    # then postBuild, as repo2docker runs it: from the root, the environment on PATH
    env_bin = str(python.parent)
    post = subprocess.run(["bash", "binder/postBuild"], cwd=repo, capture_output=True,
                          text=True, timeout=300, check=False,
                          env=dict(os.environ, PATH=f"{env_bin}{os.pathsep}"
                                   f"{os.environ.get('PATH', '')}", VIRTUAL_ENV=""))
    assert post.returncode == 0, post.stdout[-2000:] + post.stderr[-2000:]

    # chapter 00 in each language (the start page and its .es / .pt editions)
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


def _apt_txt() -> list[str]:
    """binder/apt.txt's packages, read as repo2docker reads them (a # starts a comment)."""
    lines = (ROOT / "binder" / "apt.txt").read_text().splitlines()
    return [p for p in (ln.partition("#")[0].strip() for ln in lines) if p]


#: What Binder installs and why (the notebooks' use); anything else is weight.
APT_NEEDED = {"binutils": "GNU as for the hands-on exercises",
              "seabios": "chapter 07's real SeaBIOS",
              "xen-utils-4.17": "chapter 07's real hvmloader",
              "grub-xen-host": "chapter 08's PVH GRUB"}
UBUNTU = "http://archive.ubuntu.com/ubuntu/dists/noble/{}/binary-amd64/Packages.xz"


def test_binder_installs_only_what_the_notebooks_use() -> None:
    assert sorted(_apt_txt()) == sorted(APT_NEEDED)


@pytest.mark.slow
def test_binder_apt_names_exist_on_the_image_binder_builds(tmp_path: Path) -> None:
    """repo2docker builds on buildpack-deps:24.04 (Ubuntu noble): each name of apt.txt is
    a package of noble's main or universe (Debian's names are not always Ubuntu's)."""
    import lzma
    import urllib.request
    names: set[str] = set()
    for component in ("main", "universe"):
        try:
            with urllib.request.urlopen(UBUNTU.format(component), timeout=60) as r:
                data = lzma.decompress(r.read())
        except OSError as e:
            pytest.skip(f"Ubuntu's archive is not reachable from here ({e})")
        names |= {ln[9:].strip() for ln in data.decode("utf-8", "replace").splitlines()
                  if ln.startswith("Package: ")}
    assert len(names) > 10_000
    missing = [p for p in _apt_txt() if p not in names]
    assert missing == [], f"not packages of Ubuntu 24.04: {missing}"


def test_a_chapter_finds_the_real_parts_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Xen version is hard-coded: hvmloader is found under any /usr/lib/xen-*/boot, and
    where a part is missing, Lab.missing says what and how to install it in one line."""
    from xenlab.lab import Lab
    from xenlab.tools.libs.light import libxl

    monkeypatch.setattr(libxl, "HVMLOADER_PATHS", ())
    monkeypatch.setattr(libxl.glob, "glob", lambda pattern: ["/srv/xen-4.99/hvmloader"]
                        if pattern == "/usr/lib/xen-*/boot/hvmloader" else [])
    monkeypatch.setattr(libxl.os.path, "isfile", lambda p: p in (
        "/srv/xen-4.99/hvmloader", "/usr/share/seabios/bios-256k.bin"))
    assert libxl.find_hvmloader() == "/srv/xen-4.99/hvmloader"
    assert Lab.missing("seabios") is None
    monkeypatch.setattr(libxl.os.path, "isfile", lambda p: False)
    said = Lab.missing("seabios")
    assert said is not None and "xen-utils-4.17 seabios" in said and "\n" not in said
    assert "grub-xen-host" in (Lab.missing("pvh-grub") or "")
