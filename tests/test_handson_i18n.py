"""xenlab.handson in Spanish and Portuguese: every verdict, hint and error a hands-on
checker shows goes through ``tr`` (the ``hx_`` messages of xenlab.i18n and
xenlab/locale/es.py, pt.py), looked up when the check runs; what Xen and xl print stays
as they print it. English is tests/test_handson.py's (the notebooks store it)."""

from __future__ import annotations

import ast
import importlib
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xenlab import handson as H
from xenlab import i18n
from xenlab.i18n import set_language, tr

HANDSON = Path(H.__file__)
TRANSLATED = ("es", "pt")
#: The prefixes of a verdict, per language: right, wrong, still the placeholder.
PREFIXES = {"en": ("Correct: ", "Not yet: ", "Not answered yet: "),
            "es": ("Correcto: ", "Aún no: ", "Aún sin responder: "),
            "pt": ("Correto: ", "Ainda não: ", "Ainda sem resposta: ")}
#: What each language's xl session check says when the goal is reached.
SESSION_RIGHT = {"en": "xl list now shows web ------, db --p---, mail gone.",
                 "es": "xl list muestra ahora web ------, db --p---, mail ya no está.",
                 "pt": "o xl list agora mostra web ------, db --p---, mail não existe mais."}
#: The calls whose first argument is what the student reads.
SHOWN = {"_right", "_wrong", "XenlabError"}
#: The calls whose first argument is a message key.
KEYED = {"_guarded", "_need_str"}


Language = Callable[[str], None]


@pytest.fixture
def language() -> Iterator[Language]:
    """``set_language`` for one test; English again afterwards, whatever happens."""
    try:
        yield set_language
    finally:
        set_language("en")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _hx() -> dict[str, str]:
    return {k: v for k, v in i18n.MESSAGES.items() if k.startswith("hx_")}


# ---------------------------------------------------------------- the tables
@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_hx_message_is_translated_with_its_placeholders(lang: str) -> None:
    table = importlib.import_module(f"xenlab.locale.{lang}").MESSAGES
    english = _hx()
    assert len(english) > 100
    assert {k for k in table if k.startswith("hx_")} == set(english)
    for key, text in english.items():
        assert table[key] != text, key
        assert _fields(table[key]) == _fields(text), key
        assert table[key].startswith(" ") == text.startswith(" "), key
        assert table[key].endswith(" ") == text.endswith(" "), key


@pytest.mark.parametrize("lang", [*TRANSLATED, "en"])
def test_prefixes_match_the_exercises_wording(lang: str, language: Language) -> None:
    language(lang)
    assert (tr("hx_correct"), tr("hx_not_yet"), tr("hx_not_answered")) == PREFIXES[lang]
    assert tr("correct", shown="", note="").startswith(tr("hx_correct").rstrip())
    assert tr("not_answered", format="").startswith(tr("hx_not_answered").rstrip())


def test_every_hx_key_is_used_and_every_used_key_exists() -> None:
    used = set(re.findall(r'"(hx_\w+)"', HANDSON.read_text(encoding="utf-8")))
    assert used == set(_hx())


# ---------------------------------------------------------------- no English left over
def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_tr(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
        node.func.id == "tr"


def _inside_tr(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if _is_tr(node):
            return True
    return False


def _name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else \
        call.func.attr if isinstance(call.func, ast.Attribute) else ""


def _text_outside_tr(node: ast.AST) -> list[str]:
    """The literal text in ``node`` that is not inside a tr(...) call."""
    if _is_tr(node):
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if re.search(r"[A-Za-z]", node.value) else []
    return [t for child in ast.iter_child_nodes(node) for t in _text_outside_tr(child)]


def _untranslated_calls(source: str) -> list[tuple[int, str]]:
    """Text shown to the student (_right, _wrong, XenlabError) outside tr(...), and
    message keys (_guarded, _need_str) that are not keys."""
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and n.args]
    left = [(c.lineno, t) for c in calls if _name(c) in SHOWN
            for t in _text_outside_tr(c.args[0])]
    return left + [(c.lineno, ast.unparse(c.args[0])) for c in calls if _name(c) in KEYED
                   and not (isinstance(c.args[0], ast.Constant)
                            and c.args[0].value in i18n.MESSAGES)]


def _sentences(source: str) -> list[tuple[str, int, str]]:
    """Three words in a row in a string of a function body are a sentence for the student
    unless they are matched against what Xen printed (a comparison) or are a default
    argument (the text the guest prints): anything else must be a tr(...) message."""
    tree = ast.parse(source)
    parents = _parents(tree)
    left = []
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        doc = ast.get_docstring(func, clean=False)
        for node in ast.walk(func):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if node.value == doc or _inside_tr(node, parents):
                continue
            if isinstance(parents[node], (ast.Compare, ast.arguments)):
                continue
            if re.search(r"[A-Za-z]+ [A-Za-z]+ [A-Za-z]+", node.value) and \
                    not node.value.lstrip().startswith("."):       # assembly
                left.append((func.name, node.lineno, node.value))
    return left


def test_the_scans_find_english_left_over() -> None:
    leftovers = '''
def check(x):
    """A docstring is not shown."""
    if "not a frame of the domain" in x:
        hint = " Only the low flag bits may be set."
        return _wrong(f"mmu_update returned {x} ({tr('hx_refused')}).{hint}")
    _need_str("the code", x)
    raise XenlabError("the expected text must be short")
'''
    assert sorted(line for line, _ in _untranslated_calls(leftovers)) == [6, 7, 8]
    assert sorted(line for _, line, _ in _sentences(leftovers)) == [5, 8]


def test_what_the_student_reads_goes_through_tr() -> None:
    source = HANDSON.read_text(encoding="utf-8")
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args]
    shown = [c for c in calls if _name(c) in SHOWN]
    keyed = [c for c in calls if _name(c) in KEYED]
    assert len(shown) > 60 and len(keyed) > 12
    left = _untranslated_calls(source)
    assert not left, f"untranslated text in handson.py: {left}"
    # a sentence of its own is a tr(...) call; what is not passes along a message made
    # elsewhere (an XenlabError's text, _screen_hint's) or adds one to a tr(...)
    assert sum(_is_tr(c.args[0]) for c in shown) > 55


def test_no_english_sentence_left_in_handson_code() -> None:
    assert not _sentences(HANDSON.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- real checks
@pytest.mark.parametrize("lang", ["es", "pt"])
def test_checkers_answer_in_the_language(lang: str, language: Language) -> None:
    right, wrong, unanswered = PREFIXES[lang]
    language(lang)
    placeholder = str(H.check_xl_session(...))
    assert placeholder == unanswered + tr("hx_session_hint")
    assert H.check_boot_sector.hint == tr("hx_boot_hint") != i18n.MESSAGES["hx_boot_hint"]
    assert str(H.check_boot_sector(None)) == unanswered + H.check_boot_sector.hint
    assert str(H.check_xl_session([1, 2])) == wrong + tr("hx_session_not_a_list")
    assert str(H.check_xl_config(42)) == wrong + tr("hx_need_str", what=tr("hx_the_config"),
                                                     type="int")
    session = H.check_xl_session(["unpause web", "destroy mail"])
    assert session.ok and str(session) == right + SESSION_RIGHT[lang]
    listed = str(H.check_xl_session(["unpause web"]))
    assert listed == wrong + tr("hx_session_still_listed", name="mail", state="--p---")
    # xl's own error line is shown as xl prints it, inside the translated sentence
    failed = str(H.check_xl_session(["unpause wbe"]))
    assert failed.startswith(wrong + "`xl unpause wbe` ")
    assert failed.endswith(": 'wbe' is an invalid domain identifier (rc=-6)")
    assert " failed: " not in failed


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_the_language_is_read_when_the_check_runs(lang: str, language: Language,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    ex = H.HandsOn("9.3", H.check_xl_session)
    language(lang)
    assert ex.check(...) is False
    assert capsys.readouterr().out.startswith(PREFIXES[lang][2])
    language("en")
    assert str(H.check_xl_session(...)).startswith("Not answered yet: a list of xl command")
    assert H.check_boot_sector.hint.startswith("write 16-bit code")


def test_a_frontend_step_is_told_in_the_language(language: Language) -> None:
    """The stand-in's own errors and log are translated; Python's exception text is not."""
    def crash(fe: H.FrontendStandIn) -> None:
        raise ZeroDivisionError("division by zero")

    def typo(fe: H.FrontendStandIn) -> None:
        fe.grant_access(0, "12")  # type: ignore[arg-type]

    language("es")
    assert str(H.check_frontend_step(crash)) == \
        "Aún no: tu paso lanzó ZeroDivisionError: division by zero"
    assert str(H.check_frontend_step(typo)) == \
        "Aún no: grant_access: pfn debe ser un número entero, no '12'"
    language("pt")
    assert str(H.check_frontend_step(lambda fe: None)) == (
        "Ainda não: o blkback ainda está no estado 2 (InitWait): ele age quando o nó state "
        "do frontend diz 3 (Initialised). Você fez: nada.")
