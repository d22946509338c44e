"""Running the README's tours never changes the repository (issue 15 item 6).

Every ``xenlab run``/``compare``/``shell`` command of the README's code blocks is run
from the repository's root, as a student types it (only the files it is told to write,
``--trace``/``--pcap``, go to a temporary folder, and ``XENLAB_CACHE`` points the copies
of shipped disk images at one): ``git status --porcelain`` and the bytes of every file
in ``images/`` are the same afterwards. The pv-disk tour used to write sector 100 of
the tracked ``images/pv-disk.img``; now ``xl create`` gives the guest a fresh copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def tour_commands() -> list[str]:
    """The xenlab command lines of the README's fenced code blocks, comments dropped."""
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, re.S):
        for line in block.splitlines():
            m = re.match(r"(?:\$ )?(xenlab (?:run|compare|shell)\b[^#]*)", line)
            if m:
                commands.append(m.group(1).strip())
    return commands


def _tracked_images() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((ROOT / "images").rglob("*")) if p.is_file()}


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def _skip_reason(command: str) -> str | None:
    if "linux-pv.cfg" in command and not (
            Path(os.environ.get("XENLAB_REAL_GUESTS", "~/.cache/xenlab/real-guests"))
            .expanduser().is_dir()):
        return "make real-guests has not fetched Debian's kernel"
    if "pv-grub.cfg" in command and not Path("/usr/lib/grub-xen/grub-x86_64-xen.bin").exists():
        return "grub-xen-host is not installed"
    return None


def test_readme_lists_the_tours() -> None:
    commands = tour_commands()
    assert "xenlab run images/pv-disk.cfg" in commands
    assert "xenlab shell" in commands and len(commands) >= 10


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a checkout")
def test_readme_tours_leave_git_status_clean(tmp_path: Path) -> None:
    xenlab = Path(sys.executable).with_name("xenlab")
    assert xenlab.exists(), "pip install -e . makes the xenlab command"
    env = {**os.environ, "XENLAB_CACHE": str(tmp_path / "cache")}
    status, images = _status(), _tracked_images()
    ran = []
    for command in tour_commands():
        if _skip_reason(command):
            continue
        argv = command.split()[1:]
        for opt in ("--trace", "--pcap"):   # the files the command is asked to write
            if opt in argv:
                i = argv.index(opt) + 1
                argv[i] = str(tmp_path / Path(argv[i]).name)
        done = subprocess.run([str(xenlab), *argv], cwd=ROOT, env=env, input="quit\n",
                              capture_output=True, text=True, timeout=600)
        expected = 2 if "tests/configs/bad/" in command else 0
        assert done.returncode == expected, (command, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, command
        ran.append(command)
    assert "xenlab run images/pv-disk.cfg" in ran
    assert _tracked_images() == images, "a tour changed a file in images/"
    assert _status() == status, "a tour changed the repository"
    copy = tmp_path / "cache" / "disks" / "pv-disk" / "pv-disk.img"
    sector = copy.read_bytes()[100 * 512:101 * 512]
    assert sector != (ROOT / "images" / "pv-disk.img").read_bytes()[100 * 512:101 * 512]


def _make_lab_dry_run(*args: str) -> str:
    return subprocess.run(["make", "-n", "lab", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_passes_allow_root_only_to_root() -> None:
    """JupyterLab refuses to start as root without --allow-root (a container, a VM, a
    Binder-like image); a user's ``make lab`` stays as it was."""
    assert "--allow-root" in _make_lab_dry_run("LAB_UID=0")
    assert "--allow-root" not in _make_lab_dry_run("LAB_UID=1000")
    assert ("--allow-root" in _make_lab_dry_run()) == (os.geteuid() == 0)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_opens_the_language_asked_for() -> None:
    """``make lab LANG=es`` opens the Spanish start page, a Portuguese locale the
    Portuguese one, anything else the English one; LAB_LANG=en overrides the locale."""
    start = "00-start-here/00-start-here"
    assert f"{start}.es.ipynb" in _make_lab_dry_run("LANG=es")
    assert f"{start}.pt.ipynb" in _make_lab_dry_run("LANG=pt_BR.UTF-8")
    for english in ("LANG=C.UTF-8", "LANG=en_US.UTF-8", "LANG=es", "LANG=de_DE.UTF-8"):
        extra = ("LAB_LANG=en",) if english == "LANG=es" else ()
        out = _make_lab_dry_run(english, *extra)
        assert f"{start}.ipynb" in out and ".es." not in out and ".pt." not in out, english
    for lang in ("es", "pt"):
        assert (ROOT / "labs-student" / f"{start}.{lang}.ipynb").exists()


@pytest.mark.skipif(shutil.which("make") is None
                    or not Path(sys.executable).with_name("jupyter").exists(),
                    reason="needs make and JupyterLab")
def test_make_lab_starts_jupyterlab_as_whoever_runs_it() -> None:
    """``make lab`` really starts the server, as root too (it used to stop at 'Running as
    root is not recommended. Use --allow-root to bypass.'). The server is stopped again."""
    import signal
    proc = subprocess.Popen(
        ["make", "lab", "LAB_ARGS=--no-browser --ServerApp.port=0 --ServerApp.token=xenlab"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "is running at" in line or "Running as root" in line:
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)   # make and the server it started
        proc.wait(timeout=60)
        proc.stdout.close()
    text = "".join(lines)
    assert "is running at" in text, text[-2000:]
