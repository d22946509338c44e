"""The exercise checker: right, wrong, placeholder, odd types; never raises."""

from __future__ import annotations

from pytest import CaptureFixture

from xenlab.exercises import Exercise, choice, seeded


def test_check_right_wrong_and_odd(capsys: CaptureFixture[str]) -> None:
    ex = Exercise("pages in 32 MiB?", 8192, hint="divide by 4 KiB")
    assert not ex.check(None)
    assert not ex.check(8000)
    assert not ex.check(object())
    assert ex.check(8192)
    out = capsys.readouterr().out
    assert "Not answered yet" in out and "Hint: divide by 4 KiB" in out and "Correct" in out
    assert ex.solution() == 8192


def test_choice_and_seeds() -> None:
    ex = choice("Who handles port 0x1F0?", ["Xen", "the device model"], "the device model")
    assert ex.check("b") and ex.check("The device model") and not ex.check("a")
    assert not ex.check(3)
    assert seeded(7).randint(0, 10**6) == seeded(7).randint(0, 10**6)
