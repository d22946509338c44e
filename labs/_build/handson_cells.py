"""Cells of a hands-on exercise (xenlab.handson), in the nbgrader form of exercise_cells.py.

    handson_cells("hx7", 'HandsOn(TASK, check_boot_sector)', SOLUTION_LINES)

Like ``exercise_cells``: the question cell makes the exercise and shows the task; the
answer cell is an nbgrader solution cell whose ``### BEGIN SOLUTION`` region holds the
instructor's solution (any lines that end by setting ``answer``; the student edition gets
``answer = ...  # your answer``, which the checker answers with "Not answered yet" and the
hint), then ``_ = hx7.check(answer)`` runs it on a fresh emulated host; the hidden test is
``assert hx7.correct(answer)``.
"""

from __future__ import annotations

from exercise_cells import _nbgrader
from nbformat.v4 import new_code_cell


def handson_cells(var: str, call: str, solution: str, *, setup: str = "",
                  points: int = 2) -> list:
    gid = var.replace(".", "_")
    question = new_code_cell("\n".join(filter(None, [
        "from xenlab.handson import *", setup.strip("\n"), f"{var} = {call}",
        f"{var}.show()"])))
    answer = new_code_cell(
        f"### BEGIN SOLUTION\n{solution.strip(chr(10))}\n### END SOLUTION\n"
        f"_ = {var}.check(answer)",
        metadata=_nbgrader(f"{gid}_answer", solution=True))
    test = new_code_cell(
        f"# Graded by a hidden test ({points} points): the run must succeed.\n"
        f"### BEGIN HIDDEN TESTS\nassert {var}.correct(answer)\n### END HIDDEN TESTS",
        metadata=_nbgrader(f"{gid}_test", grade=True, points=points))
    return [question, answer, test]
