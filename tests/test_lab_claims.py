"""The labs' checkable claims agree with a run (issue 15 item 5).

Approach, chosen to stay right when the code changes: a count or state a run can
produce is not typed into the prose; the notebook's code cell prints it from the run
(chapter 04's "N rounds: N timers, M blocks" is an f-string of the trace's counts). So
the tests check (1) that the chapters' markdown holds no hard-coded count of those
things (a number word or digits before "timers"/"blocks"/"rounds" in a markdown cell),
(2) that what the prose still says in words holds for a run (more blocks than timers is
possible, never fewer; PVH and PV GRUB guests ship and run), and (3) that statements
found wrong once stay gone: PVH "does not run yet", `xl` the default "since Xen 4.1"
(it was 4.2), Xen source paths that moved (``xen/include/asm-x86/`` is
``xen/arch/x86/include/asm/`` since Xen 4.17), in the labs' sources, the README,
ARCHITECTURE.md and every module docstring.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from xenlab.lab import IMAGES, Lab

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "labs").glob("[0-9][0-9]-*/*.md"))   # the chapters, every language
NUMBER = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"


def _markdown(path: Path) -> list[str]:
    """The text of every markdown cell of a chapter's source."""
    import jupytext
    return [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]


def _sources() -> dict[str, str]:
    files = [*SOURCES, ROOT / "README.md", ROOT / "ARCHITECTURE.md",
             ROOT / "labs" / "README.md", ROOT / "labs" / "INSTRUCTORS.md",
             *sorted((ROOT / "xenlab").rglob("*.py"))]
    return {str(p.relative_to(ROOT)): p.read_text() for p in files if p.exists()}


@pytest.mark.parametrize(("pattern", "why"), [
    (r"does not run (?:it |PVH )?yet", "PVH (images/pvh-grub.cfg) and PV GRUB run"),
    (r"default since Xen 4\.1\b", "xl became the default toolstack in Xen 4.2"),
    (r"xen/include/asm-x86/", "moved to xen/arch/x86/include/asm/ in Xen 4.17"),
])
def test_stale_statements_stay_gone(pattern: str, why: str) -> None:
    hits = [f"{name}: {m.group(0)!r}" for name, text in _sources().items()
            for m in re.finditer(pattern, text)
            # a sentence that names the old path as the old one is fine, in any language
            if not re.search(r"(?:before|antes de|antes do)[\s>]+Xen[\s>]+4\.17",
                             text[max(0, m.start() - 80):m.end() + 80])]
    assert hits == [], why


def test_no_hard_coded_run_counts_in_the_prose() -> None:
    counted = re.compile(rf"\b{NUMBER}\s+(?:timers|blocks|rounds|yields)\b", re.I)
    hits = [f"{p.name}: {m.group(0)!r}" for p in SOURCES for cell in _markdown(p)
            for m in counted.finditer(cell)]
    assert hits == [], "print the count from the run instead"


def test_chapter_04_prints_its_counts_from_the_run_and_its_words_hold() -> None:
    src = (ROOT / "labs" / "04-paravirtualization" / "04-paravirtualization.md").read_text()
    assert 'print(f"{timers} rounds: {timers} timers, {blocks} blocks' in src
    lab = Lab()
    lab.xl_output(f"create {IMAGES / 'pv-spin.cfg'}")
    lab.run()
    spin = lab.domain("pv-spin").domid
    calls = Counter(f"{r.name}:{r.args.get('cmd', '')}".rstrip(":")
                    for r in lab.trace.select(kind="hypercall", dom=spin))
    # "there can be more blocks than timers": one per timer at least
    assert calls["sched_op:SCHEDOP_block"] >= calls["set_timer_op"] > 0


def test_the_guest_types_the_labs_say_run_are_shipped() -> None:
    """Chapter 08 boots PVH GRUB and the README PV GRUB: their configs ship with the
    type they claim."""
    for cfg, kind in (("pvh-grub.cfg", "pvh"), ("pv-grub.cfg", "pv")):
        text = (IMAGES / cfg).read_text()
        assert re.search(rf'^type\s*=\s*"{kind}"', text, re.M), cfg
