"""Build the labs from their text sources, in every language and both editions (``make editions``).

Each chapter's source is a MyST Markdown notebook, ``labs/NN-name/NN-name.md``, with
its translations ``NN-name.es.md`` and ``NN-name.pt.md`` beside it (jupytext pairs each
with the ``.ipynb`` of the same name; ``labs/jupytext.toml``). For each chapter:

1. **sync**: ``jupytext --update`` writes each source's cells into its ``.ipynb``;
2. the **instructor edition** (``labs/``): every exercise answered in an nbgrader
   solution region, graded by a hidden test; executed in its folder, its stored outputs
   show every check "Correct";
3. the **student edition** (``labs-student/``, nbgrader's release folder): ``nbgrader
   generate_assignment`` (``nbgrader_config.py``) replaces each solution region with
   ``answer = ...  # your answer`` and removes the hidden tests, for the three languages
   at once, so no answer is anywhere in its files; executed, its stored outputs show
   "Not answered yet" and a hint.

The stored outputs are what the code prints, and ``pytest --nbval`` checks every one.

    .venv/bin/python labs/_build/editions.py                        # everything
    .venv/bin/python labs/_build/editions.py 05-split-drivers --lang es
    .venv/bin/python labs/_build/editions.py 05-split-drivers --student-only
    .venv/bin/python labs/_build/editions.py --instructor-only      # make notebooks
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
STUDENT = ROOT / "labs-student"
BIN = Path(sys.executable).parent
LANGUAGES = ("en", "es", "pt")


def chapters() -> list[str]:
    return sorted(p.parent.name for p in LABS.glob("[0-9][0-9]-*/*.md")
                  if p.stem == p.parent.name)


def notebook_name(chapter: str, lang: str) -> str:
    return f"{chapter}.ipynb" if lang == "en" else f"{chapter}.{lang}.ipynb"


def sync(chapter: str, lang: str) -> Path | None:
    """The source's cells into its notebook (outputs kept), or None without a source."""
    notebook = LABS / chapter / notebook_name(chapter, lang)
    source = notebook.with_suffix(".md")
    if not source.exists():
        return None
    subprocess.run([str(BIN / "jupytext"), "--quiet", "--to", "ipynb", "--update",
                    source.name], cwd=source.parent, check=True)
    return notebook


def execute(notebook: Path) -> None:
    # no per-cell timestamps: a re-run that prints the same leaves the file the same
    subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                    "--ExecutePreprocessor.record_timing=False", "--inplace", notebook.name],
                   cwd=notebook.parent, check=True)
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)                # left by an older run
    nbformat.write(nb, notebook)


def generate_assignment(chapter: str) -> None:
    """``nbgrader generate_assignment``: every language's student notebook of a chapter."""
    (ROOT / "build").mkdir(exist_ok=True)          # nbgrader's gradebook (nbgrader_config.py)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run([str(BIN / "nbgrader"), "generate_assignment", chapter, "--force",
                    "--log-level=WARN"], cwd=ROOT, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", nargs="*", help="chapters (default: all), e.g. 05-split-drivers")
    parser.add_argument("--lang", default=",".join(LANGUAGES),
                        help="languages to execute, comma-separated (default: en,es,pt)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--student-only", action="store_true",
                       help="do not re-run the instructor edition (labs/) first")
    which.add_argument("--instructor-only", action="store_true",
                       help="sync and re-run labs/ only (make notebooks)")
    args = parser.parse_args(argv)
    known = chapters()
    for chapter in args.chapter:
        if chapter not in known:
            parser.error(f"no chapter {chapter!r}; the chapters are {', '.join(known)}")
    langs = [x.strip() for x in args.lang.split(",") if x.strip()]
    for lang in langs:
        if lang not in LANGUAGES:
            parser.error(f"no language {lang!r}; the labs are in {', '.join(LANGUAGES)}")
    for chapter in args.chapter or known:
        for lang in LANGUAGES:                  # every notebook's cells match its source
            notebook = sync(chapter, lang)
            if notebook is not None and lang in langs and not args.student_only:
                execute(notebook)
                print("instructor edition:", notebook.relative_to(ROOT))
        if args.instructor_only:
            continue
        generate_assignment(chapter)
        for lang in langs:
            notebook = STUDENT / chapter / notebook_name(chapter, lang)
            if notebook.exists():
                execute(notebook)
                print("student edition:   ", notebook.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
