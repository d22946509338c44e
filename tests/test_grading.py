"""nbgrader end to end on a chapter (issue 15 item 1): release, answer, autograde, scores.

The repository's own ``nbgrader_config.py`` is copied into a scratch course with chapter 00
as its source: ``nbgrader generate_assignment`` makes the student edition (placeholder,
no hidden test), students' notebooks are written from it (one right, one wrong, one left
unanswered), ``nbgrader autograde`` runs them with the hidden tests put back, and the
gradebook has 1, 0 and 0 points: an unanswered notebook is graded, not a crash.

A chapter's folder holds its three languages; a class is graded in one of them, released
with ``--notebook NN-name.es`` (INSTRUCTORS.md, "Grading"), so the assignment's points are
that notebook's alone. The first test grades chapter 00 in Spanish, whose feedback is
Spanish; the second grades chapter 03 in English.
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
def test_nbgrader_generates_and_autogrades_a_chapter_in_one_language(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "build").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "labs" / CHAPTER, course / "labs" / CHAPTER)
    notebook = f"{CHAPTER}.es"

    gen = _nbgrader(course, "generate_assignment", CHAPTER, "--notebook", notebook)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    release = course / "labs-student" / CHAPTER
    assert sorted(p.name for p in release.iterdir()) == [f"{notebook}.ipynb"]
    released = release / f"{notebook}.ipynb"
    text = released.read_text()
    assert STUB in text and "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "answer = 8192" not in text and ".correct(answer)" not in text

    for student, answer in (("alice", "8192"), ("carol", "8000"), ("bob", None)):
        nb = nbformat.read(released, as_version=4)
        if answer is not None:
            cell = next(c for c in nb.cells if STUB in c.source)
            cell.source = cell.source.replace(STUB, f"answer = {answer}")
        out = course / "submitted" / student / CHAPTER / f"{notebook}.ipynb"
        out.parent.mkdir(parents=True)
        nbformat.write(nb, out)

    graded = _nbgrader(course, "autograde", CHAPTER, "--create", "--notebook", notebook)
    assert graded.returncode == 0, graded.stdout + graded.stderr

    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "build" / "gradebook.db")) as gb:
        scores = {s: gb.find_submission(CHAPTER, s).score for s in ("alice", "bob", "carol")}
        assert gb.find_assignment(CHAPTER).max_score == 1      # the Spanish notebook only
    assert scores == {"alice": 1, "bob": 0, "carol": 0}
    feedback = (course / "autograded" / "bob" / CHAPTER / f"{notebook}.ipynb").read_text()
    assert "Aún sin responder" in feedback and "Not answered yet" not in feedback


@pytest.mark.slow
def test_nbgrader_grades_a_hands_on_exercise_by_what_the_answer_does(tmp_path: Path) -> None:
    """Chapter 03's hands-on 3.4 (fix a broken xl.cfg, 2 points) under nbgrader: a config
    that differs from the instructor's but boots the guest as asked earns the points, one
    that still has a mistake earns none; the other exercises are left unanswered."""
    chapter = "03-dom0-and-domus"
    course = tmp_path / "course"
    (course / "build").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "labs" / chapter, course / "labs" / chapter)
    gen = _nbgrader(course, "generate_assignment", chapter, "--notebook", chapter)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    released = course / "labs-student" / chapter / f"{chapter}.ipynb"

    own = ('answer = """# my fixed config\\nname = \\"my-guest\\"\\ntype = \\"pv\\"\\n'
           'kernel = \\"pv-hello.elf\\"\\nmemory = 64\\non_poweroff = \\"preserve\\"\\n"""')
    for student, answer in (("alice", own), ("carol", own.replace("pv-hello", "pv-helo"))):
        nb = nbformat.read(released, as_version=4)
        cell = next(c for c in nb.cells if STUB in c.source and "hx34.check" in c.source)
        cell.source = cell.source.replace(STUB, answer)
        out = course / "submitted" / student / chapter / f"{chapter}.ipynb"
        out.parent.mkdir(parents=True)
        nbformat.write(nb, out)

    graded = _nbgrader(course, "autograde", chapter, "--create", "--notebook", chapter)
    assert graded.returncode == 0, graded.stdout + graded.stderr

    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "build" / "gradebook.db")) as gb:
        scores = {s: gb.find_submission(chapter, s).score for s in ("alice", "carol")}
        assert gb.find_assignment(chapter).max_score == 5      # three questions + 2 points
    assert scores == {"alice": 2, "carol": 0}
    feedback = (course / "autograded" / "carol" / chapter / f"{chapter}.ipynb").read_text()
    assert "pv-helo.elf: no such file" in feedback
