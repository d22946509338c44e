"""The chapters' text sources and their Spanish and Portuguese editions (issue 16).

Each chapter's source is ``labs/NN-name/NN-name.md``, a MyST Markdown notebook that
jupytext pairs with ``NN-name.ipynb`` (which holds the stored outputs nbval checks);
``NN-name.es.md`` and ``NN-name.pt.md`` are its translations, next to it. These tests
check what a translator must keep:

- every ``.md`` and its ``.ipynb`` hold the same cells (run ``make notebooks`` after
  editing a source);
- a translation has the English chapter's cells, in order, with the same metadata
  (nbgrader's ids and points, nbval's tags); its code cells are the English ones, but for
  comments, the ``set_language`` call that starts the first one, and the cells tagged
  ``translate`` (prose kept as data, like chapter 10's glossary);
- its prose is translated (not a copy of the English) and its links go to the same
  language's chapters.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
CHAPTERS = sorted(p.parent.name for p in LABS.glob("[0-9][0-9]-*/*.md")
                  if p.stem == p.parent.name)
TRANSLATIONS = ("es", "pt")
SET_LANGUAGE = re.compile(r'^from xenlab\.i18n import set_language\nset_language\("(\w\w)"\)\n')


def _source(chapter: str, lang: str = "en") -> Path:
    suffix = "" if lang == "en" else f".{lang}"
    return LABS / chapter / f"{chapter}{suffix}.md"


def _code(text: str) -> str:
    """A code cell without its comments (magics and shell lines kept as they are)."""
    lines = text.split("\n")
    masked = ["pass" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(masked) + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return text
    kept = [t for t in tokens if t.type != tokenize.COMMENT]
    out = tokenize.untokenize((t.type, t.string) for t in kept)
    return re.sub(r"\s+", " ", out).strip() + "|" + "|".join(
        ln for ln in lines if ln.lstrip().startswith(("%", "!")))


def test_every_chapter_has_a_text_source() -> None:
    notebooks = sorted(p.parent.name for p in LABS.glob("[0-9][0-9]-*/*.ipynb")
                       if p.stem == p.parent.name)
    assert notebooks and notebooks == CHAPTERS


@pytest.mark.parametrize("lang", ["en", *TRANSLATIONS])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_source_and_notebook_hold_the_same_cells(chapter: str, lang: str) -> None:
    import nbformat

    md = _source(chapter, lang)
    if lang != "en" and not md.exists():
        pytest.fail(f"{md.relative_to(ROOT)} is missing")
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.relative_to(ROOT)} is missing: run make notebooks"
    a, b = jupytext.read(md), nbformat.read(ipynb, as_version=4)
    stale = f"{ipynb.relative_to(ROOT)} is older than its source: run make notebooks"
    assert [(c.cell_type, c.source) for c in a.cells] == \
           [(c.cell_type, c.source) for c in b.cells], stale
    for x, y in zip(a.cells, b.cells, strict=True):
        assert dict(x.metadata) == {k: v for k, v in y.metadata.items() if k != "execution"}, \
            stale


@pytest.mark.parametrize("lang", TRANSLATIONS)
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_translation_keeps_the_chapters_cells(chapter: str, lang: str) -> None:
    md = _source(chapter, lang)
    if not md.exists():
        pytest.fail(f"{md.relative_to(ROOT)} is missing")
    en, tr = jupytext.read(_source(chapter)).cells, jupytext.read(md).cells
    assert [c.cell_type for c in tr] == [c.cell_type for c in en], "cells added or removed"
    first = True
    for i, (e, t) in enumerate(zip(en, tr, strict=True)):
        assert dict(t.metadata) == dict(e.metadata), f"cell {i}: metadata differ"
        if e.cell_type != "code":
            continue
        src = t.source
        if first:
            m = SET_LANGUAGE.match(src)
            assert m and m.group(1) == lang, \
                f'cell {i}: the first code cell starts with set_language("{lang}")'
            src, first = src[m.end():], False
        if "translate" in e.metadata.get("tags", []):
            continue
        assert _code(src) == _code(e.source), f"cell {i}: code differs from the English"


@pytest.mark.parametrize("lang", TRANSLATIONS)
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_translation_is_translated_and_links_its_own_language(chapter: str,
                                                                 lang: str) -> None:
    md = _source(chapter, lang)
    if not md.exists():
        pytest.fail(f"{md.relative_to(ROOT)} is missing")
    en = [c.source for c in jupytext.read(_source(chapter)).cells if c.cell_type == "markdown"]
    tr = [c.source for c in jupytext.read(md).cells if c.cell_type == "markdown"]
    same = [s for s, e in zip(tr, en, strict=True) if s == e and len(s.split()) > 6]
    assert not same, f"untranslated: {same[0][:80]!r}"
    for target in re.findall(r"\]\(([^)#\s]+\.ipynb)", "\n".join(tr)):
        path = (md.parent / target).resolve()
        assert path.exists(), f"link to {target}: no such notebook"
        switch = path.stem.split(".")[0] == "00-start-here"   # the start page's languages
        if path.parent.parent == LABS and not switch:
            assert path.name.endswith(f".{lang}.ipynb"), f"link to {target}: not in {lang}"
