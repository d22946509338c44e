"""The two editions of the labs (issue 15 item 1): no answer in the student edition.

The answers are read from the instructor edition (``labs/``: each nbgrader solution region
holds ``answer = <literal>``); then every file of the student edition (``labs-student/``,
made by ``make editions``) is searched for each of them: the solution line, the hidden
tests, and the value itself in any cell, output or metadata, as the student would type it
(``8192``, ``0x5853``, ``"EACCES"``). A value that is also what the chapter prints on
purpose, or too generic to hide, is exempted below with its reason. The stored outputs must
show every check "Correct" in the instructor edition and "Not answered yet" in the student
edition, and the student edition must be the instructor edition with only the answers
taken out (a stale one fails: run ``make editions``).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
STUDENT = ROOT / "labs-student"
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(?P<body>.*?)### END SOLUTION", re.DOTALL)
CHAPTERS = sorted(p.parent.name for p in LABS.glob("[0-9][0-9]-*/*.ipynb")
                  if p.stem == p.parent.name)
LANGUAGES = ("en", "es", "pt")
# how a check's stored output starts, per language: answered right (instructor edition),
# not answered (student edition); xenlab/i18n.py and xenlab/locale/
CORRECT = {"en": "Correct:", "es": "Correcto:", "pt": "Correto:"}
UNANSWERED = {"en": "Not answered yet", "es": "Aún sin responder", "pt": "Ainda sem resposta"}


def _notebook(folder: Path, chapter: str, lang: str) -> Path:
    return folder / chapter / (f"{chapter}.ipynb" if lang == "en" else f"{chapter}.{lang}.ipynb")

# (chapter, value): why the bare value may appear in the student edition
EXEMPT: dict[tuple[str, Any], str] = {
    ("00-start-here", 8192): "pv-hello's console prints start_info's nr_pages: the chapter "
                             "shows it before the question, and finding it is the lesson",
    ("01-why-virtualize", 256): "Dom0 has 256 MiB on this chapter's host: every xl list "
                                 "prints it (the question is about the four guests)",
    ("02-the-hypervisor", 65536): "the chapter prints the frames each domain owns: reading "
                                   "Xen's frame table is the exercise",
    ("03-dom0-and-domus", "EACCES"): "the chapter's own xenstore demonstration shows the "
                                     "error a DomU gets, which the exercise asks to recall",
    ("07-hvm-boot", 256): "the chapter explains the transfer (256 16-bit words, one "
                          "rep insw) and its labs have 256 MiB",
    ("08-what-changed", 0x5853): "the chapter introduces the platform device by its vendor "
                                 "id: recalling it is the exercise",
    ("08-what-changed", -38): "pv-pubhdr's console, printed by the chapter, says what "
                              "tmem_op returned: reading it is the exercise",
}
# values too generic to search for anywhere: single letters (the options are lettered
# (a), (b) ... in every multiple-choice question), "xen"/"dm" (every chapter says both
# words), and numbers below 100 (ids, counts, percentages are in every output)


def _generic(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return False
    if isinstance(value, str):
        return len("".join(value.split())) <= 3 or value.casefold() in {"xen", "dm"}
    return isinstance(value, int) and abs(value) < 100


def _answers(chapter: str) -> list[tuple[str, Any, str]]:
    """(grade id, value, literal text) of every solution region of a chapter."""
    nb = nbformat.read(LABS / chapter / f"{chapter}.ipynb", as_version=4)
    found = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution"):
            continue
        match = SOLUTION.search(cell.source)
        assert match, f"{chapter}: solution cell {meta.get('grade_id')} has no region"
        literal = match["body"].strip().removeprefix("answer =").strip()
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):     # a hands-on answer that is code: def answer(fe)
            value = Code(literal)
        found.append((meta["grade_id"], value, literal))
    return found


class Code(str):
    """A solution that is Python code rather than a value: searched for line by line."""


def _forms(value: Any) -> list[str]:
    """How the value could be written in a notebook file."""
    if isinstance(value, Code):
        lines = [ln.split("#")[0].strip() for ln in value.splitlines()]
        return [ln for ln in lines if len(ln) > 12] + [json.dumps(ln)[1:-1] for ln in lines
                                                        if len(ln) > 12 and '"' in ln]
    if isinstance(value, str):
        return [value, json.dumps(value)[1:-1]]
    if isinstance(value, (list, tuple)):
        return [repr(value), json.dumps(value), json.dumps(json.dumps(value))[1:-1]]
    return [str(value), hex(value)] if value >= 0 else [str(value)]


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.])" + re.escape(text) + r"(?![\w])", re.IGNORECASE)


def _student_files(chapter: str) -> dict[str, str]:
    folder = STUDENT / chapter
    if not folder.is_dir():
        pytest.fail(f"labs-student/{chapter} is missing: run `make editions`")
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            text = p.read_text(errors="replace")
            if p.suffix == ".ipynb":   # the cells' text as well: a multi-line answer (a
                nb = nbformat.reads(text, as_version=4)   # config, code) spans JSON lines
                text += "\n".join(
                    [c.source for c in nb.cells]
                    + [str(o.get("text", "")) + json.dumps(o.get("data", {}))
                       for c in nb.cells for o in c.get("outputs", [])])
            files[str(p.relative_to(ROOT))] = text
    return files


def test_every_chapter_has_exercises_with_solutions() -> None:
    assert CHAPTERS and all(_answers(ch) for ch in CHAPTERS)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c >= "02"])
def test_every_chapter_from_02_has_a_hands_on_exercise(chapter: str, lang: str) -> None:
    """Issue 15: the student's code or config runs on the emulated host (xenlab.handson),
    graded by a hidden test, and the instructor edition's stored check says Correct (in
    the notebook's language)."""
    nb = nbformat.read(_notebook(LABS, chapter, lang), as_version=4)
    made = [c.source for c in nb.cells if "HandsOn(" in c.source and "check_" in c.source]
    answered = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("hx")
                and c.metadata["nbgrader"].get("solution")]
    assert made and answered and all(a.startswith(CORRECT[lang]) for a in answered), \
        (chapter, lang, answered)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_edition_has_no_answer(chapter: str) -> None:
    files = _student_files(chapter)
    leaks = []
    for name, text in files.items():
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", ".correct(answer)"):
            if marker in text:
                leaks.append(f"{name}: {marker!r}")
        for gid, value, literal in _answers(chapter):
            line = re.compile(r"answer\s*=\s*" + re.escape(json.dumps(literal)[1:-1])
                              + r"(?![\w.])")
            if line.search(text) or re.search(r"answer\s*=\s*" + re.escape(literal)
                                              + r"(?![\w.])", text):
                leaks.append(f"{name}: {gid}'s solution line `answer = {literal}`")
            if _generic(value) or (chapter, repr(value)) in {(c, repr(v)) for c, v in EXEMPT}:
                continue
            for form in _forms(value):
                if _pattern(form).search(text):
                    leaks.append(f"{name}: {gid}'s answer {form!r}")
    assert not leaks, "answers in the student edition:\n" + "\n".join(leaks)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_stored_outputs_of_both_editions(chapter: str, lang: str) -> None:
    def answer_outputs(folder: Path) -> dict[str, str]:
        nb = nbformat.read(_notebook(folder, chapter, lang), as_version=4)
        return {c.metadata["nbgrader"]["grade_id"]:
                "".join(o.get("text", "") for o in c.get("outputs", []))
                for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}

    instructor, student = answer_outputs(LABS), answer_outputs(STUDENT)
    assert instructor.keys() == student.keys()
    for gid, out in instructor.items():
        assert out.startswith(CORRECT[lang]), f"labs/{chapter} ({lang}): {gid} printed {out!r}"
    for gid, out in student.items():
        assert out.startswith(UNANSWERED[lang]), \
            f"labs-student/{chapter} ({lang}): {gid} printed {out!r}"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_edition_is_current(chapter: str, lang: str) -> None:
    """Every cell the same as the instructor edition's, but the answers and hidden tests."""
    src = nbformat.read(_notebook(LABS, chapter, lang), as_version=4).cells
    rel = nbformat.read(_notebook(STUDENT, chapter, lang), as_version=4).cells
    assert len(src) == len(rel), f"labs-student/{chapter} ({lang}) is stale: run `make editions`"
    for a, b in zip(src, rel, strict=True):
        meta = a.metadata.get("nbgrader", {})
        if meta.get("solution"):
            expected = SOLUTION.sub("answer = ...  # your answer", a.source)
        elif meta.get("grade"):
            expected = re.sub(r"\n?### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "",
                              a.source, flags=re.DOTALL)
        else:
            expected = a.source
        assert b.source.strip() == expected.strip(), \
            f"labs-student/{chapter} is stale at {a.source[:60]!r}: run `make editions`"


def test_every_exemption_is_needed() -> None:
    """An exemption whose value no longer appears must go (it would hide a future leak)."""
    for (chapter, value), why in EXEMPT.items():
        assert why and any(_answers(chapter)) and value in [v for _, v, _ in _answers(chapter)]
        files = _student_files(chapter).values()
        assert any(_pattern(f).search(t) for t in files for f in _forms(value)), \
            f"({chapter!r}, {value!r}) no longer appears: remove its exemption"
