"""The exercise checker: every rule of what an answer may look like (xenlab/exercises.py).

Numbers (ints, hex and numeric strings, said to be strings), names (case and spaces),
State letters (the xl list form), orderings (spaces, commas, lists), multiple choice
(letters, texts, a hint per wrong option, the options shown), placeholders ("Not answered
yet" and a hint, not recorded), odd types (never a traceback), and the catalogue (every
exercise builds, no answer kept in plain text).
"""

from __future__ import annotations

import re

import pytest
from pytest import CaptureFixture

from xenlab.exercises import (
    CATALOGUE,
    PORT_HANDLERS,
    Exercise,
    answer_digest,
    choice,
    exercise,
    seeded,
)

GLOSSARY = [("Dom0", "the privileged domain"), ("DomU", "an unprivileged domain"),
            ("hypercall", "a guest's call into Xen"), ("VM exit", "the processor leaves the guest"),
            ("grant table", "pages a domain shares")]


def _out(capsys: CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_numbers_accept_ints_hex_and_numeric_strings(capsys: CaptureFixture[str]) -> None:
    ex = exercise("8.1")                                  # the platform device's vendor id
    assert ex.check(0x5853) and "string" not in _out(capsys)
    for text in ("0x5853", "0X5853", " 22611 ", "22_611", "22,611"):
        assert ex.check(text), text
        assert "you gave a string" in _out(capsys)
    assert ex.check(22611.0)
    assert not ex.check("0x5854") and "Not quite" in _out(capsys)
    ex82 = exercise("8.2")
    assert ex82.check(-38) and ex82.check("-38") and not ex82.check(38)


def test_numbers_refuse_what_is_not_one(capsys: CaptureFixture[str]) -> None:
    ex = exercise("0.1")
    for bad, why in (("eight thousand", "is not a number"), (8192.5, "not a whole number"),
                     (True, "truth value"), ([8192], "is not a number"),
                     (float("nan"), "not a whole number")):
        assert not ex.check(bad)
        out = _out(capsys)
        assert why in out and "Hint: 32 MiB" in out and "Traceback" not in out


def test_names_ignore_case_and_spaces(capsys: CaptureFixture[str]) -> None:
    ex = exercise("3.1")
    for text in ("EACCES", "eacces", " EAcces ", "E ACCES"):
        assert ex.check(text), text
    assert not ex.check("EPERM") and "Hint:" in _out(capsys)
    assert not ex.check(13) and "is not a name" in _out(capsys)
    assert exercise("7.2").check("DM") and exercise("7.2").check(" dm")


def test_state_letters_accept_the_xl_list_form(capsys: CaptureFixture[str]) -> None:
    for ex_id in ("3.2", "9.2"):
        ex = exercise(ex_id)
        for text in ("p", "P", "--p---", "paused", " --p--- "):
            assert ex.check(text), (ex_id, text)
        assert not ex.check("-b----") and "xl list form" in _out(capsys)
        assert not ex.check("r") and not ex.check("--ps--") and not ex.check("x")
        assert not ex.check(None) and not ex.check(3)
        assert "Traceback" not in _out(capsys)


def test_orderings_accept_spaces_commas_and_lists(capsys: CaptureFixture[str]) -> None:
    ex = exercise("7.1")
    for given in ("dfgecab", "d f g e c a b", "D, F, G, E, C, A, B", "d->f->g->e->c->a->b",
                  list("dfgecab")):
        assert ex.check(given), given
    assert not ex.check("abcdefg") and "Hint: the trace" in _out(capsys)
    assert not ex.check("d f 7") and "letters only" in _out(capsys)
    assert not ex.check(1234) and "is not an order" in _out(capsys)


def test_order_options_shown_without_the_answer(capsys: CaptureFixture[str]) -> None:
    ex = exercise("7.1")
    ex.show()
    out = _out(capsys)
    assert "(a) INT 19h boot" in out and "(g) E820 table" in out
    assert "dfgecab" not in out.replace(" ", "") and "Correct" not in out


def test_choice_prints_options_and_a_hint_per_wrong_option(capsys: CaptureFixture[str]) -> None:
    for ex_id in ("6.3", "8.3", "9.1", "10.2"):         # the ones that never showed options
        ex = exercise(ex_id)
        ex.show()
        out = _out(capsys)
        assert "(a) " in out and "(d) " in out and "option's letter" in out, ex_id
    ex = exercise("9.1")
    wrong = {"a": "shutdown asks", "c": "destroy ends", "d": "save writes"}
    for letter, hint in wrong.items():
        assert not ex.check(letter)
        assert hint in _out(capsys), letter
    for given in ("b", "B", "(b)", "xl pause <domid>", "XL  PAUSE <domid>"):
        assert ex.check(given), given
    assert not ex.check("e") and "none of the options" in _out(capsys)
    assert not ex.check(2) and "is not an option" in _out(capsys)


def test_glossary_choice_hints_give_the_wrong_terms_meaning(capsys: CaptureFixture[str]) -> None:
    ex = exercise("10.1", glossary=GLOSSARY, seed=3)
    ex.show()
    shown = _out(capsys)
    right = next(i for i, o in enumerate(ex.options) if ex.correct(o))
    wrong = next(i for i in range(len(ex.options)) if i != right)
    assert dict(GLOSSARY)[ex.options[right]] in shown
    assert not ex.check("abcd"[wrong])
    assert f"{ex.options[wrong]} is: {dict(GLOSSARY)[ex.options[wrong]]}" in _out(capsys)


def test_placeholder_says_not_answered_and_hints_and_is_not_recorded(
        capsys: CaptureFixture[str]) -> None:
    kw = {"10.1": {"glossary": GLOSSARY}}
    for ex_id in CATALOGUE:
        ex = exercise(ex_id, **kw.get(ex_id, {}))
        assert not ex.check(...) and not ex.check(None)
        out = _out(capsys)
        assert out.count("Not answered yet") == 2 and "Hint: " in out, ex_id
        assert ex.attempts == [] and not ex.correct(...)


def test_attempts_keep_real_answers_only() -> None:
    ex = exercise("0.1")
    for given in (..., 8000, None, "8192"):
        ex.check(given)
    assert ex.attempts == [8000, "8192"]


def test_correct_is_silent_and_unrecorded(capsys: CaptureFixture[str]) -> None:
    ex = exercise("8.1")
    assert ex.correct("0x5853") and not ex.correct("0x1") and not ex.correct(object())
    assert _out(capsys) == "" and ex.attempts == []


def test_odd_types_never_raise(capsys: CaptureFixture[str]) -> None:
    class Evil:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("boom")

        def __repr__(self) -> str:
            return "Evil()"

    kw = {"10.1": {"glossary": GLOSSARY}}
    for ex_id in CATALOGUE:
        ex = exercise(ex_id, **kw.get(ex_id, {}))
        for odd in (Evil(), object(), b"p", {"a": 1}, -1, 10**400, float("inf"), ""):
            assert ex.check(odd) in (True, False)
    assert "Traceback" not in _out(capsys)


def test_no_answer_is_kept_in_plain_text() -> None:
    ex = Exercise("pages?", 8192, hint="divide")
    assert "8192" not in repr(vars(ex)) and ex.correct(8192)
    assert not hasattr(ex, "solution")
    assert exercise("8.1").digest == answer_digest("8.1", "number", "0x5853")


def test_seeded_problems_are_generated_and_solved_from_the_seed() -> None:
    assert seeded(7).randint(0, 10**6) == seeded(7).randint(0, 10**6)
    a, b = exercise("2.1", seed=5), exercise("2.1", seed=5)
    assert a.question == b.question and a.digest == b.digest
    share = [int(w) for w in re.findall(r"weight (\d+)", a.question)]
    assert a.correct(round(100 * share[0] / sum(share)))
    assert exercise("4.1", seed=2026).correct(576)       # console_io is hypercall 18
    assert exercise("6.1").correct(PORT_HANDLERS["0x40"]) and "0x40" in exercise("6.1").question


def test_custom_judges_and_their_bugs(capsys: CaptureFixture[str]) -> None:
    ex = Exercise("boot sector?", judge=lambda g: (g == "ok", "it printed nothing"),
                  hint="end with hlt")
    assert ex.kind == "custom" and ex.check("ok") and not ex.check("no")
    assert "it printed nothing" in _out(capsys)
    broken = Exercise("x", judge=lambda g: 1 / 0)
    assert not broken.check("anything") and "ZeroDivisionError" in _out(capsys)


def test_old_style_and_bad_definitions() -> None:
    ex = choice("Who handles port 0x1F0?", ["Xen", "the device model"], "the device model")
    assert ex.check("b") and ex.check("The device model") and not ex.check("a")
    assert not ex.check(3)
    with pytest.raises(ValueError, match="kind must be"):
        Exercise("q", 1, kind="colour")
    with pytest.raises(ValueError, match="no answer"):
        Exercise("q")
    with pytest.raises(KeyError, match=r"no exercise '99\.9'"):
        exercise("99.9")
