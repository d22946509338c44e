"""nbgrader end to end on a chapter (issue 15 item 1): release, answer, autograde, scores.

The repository's own ``nbgrader_config.py`` is copied into a scratch course with chapter 00
as its source: ``nbgrader generate_assignment`` makes the student edition (placeholder,
no hidden test), students' notebooks are written from it (one right, one wrong, one left
unanswered), ``nbgrader autograde`` runs them with the hidden tests put back, and the
gradebook has 1, 0 and 0 points: an unanswered notebook is graded, not a crash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="nbgrader is not installed (pip install -e '.[grading]')")

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "00-start-here"
STUB = "answer = ...  # your answer"
BIN = Path(sys.executable).parent


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, text=True,
                          capture_output=True, timeout=600)


@pytest.mark.slow
def test_nbgrader_generates_and_autogrades_a_chapter(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "build").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "labs" / CHAPTER, course / "labs" / CHAPTER)

    gen = _nbgrader(course, "generate_assignment", CHAPTER)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    released = course / "labs-student" / CHAPTER / f"{CHAPTER}.ipynb"
    text = released.read_text()
    assert STUB in text and "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "answer = 8192" not in text and ".correct(answer)" not in text

    for student, answer in (("alice", "8192"), ("carol", "8000"), ("bob", None)):
        nb = nbformat.read(released, as_version=4)
        if answer is not None:
            cell = next(c for c in nb.cells if STUB in c.source)
            cell.source = cell.source.replace(STUB, f"answer = {answer}")
        out = course / "submitted" / student / CHAPTER / f"{CHAPTER}.ipynb"
        out.parent.mkdir(parents=True)
        nbformat.write(nb, out)

    graded = _nbgrader(course, "autograde", CHAPTER, "--create")
    assert graded.returncode == 0, graded.stdout + graded.stderr

    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "build" / "gradebook.db")) as gb:
        scores = {s: gb.find_submission(CHAPTER, s).score for s in ("alice", "bob", "carol")}
        assert gb.find_assignment(CHAPTER).max_score == 1
    assert scores == {"alice": 1, "bob": 0, "carol": 0}
    feedback = (course / "autograded" / "bob" / CHAPTER / f"{CHAPTER}.ipynb").read_text()
    assert "Not answered yet" in feedback
