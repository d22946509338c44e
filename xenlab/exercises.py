"""Self-checking exercises for the labs: a problem first, the answer second.

Each exercise has a seed (the same seed gives the same problem, so a class
can share one), a ``check(answer)`` that says what is right or wrong and
gives a hint, and a ``solution()`` an instructor can reveal. A wrong answer,
or an answer of the wrong type, never raises: notebooks keep running.

    ex = Exercise("How many 4 KiB pages does a 32 MiB guest own?",
                  answer=8192, hint="32 MiB = 32 * 1024 KiB; divide by 4.")
    ex.check(8192)        # prints "Correct: ..." and returns True

Real Xen: (none: teaching material; OSTEP's homework simulators are the model)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Exercise", "choice", "seeded"]


def seeded(seed: int) -> random.Random:
    """A random generator for problem generation: the same seed, the same problem."""
    return random.Random(seed)


@dataclass
class Exercise:
    """One question with its checker."""

    question: str
    answer: Any
    hint: str = ""
    explanation: str = ""
    compare: Callable[[Any, Any], bool] | None = None
    attempts: list[Any] = field(default_factory=list)

    def _matches(self, given: Any) -> bool:
        if self.compare is not None:
            try:
                return bool(self.compare(given, self.answer))
            except Exception:
                return False
        if isinstance(self.answer, str) and isinstance(given, str):
            return given.strip().lower() == self.answer.strip().lower()
        try:
            return bool(given == self.answer)
        except Exception:
            return False

    def check(self, given: Any) -> bool:
        """Say whether ``given`` is right; on a wrong answer, give the hint."""
        self.attempts.append(given)
        if given is None or given is ...:
            print("Not answered yet: replace the placeholder with your answer.")
            return False
        if self._matches(given):
            print(f"Correct: {given!r}." + (f" {self.explanation}" if self.explanation else ""))
            return True
        print(f"Not quite: {given!r} is not it." + (f" Hint: {self.hint}" if self.hint else ""))
        return False

    def solution(self) -> Any:
        """For instructors: the answer and why."""
        print(f"Answer: {self.answer!r}." + (f" {self.explanation}" if self.explanation else ""))
        return self.answer

    def __repr__(self) -> str:
        return f"Exercise({self.question!r})"


def choice(question: str, options: list[str], answer: str, **kw: Any) -> Exercise:
    """A multiple-choice exercise; the answer may be given as the option text or letter."""
    letters = "abcdefghij"
    text = question + "\n" + "\n".join(f"  ({letters[i]}) {o}" for i, o in enumerate(options))

    def compare(given: Any, expected: Any) -> bool:
        if not isinstance(given, str):
            return False
        g = given.strip().lower().strip("()")
        if len(g) == 1 and g in letters[: len(options)]:
            g = options[letters.index(g)].lower()
        return g == str(expected).lower()

    return Exercise(text, answer, compare=compare, **kw)
