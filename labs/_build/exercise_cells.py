"""The three notebook cells of one exercise, in nbgrader's form (used by make_notebooks_*.py).

    exercise_cells("ex61", 'exercise("6.1", seed=SEED)', '"xen"', setup="SEED = 6")

1. the question: ``ex61 = exercise("6.1", seed=SEED)`` and ``ex61.show()`` (no answer in it:
   the exercise comes from ``xenlab.exercises``, which keeps only a digest);
2. the answer, an nbgrader *solution* cell: the instructor edition (``labs/``) holds
   ``### BEGIN SOLUTION`` / ``answer = "xen"`` / ``### END SOLUTION``; ``nbgrader
   generate_assignment`` (``make editions``) turns the region into ``answer = ...  # your
   answer`` (``ClearSolutions.code_stub`` in ``nbgrader_config.py``) for the student edition;
   then ``_ = ex61.check(answer)``, which prints "Not answered yet" and a hint there;
3. the grade, an nbgrader *autograded test* cell (locked, with points) whose test is
   hidden: ``assert ex61.correct(answer)`` between ``### BEGIN HIDDEN TESTS`` and
   ``### END HIDDEN TESTS``, removed from the student edition and put back by ``nbgrader
   autograde``.
"""

from __future__ import annotations

from nbformat.v4 import new_code_cell

SOLUTION_STUB = "answer = ...  # your answer"


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False,
              points: int = 0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": grade, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def exercise_cells(var: str, call: str, solution: str, *, setup: str = "",
                   points: int = 1) -> list:
    """Question, answer and hidden-test cells of one exercise (see the module docstring)."""
    gid = var.replace(".", "_")
    question = new_code_cell("\n".join(filter(None, [setup.strip("\n"),
                                                     f"{var} = {call}", f"{var}.show()"])))
    answer = new_code_cell(
        f"### BEGIN SOLUTION\nanswer = {solution}\n### END SOLUTION\n_ = {var}.check(answer)",
        metadata=_nbgrader(f"{gid}_answer", solution=True))
    test = new_code_cell(
        f"# Graded by a hidden test ({points} point{'s' if points != 1 else ''}).\n"
        f"### BEGIN HIDDEN TESTS\nassert {var}.correct(answer)\n### END HIDDEN TESTS",
        metadata=_nbgrader(f"{gid}_test", grade=True, points=points))
    return [question, answer, test]
