"""Build the two editions of the labs from one source (``make editions``).

- the **instructor edition** is ``labs/``: every exercise answered in an nbgrader solution
  region, graded by a hidden test; its stored outputs show every check "Correct";
- the **student edition** is ``labs-student/``, nbgrader's release folder: ``nbgrader
  generate_assignment`` (configured by ``nbgrader_config.py``) replaces each solution
  region with ``answer = ...  # your answer`` and removes the hidden tests, so no answer is
  anywhere in its files; its stored outputs show "Not answered yet" and a hint.

Both are executed chapter by chapter in their own folders, so the stored outputs are what
the code prints and ``pytest --nbval`` checks either edition.

    .venv/bin/python labs/_build/editions.py                  # every chapter, both editions
    .venv/bin/python labs/_build/editions.py 05-split-drivers --student-only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
STUDENT = ROOT / "labs-student"
BIN = Path(sys.executable).parent


def chapters() -> list[str]:
    return sorted(p.parent.name for p in LABS.glob("[0-9][0-9]-*/*.ipynb")
                  if p.stem == p.parent.name)


def execute(notebook: Path) -> None:
    subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                    "--inplace", notebook.name], cwd=notebook.parent, check=True)


def student_edition(chapter: str) -> Path:
    """``nbgrader generate_assignment`` for one chapter, then run it to store its outputs."""
    (ROOT / "build").mkdir(exist_ok=True)          # nbgrader's gradebook (nbgrader_config.py)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run([str(BIN / "nbgrader"), "generate_assignment", chapter, "--force",
                    "--log-level=WARN"], cwd=ROOT, env=env, check=True)
    notebook = STUDENT / chapter / f"{chapter}.ipynb"
    execute(notebook)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", nargs="*", help="chapters (default: all), e.g. 05-split-drivers")
    parser.add_argument("--student-only", action="store_true",
                        help="do not re-run the instructor edition (labs/) first")
    args = parser.parse_args(argv)
    known = chapters()
    for chapter in args.chapter:
        if chapter not in known:
            parser.error(f"no chapter {chapter!r}; the chapters are {', '.join(known)}")
    for chapter in args.chapter or known:
        if not args.student_only:
            execute(LABS / chapter / f"{chapter}.ipynb")
            print("instructor edition:", f"labs/{chapter}/{chapter}.ipynb")
        print("student edition:   ", student_edition(chapter).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
