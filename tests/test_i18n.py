"""The Spanish and Portuguese exercise tables (xenlab/locale/es.py, pt.py, xenlab.i18n).

Every reply has the English keys and {placeholders}; every exercise of the catalogue is
translated, builds and shows in each language, keeps its options and its answer (the
same digest, the same right letters), and a wrong answer is told so with the translated
prefix and hint.
"""

from __future__ import annotations

import importlib
import string
from collections.abc import Iterator
from typing import Any

import pytest
from pytest import CaptureFixture

from xenlab import i18n
from xenlab.exercises import BOOT_STEPS, CATALOGUE, LETTERS, Exercise, exercise
from xenlab.i18n import set_language, tr

TRANSLATED = ("es", "pt")
GLOSSARY = [("A", "x"), ("B", "y"), ("C", "z"), ("D", "w")]
KEYS = {"question", "hint", "explanation", "options", "option_hints", "option_hint"}


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    yield
    set_language("en")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _build(ex_id: str, lang: str) -> Exercise:
    set_language(lang)
    return exercise(ex_id, glossary=GLOSSARY) if ex_id == "10.1" else exercise(ex_id)


def _wrong(ex: Exercise) -> Any:
    """An answer the exercise judges wrong (and can read)."""
    by_kind: dict[str, list[Any]] = {"choice": list(LETTERS[: len(ex.options)]),
                                     "state": list("rbpscd"), "number": [-987654321],
                                     "name": ["not-an-answer"], "order": ["a"]}
    candidates = by_kind[ex.kind]
    return next(c for c in candidates if not ex.correct(c))


@pytest.mark.parametrize("lang", TRANSLATED)
def test_messages_have_the_english_keys_and_placeholders(lang: str) -> None:
    table = importlib.import_module(f"xenlab.locale.{lang}")
    assert set(table.MESSAGES) == set(i18n.MESSAGES)
    for key, english in i18n.MESSAGES.items():
        text = table.MESSAGES[key]
        assert text != english, key
        assert _fields(text) == _fields(english), key
        assert text.startswith(" ") == english.startswith(" "), key
        assert text.endswith(" ") == english.endswith(" "), key    # "Correct: " + ...
    assert any(key.startswith("hx_") for key in table.MESSAGES)    # xenlab.handson's too


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_exercise_is_translated(lang: str) -> None:
    table = importlib.import_module(f"xenlab.locale.{lang}")
    assert set(table.EXERCISES) == set(CATALOGUE)
    for ex_id, texts in table.EXERCISES.items():
        assert set(texts) <= KEYS and "question" in texts, ex_id
        english = _build(ex_id, "en")
        assert ("explanation" in texts) == bool(english.explanation), ex_id
        if "option_hints" in texts:
            assert set(texts["option_hints"]) == set(english.option_hints), ex_id
    assert set(table.EXERCISES["7.1"]["options"]) == set(BOOT_STEPS)
    assert _fields(table.EXERCISES["10.1"]["option_hint"]) == {"term", "definition"}


@pytest.mark.parametrize("lang", TRANSLATED)
@pytest.mark.parametrize("ex_id", list(CATALOGUE))
def test_exercise_asks_and_judges_in_the_language(lang: str, ex_id: str,
                                                  capsys: CaptureFixture[str]) -> None:
    english = _build(ex_id, "en")
    ex = _build(ex_id, lang)
    shown = ex.text()
    assert shown.startswith(tr("exercise", ex_id=ex_id)) and ex.question in shown
    assert ex.question != english.question and "{" not in ex.question
    assert len(ex.options) == len(english.options)
    assert ex.digest == english.digest
    if ex.kind == "choice":
        right = [c for c in LETTERS[: len(ex.options)] if ex.correct(c)]
        assert right == [c for c in LETTERS[: len(english.options)] if english.correct(c)]
        assert len(right) == 1
        assert ex.correct(ex.options[LETTERS.index(right[0])])   # its translated text
    wrong = _wrong(english)
    assert not ex.correct(wrong)
    capsys.readouterr()
    assert ex.check(wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(tr("not_it", shown="", note="").split(" ")[0])
    hint = ex.option_hints.get(wrong, ex.hint) if ex.kind == "choice" else ex.hint
    english_hint = (english.option_hints.get(wrong, english.hint) if ex.kind == "choice"
                    else english.hint)
    assert tr("hint", hint=hint) in out and hint != english_hint


@pytest.mark.parametrize("lang", TRANSLATED)
def test_unreadable_answer_and_placeholder_are_translated(lang: str,
                                                          capsys: CaptureFixture[str]) -> None:
    ex = _build("0.1", lang)
    assert not ex.check("ocho mil")
    out = capsys.readouterr().out
    assert out.startswith(tr("not_quite", note="").split(" ")[0])
    assert tr("hint", hint=ex.hint) in out and "Hint" not in out
    assert not ex.check(...)
    assert capsys.readouterr().out.startswith(tr("not_answered", format="").split(" ")[0])


@pytest.mark.parametrize("lang", TRANSLATED)
def test_seeded_placeholders_are_filled(lang: str) -> None:
    for seed in range(20):
        set_language(lang)
        ex = exercise("6.1", seed=seed)
        port = ex.params["port"]
        assert port in ex.question and port in ex.hint and f" {seed})" in ex.question
        assert '"xen"' in ex.question and '"dm"' in ex.question
    ex10 = _build("10.1", lang)
    assert ex10.question.endswith("\n  " + ex10.params["meaning"])
    for letter, hint in ex10.option_hints.items():
        term = ex10.options[LETTERS.index(letter)]
        assert term in hint and dict(GLOSSARY)[term] in hint


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        set_language("xx")
    assert i18n.language() == "en"
