"""Build the course website in English, Spanish and Portuguese (``make site``).

Each language's site is built by Sphinx with myst-nb (``docs/site/conf.py``) from the
student edition's stored notebooks (``labs-student/NN/NN.ipynb``, ``NN.es.ipynb``,
``NN.pt.ipynb``): the outputs and figures as nbval checked them, nothing re-executed,
no answers. Around them this script writes an index per language (the table of
contents and links to the other languages) and a glossary page made from chapter 10's
glossary in that language; after the build it links the first mention of each glossary
term on every chapter page to its entry, writes ``index.html`` at the top to choose a
language, and checks that every internal link and image of the site resolves. Sphinx
runs with warnings as errors.

Every page has launch buttons (sphinx-book-theme): Binder, and a JupyterHub when
``XENLAB_JUPYTERHUB_URL`` is set (``XENLAB_BINDERHUB_URL``, ``XENLAB_REPOSITORY_URL``
change the others).

    .venv/bin/python tools/build_site.py                 # build/site/{en,es,pt}/
    .venv/bin/python tools/build_site.py --lang es --out /tmp/site
"""

from __future__ import annotations

import argparse
import ast
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "labs-student"
LABS = ROOT / "labs"
CONF = ROOT / "docs" / "site"
LANGUAGES = {"en": "English", "es": "Español", "pt": "Português"}
TEXT = {
    "en": ("xenlab: Xen, hands on", "The chapters of the course, with their outputs as a run "
           "prints them. Each page opens as a notebook on Binder (the rocket button) to run "
           "and change it.", "Chapters", "Glossary",
           "The words of the course, from chapter 10."),
    "es": ("xenlab: Xen en la práctica", "Los capítulos del curso, con sus salidas tal como "
           "las imprime una ejecución. Cada página se abre como notebook en Binder (el botón "
           "del cohete) para ejecutarla y modificarla.", "Capítulos", "Glosario",
           "Las palabras del curso, del capítulo 10."),
    "pt": ("xenlab: Xen na prática", "Os capítulos do curso, com as saídas como uma execução "
           "as imprime. Cada página abre como notebook no Binder (o botão do foguete) para "
           "executá-la e modificá-la.", "Capítulos", "Glossário",
           "As palavras do curso, do capítulo 10."),
}


class SiteError(Exception):
    """The site cannot be built as it should (one line)."""


def suffix(lang: str) -> str:
    return "" if lang == "en" else f".{lang}"


def chapters() -> list[str]:
    return sorted(p.parent.name for p in STUDENT.glob("[0-9][0-9]-*/*.ipynb")
                  if p.stem == p.parent.name)


def glossary(lang: str) -> list[tuple[str, str]]:
    """Chapter 10's GLOSSARY, in ``lang``, read from its source (the cell is data)."""
    import jupytext
    src = LABS / "10-glossary" / f"10-glossary{suffix(lang)}.md"
    for cell in jupytext.read(src).cells:
        if cell.cell_type == "code" and "GLOSSARY = [" in cell.source:
            body = "\n".join(ln for ln in cell.source.splitlines()
                             if not ln.lstrip().startswith(("%", "!")))
            for node in ast.parse(body).body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == \
                        "GLOSSARY":
                    return [(str(t), str(d)) for t, d in ast.literal_eval(node.value)]
    raise SiteError(f"{src}: no GLOSSARY cell")


def make_source(lang: str, dest: Path, langs: list[str] | None = None) -> list[str]:
    """The Sphinx source folder of one language; returns the chapters' docnames."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    docs = []
    for chapter in chapters():
        nb = STUDENT / chapter / f"{chapter}{suffix(lang)}.ipynb"
        if not nb.exists():
            raise SiteError(f"{nb.relative_to(ROOT)} is missing: run make editions")
        (dest / chapter).mkdir()
        _copy_notebook(nb, dest / chapter / nb.name, lang, langs or list(LANGUAGES))
        docs.append(f"{chapter}/{nb.stem}")
    title, intro, chap, glos, glos_intro = TEXT[lang]
    others = " · ".join(f'<a href="../{code}/index.html" hreflang="{code}">{name}</a>'
                        if code != lang else f"*{name}*" for code, name in LANGUAGES.items()
                        if code in (langs or LANGUAGES))
    toc = "\n".join(docs)
    (dest / "index.md").write_text(
        f"# {title}\n\n{others}\n\n{intro}\n\n```{{toctree}}\n:caption: {chap}\n:maxdepth: 1\n\n"
        f"{toc}\nglossary\n```\n", encoding="utf-8")
    (dest / "glossary.md").write_text(
        f"# {glos}\n\n{glos_intro}\n\n```{{glossary}}\n{_glossary_block(lang)}```\n",
        encoding="utf-8")
    return docs


# a link from a chapter to a notebook of another language (the start page's "English ·
# Español · Português" line): [text](path/NN-name.es.ipynb)
_OTHER_LANGUAGE = re.compile(
    r"\[([^\]]+)\]\((?:\.\./)?(?:([0-9]{2}-[\w-]+)/)?([0-9]{2}-[\w-]+?)(?:\.(es|pt))?\.ipynb\)")


def _copy_notebook(nb: Path, dest: Path, lang: str, langs: list[str]) -> None:
    """The notebook as stored, but links to another language's notebook lead to that
    language's page (its own site), or are plain text when that site is not built."""
    import nbformat
    book = nbformat.read(nb, as_version=4)

    def relink(m: re.Match[str]) -> str:
        text, chapter, other = m.group(1), m.group(3), m.group(4) or "en"
        if other == lang:
            return m.group(0)
        if other not in langs:
            return text
        return (f'<a href="../../{other}/{chapter}/{chapter}{suffix(other)}.html" '
                f'hreflang="{other}">{text}</a>')

    for cell in book.cells:
        if cell.cell_type == "markdown":
            cell.source = _OTHER_LANGUAGE.sub(relink, cell.source)
    nbformat.write(book, dest)


def _glossary_block(lang: str) -> str:
    out = []
    for term, definition in glossary(lang):
        out.append(f"{term}\n   {definition}\n")
    return "\n".join(out)


def sphinx(lang: str, src: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                           "-b", "html", "-c", str(CONF), "-D", f"language={lang}",
                           str(src), str(out)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SiteError(f"sphinx ({lang}) failed:\n{done.stderr.strip()[-3000:]}")


_SKIP = {"a", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "script", "style",
         "button", "label", "title", "kbd", "span"}


def link_glossary(out: Path, docs: list[str]) -> int:
    """Link the first mention of each glossary term on every chapter page to its entry
    (glossary.html#term-...); returns how many links were made."""
    page = (out / "glossary.html").read_text(encoding="utf-8")
    ids = {html.unescape(re.sub(r"<[^>]+>", "", text)).strip(): anchor for anchor, text in
           re.findall(r'<dt id="(term-[^"]+)">(.*?)<a class="headerlink"', page, re.S)}
    terms: list[tuple[re.Pattern[str], str]] = []
    for term, anchor in ids.items():
        for name in {term, term.split(" (")[0]} | set(re.findall(r"\(([^)]+)\)", term)):
            if len(name) > 2:
                terms.append((re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])"), anchor))
    terms.sort(key=lambda t: -len(t[0].pattern))
    made = 0
    for doc in docs:
        path = out / f"{doc}.html"
        text = path.read_text(encoding="utf-8")
        start, end = text.find("<article"), text.rfind("</article>")
        if start < 0 or end < 0:
            continue
        parts = re.split(r"(<[^>]+>)", text[start:end])
        stack: list[str] = []
        linked: set[str] = set()
        prefix = "../" * doc.count("/")
        for i, part in enumerate(parts):
            if part.startswith("<"):
                m = re.match(r"<(/?)([a-zA-Z0-9]+)", part)
                if m and m.group(2).lower() in _SKIP and not part.endswith("/>"):
                    if m.group(1):
                        if stack and stack[-1] == m.group(2).lower():
                            stack.pop()
                    else:
                        stack.append(m.group(2).lower())
                continue
            if stack or not part.strip():
                continue
            for pattern, anchor in terms:
                if anchor in linked:
                    continue
                hit = pattern.search(part)
                if hit:
                    part = (part[:hit.start()] + f'<a class="glossary-term" href="{prefix}'
                            f'glossary.html#{anchor}">{hit.group(0)}</a>' + part[hit.end():])
                    linked.add(anchor)
                    made += 1
                    break          # one link per text segment: offsets stay simple
            parts[i] = part
        path.write_text(text[:start] + "".join(parts) + text[end:], encoding="utf-8")
    return made


def broken_links(site: Path) -> list[str]:
    """Every relative href/src of the site's pages that does not resolve to a file."""
    bad = []
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.parts:         # the theme's templates, not pages
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        for url in re.findall(r'(?:href|src)="([^"]+)"', text):
            parts = urlsplit(html.unescape(url))
            if parts.scheme or parts.netloc or not parts.path or url.startswith("#"):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.exists():
                bad.append(f"{page.relative_to(site)}: {url}")
    return bad


def build(out: Path, langs: list[str]) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    made = {}
    for lang in langs:
        src = out.parent / f".site-src-{lang}"
        docs = make_source(lang, src, langs)
        sphinx(lang, src, out / lang)
        made[lang] = link_glossary(out / lang, docs)
        shutil.rmtree(src)
    links = "\n".join(f'<li><a href="{code}/index.html" hreflang="{code}">{name}</a></li>'
                      for code, name in LANGUAGES.items() if code in langs)
    (out / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>xenlab</title></head>\n<body><h1>xenlab</h1>\n<p>Xen, hands on · Xen en la "
        f"práctica · Xen na prática</p>\n<ul>\n{links}\n</ul></body></html>\n",
        encoding="utf-8")
    bad = broken_links(out)
    if bad:
        raise SiteError(f"{len(bad)} broken internal links, e.g. {bad[0]}")
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "site"), help="output folder")
    parser.add_argument("--lang", default="en,es,pt", help="languages, comma-separated")
    args = parser.parse_args(argv)
    langs = [x.strip() for x in args.lang.split(",") if x.strip()]
    unknown = [x for x in langs if x not in LANGUAGES]
    if unknown:
        parser.error(f"no language {unknown[0]!r}; the site is in {', '.join(LANGUAGES)}")
    try:
        made = build(Path(args.out).resolve(), langs)
    except SiteError as e:
        print(f"build_site: {e}", file=sys.stderr)
        return 1
    for lang, n in made.items():
        print(f"build_site: {lang}: {n} glossary links")
    print(f"build_site: {Path(args.out).resolve() / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
