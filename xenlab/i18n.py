"""The labs in three languages: English, Spanish, Portuguese (``set_language``).

The chapters exist as ``NN-name.ipynb`` (English), ``NN-name.es.ipynb`` and
``NN-name.pt.ipynb`` side by side; a translated chapter starts with
``set_language("es")``, and from then on every exercise of ``xenlab.exercises`` asks,
hints and answers in that language. What Xen and the tools print (Xen's log, ``xl``'s
output, xenstore paths, error names) stays as they print it, in every edition.

The strings live in one table per language (``xenlab/locale/es.py``, ``pt.py``): the
generic replies (``MESSAGES``, keyed as the English ones below) and each exercise's
question, hint, explanation, options and per-option hints (``EXERCISES``, keyed by the
exercise's number). A string missing from a language's table is shown in English, so
a checker fixed once is fixed in every language.

Real Xen: (none: teaching material; GNU gettext's catalogs are the model)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LANGUAGES", "MESSAGES", "exercise_texts", "language", "set_language", "tr"]

LANGUAGES = ("en", "es", "pt")
_current = ["en"]

#: English, the reference every language's MESSAGES is keyed like.
MESSAGES: dict[str, str] = {
    "exercise": "Exercise {ex_id}: ",
    "answer_choice": "Answer with an option's letter, in quotes, or with its text.",
    "not_answered": "Not answered yet: replace the ... with your answer ({format}) and run "
                    "the cell again.",
    "hint": " Hint: {hint}",
    "correct": "Correct: {shown}{note}.",
    "not_quite": "Not quite: {note}.",
    "not_quite_custom": "Not quite: {note}",
    "not_it": "Not quite: {shown}{note} is not it.",
    "your_answer": "your answer",
    "check_failed": "the check itself failed ({error})",
    "format_number": "a number, decimal or 0x hex",
    "format_name": "a name, in quotes",
    "format_state": "State letters, in quotes, as xl list shows them",
    "format_order": "the letters in order, in quotes",
    "format_choice": "an option's letter, in quotes",
    "format_custom": "what the exercise asks for",
    "read_string": " (you gave a string; it was read as the number {value}: a plain number, "
                   "without quotes, works too)",
    "truth_value": "{given} is a truth value, not a number",
    "not_whole": "{given} is not a whole number",
    "not_number_try": "{given} is not a number (try 8192 or 0x2000)",
    "not_number": "{given} is not a number",
    "not_name": "{given} is not a name: answer with a string in quotes",
    "not_state_type": '{given} is not a State: answer with a letter in quotes, such as "r"',
    "xl_list_form": " (the xl list form of {letters})",
    "no_letter": "no letter",
    "not_state": "{given} is not a State: the letters are r b p s c d, as in xl list's --p---",
    "not_order_type": '{given} is not an order: answer with letters in a string, such as '
                      '"b a c"',
    "not_order_letters": "{given} is not an order: use the letters only",
    "not_option_type": '{given} is not an option: answer with a letter in quotes, such as "a"',
    "not_option": "{given} is none of the options: answer with a letter (a to {last}) or an "
                  "option's text",
}


def _table(lang: str) -> Any:
    if lang == "es":
        from xenlab.locale import es
        return es
    if lang == "pt":
        from xenlab.locale import pt
        return pt
    return None


def set_language(lang: str) -> None:
    """The language of the exercises from now on: "en", "es" or "pt"."""
    code = str(lang).strip().lower()[:2]
    if code not in LANGUAGES:
        raise ValueError(f"no language {lang!r}; the labs are in {', '.join(LANGUAGES)}")
    _current[0] = code


def language() -> str:
    """The language set by ``set_language`` ("en" until then)."""
    return _current[0]


def tr(key: str, **values: Any) -> str:
    """The message ``key`` in the current language (English where it has none), filled in."""
    table = _table(_current[0])
    text = (getattr(table, "MESSAGES", {}) if table else {}).get(key) or MESSAGES[key]
    return text.format(**values) if values else text


def exercise_texts(ex_id: str) -> Mapping[str, Any]:
    """The current language's strings for exercise ``ex_id`` ({} in English or if none)."""
    table = _table(_current[0])
    return getattr(table, "EXERCISES", {}).get(ex_id, {}) if table else {}
