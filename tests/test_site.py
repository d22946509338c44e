"""The course website (``make site``, tools/build_site.py), built in three languages.

Built once for the module from the stored student notebooks, as CI builds it (Sphinx
with warnings as errors, every internal link and image checked by the build). The tests
read what the site holds, page by page, and a real browser (Debian's chromium through
playwright) opens one chapter per language and sees its outputs and figures.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("sphinx_book_theme")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
LANGS = ("en", "es", "pt")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    made = build_site.build(out, list(LANGS))
    assert all(n > 20 for n in made.values()), made      # glossary links on the pages
    return out


def _page(site: Path, lang: str, chapter: str) -> str:
    name = f"{chapter}{build_site.suffix(lang)}.html"
    return (site / lang / chapter / name).read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_chapter_is_a_page_in_every_language(site: Path) -> None:
    top = (site / "index.html").read_text(encoding="utf-8")
    for lang in LANGS:
        assert f'href="{lang}/index.html"' in top
        index = (site / lang / "index.html").read_text(encoding="utf-8")
        assert f'<html lang="{lang}"' in index
        for chapter in build_site.chapters():
            page = _page(site, lang, chapter)
            assert f'<html lang="{lang}"' in page
        assert (site / lang / "glossary.html").exists()
    assert build_site.broken_links(site) == []


@pytest.mark.slow
def test_pages_show_the_stored_outputs_and_figures_and_launch_their_notebook(site: Path) -> None:
    for lang in LANGS:
        page = _page(site, lang, "05-split-drivers")
        assert page.count("cell_output") > 5
        figures = re.findall(r'<img[^>]+src="(\.\./_images/[^"]+\.png)"', page)
        assert figures and all((site / lang / "05-split-drivers" / f).resolve().stat().st_size
                               > 1000 for f in figures)
        nb = f"labs-student/05-split-drivers/05-split-drivers{build_site.suffix(lang)}.ipynb"
        assert f"mybinder.org/v2/gh/xenlab/xenlab/main?urlpath=lab/tree/{nb}" in page
        assert (ROOT / nb).exists()
    # what the student edition prints, translated where xenlab speaks: the exercises
    assert "Not answered yet" in _page(site, "en", "03-dom0-and-domus")
    assert "Not answered yet" not in _page(site, "es", "03-dom0-and-domus")


@pytest.mark.slow
def test_the_glossary_is_cross_linked_in_each_language(site: Path) -> None:
    for lang in LANGS:
        glossary = (site / lang / "glossary.html").read_text(encoding="utf-8")
        anchors = set(re.findall(r'<dt id="(term-[^"]+)"', glossary))
        assert len(anchors) >= 15
        page = _page(site, lang, "05-split-drivers")
        linked = re.findall(r'class="glossary-term" href="\.\./glossary\.html#(term-[^"]+)"',
                            page)
        assert linked and set(linked) <= anchors
        assert len(linked) == len(set(linked))            # the first mention only


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install chromium")
def test_a_browser_sees_outputs_and_figures_in_each_language(site: Path, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            for lang in LANGS:
                name = f"05-split-drivers{build_site.suffix(lang)}.html"
                page.goto((site / lang / "05-split-drivers" / name).as_uri())
                assert page.evaluate("document.documentElement.lang") == lang
                shown = page.evaluate("""() => [...document.querySelectorAll(
                    'div.cell_output img')].filter(i => i.complete && i.naturalWidth > 100)
                    .length""")
                assert shown >= 1, lang
                outputs = page.locator("div.cell_output").count()
                assert outputs > 5, lang
                assert page.locator("a.glossary-term").count() > 3, lang
        finally:
            browser.close()
