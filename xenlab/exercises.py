"""Self-checking exercises for the labs: the question in the notebook, the answer not.

Every exercise of the course is defined here, in ``CATALOGUE``, by its number
("6.3"); a notebook asks for it and the student's cell holds only a placeholder:

    ex63 = exercise("6.3")     # the question, and for multiple choice its options
    ex63.show()
    answer = ...               # the student replaces the placeholder
    _ = ex63.check(answer)     # "Not answered yet ..." and a hint, until then

``check`` prints whether an answer is right (with the hint on a wrong one) and returns
True or False; it never raises, whatever it is given. ``correct`` is the same test
without a word or a record, for nbgrader's hidden tests (INSTRUCTORS.md). ``attempts``
keeps every real answer tried (a placeholder is not one).

An answer is never stored in plain text: an ``Exercise`` keeps a digest of the answer's
canonical form (``answer_digest``), so neither the student's notebook nor a look at the
object gives it away. (It is a veil, not a secret: a seeded exercise's answer is computed
here from the seed, the way OSTEP's simulators solve their own problems.)

What an answer may look like, by kind (``KINDS``):

- ``number``: an int, or a string holding one ("8192", "0x5853", "-38", "8_192"); a
  float with an integral value. A string is accepted and the reply says it was one.
- ``name``: a string, compared without case and without spaces ("EACCES" = "eacces").
- ``state``: a State letter of ``xl list`` ("p"), its ``xl list`` form ("--p---"), or
  its word ("paused").
- ``order``: letters in order, with or without spaces, commas or arrows
  ("dfgecab" = "d f g e c a b" = "d, f, g, ..."), or a list of letters.
- ``choice``: the option's letter ("b", "(b)", "B") or its text; ``option_hints`` give
  a hint for each wrong option.
- ``custom``: ``judge(given)`` returns ``(right, message)``: for exercises checked by
  running what the student made.

Real Xen: (none: teaching material; OSTEP's homework simulators are the model)
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any

from xenlab.i18n import exercise_texts, tr

__all__ = ["CATALOGUE", "KINDS", "Exercise", "answer_digest", "choice", "exercise",
           "seeded"]

KINDS = ("number", "name", "state", "order", "choice", "custom")
LETTERS = "abcdefghij"
# xl list's State column: r b p s c d, one position each (tools/xl/xl_info.c)
_STATE_LETTERS = "rbpscd"
# what to type is said without an example value (an example could be some exercise's
# answer): the messages format_<kind> of xenlab.i18n
_STATE_WORDS = {"running": "r", "blocked": "b", "paused": "p", "shutdown": "s",
                "shut down": "s", "crashed": "c", "dying": "d"}


def seeded(seed: int) -> random.Random:
    """A random generator for problem generation: the same seed, the same problem."""
    return random.Random(seed)


class _Unreadable(Exception):
    """The answer cannot be read as this kind; the message says why (shown to the student)."""


def _is_placeholder(given: Any) -> bool:
    return given is None or given is ...


def _canonical_number(given: Any) -> tuple[int, str]:
    """(the number, a note for the reply) or _Unreadable."""
    if isinstance(given, bool):
        raise _Unreadable(tr("truth_value", given=repr(given)))
    if isinstance(given, int):
        return int(given), ""
    if isinstance(given, float):
        if math.isfinite(given) and given == int(given):
            return int(given), ""
        raise _Unreadable(tr("not_whole", given=repr(given)))
    if isinstance(given, str):
        text = re.sub(r"[\s_,]", "", given)
        for base in (0, 10):
            try:
                value = int(text, base)
                break
            except ValueError:
                continue
        else:
            try:
                f = float(text)
            except ValueError:
                raise _Unreadable(tr("not_number_try", given=repr(given))) from None
            if not (math.isfinite(f) and f == int(f)):
                raise _Unreadable(tr("not_whole", given=repr(given))) from None
            value = int(f)
        return value, tr("read_string", value=value)
    raise _Unreadable(tr("not_number", given=_short(given)))


def _canonical_name(given: Any) -> tuple[str, str]:
    if not isinstance(given, str):
        raise _Unreadable(tr("not_name", given=_short(given)))
    return "".join(given.split()).casefold(), ""


def _canonical_state(given: Any) -> tuple[str, str]:
    if not isinstance(given, str):
        raise _Unreadable(tr("not_state_type", given=_short(given)))
    text = given.strip().casefold()
    if text in _STATE_WORDS:
        return _STATE_WORDS[text], ""
    if len(text) == 6 and set(text) <= set(_STATE_LETTERS + "-"):
        letters = {c for c in text if c != "-"}
        note = tr("xl_list_form", letters=repr("".join(sorted(letters)) or tr("no_letter")))
    elif text and set(text) <= set(_STATE_LETTERS):
        letters, note = set(text), ""
    else:
        raise _Unreadable(tr("not_state", given=repr(given)))
    return "".join(c for c in _STATE_LETTERS if c in letters), note


def _canonical_order(given: Any) -> tuple[str, str]:
    if isinstance(given, (list, tuple)) and all(isinstance(g, str) for g in given):
        given = "".join(given)
    if not isinstance(given, str):
        raise _Unreadable(tr("not_order_type", given=_short(given)))
    text = re.sub(r"[\s,;>\-]", "", given).casefold()
    if not text.isalpha():
        raise _Unreadable(tr("not_order_letters", given=repr(given)))
    return text, ""


def _canonical_choice(given: Any, options: Sequence[str]) -> tuple[str, str]:
    if not isinstance(given, str):
        raise _Unreadable(tr("not_option_type", given=_short(given)))
    text = " ".join(given.split()).casefold()
    letter = text.strip("() .")
    if len(letter) == 1 and letter in LETTERS[: len(options)]:
        return letter, ""
    for i, option in enumerate(options):
        if text == " ".join(option.split()).casefold():
            return LETTERS[i], ""
    raise _Unreadable(tr("not_option", given=repr(given), last=LETTERS[len(options) - 1]))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _canonical(kind: str, given: Any, options: Sequence[str]) -> tuple[Any, str]:
    if kind == "number":
        return _canonical_number(given)
    if kind == "name":
        return _canonical_name(given)
    if kind == "state":
        return _canonical_state(given)
    if kind == "order":
        return _canonical_order(given)
    if kind == "choice":
        return _canonical_choice(given, options)
    raise ValueError(f"no canonical form for kind {kind!r}")


def answer_digest(ex_id: str, kind: str, answer: Any, options: Sequence[str] = ()) -> str:
    """The digest an ``Exercise`` keeps instead of its answer (the answer in canonical form)."""
    canonical, _ = _canonical(kind, answer, options)
    return hashlib.sha256(f"xenlab|{ex_id}|{kind}|{canonical}".encode()).hexdigest()[:24]


@dataclass
class Exercise:
    """One question with its checker; the answer is kept only as a digest."""

    question: str
    answer: InitVar[Any] = None
    kind: str = ""
    options: Sequence[str] = ()
    hint: str = ""
    option_hints: Mapping[str, str] = field(default_factory=dict)
    explanation: str = ""
    ex_id: str = ""
    digest: str = field(default="", repr=False)
    judge: Callable[[Any], tuple[bool, str]] | None = field(default=None, repr=False)
    attempts: list[Any] = field(default_factory=list, repr=False)
    # the values a seeded question was made of, for the translations' {placeholders}
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self, answer: Any) -> None:
        if not self.kind:
            self.kind = ("custom" if self.judge is not None else "choice" if self.options
                         else "number" if isinstance(answer, int) else "name")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "custom":
            if self.judge is None:
                raise ValueError("a custom exercise needs judge=")
        elif answer is not None:
            self.digest = answer_digest(self.ex_id, self.kind, answer, self.options)
        elif not self.digest:
            raise ValueError(f"exercise {self.ex_id or self.question!r} has no answer")

    def localize(self) -> Exercise:
        """Take the current language's question, hint, explanation, options and option
        hints (``xenlab.i18n``); what a language does not translate stays English. The
        answer does not change: a choice is judged by its letter."""
        texts = exercise_texts(self.ex_id)
        if not texts:
            return self
        values = dict(self.params)

        def fill(text: str) -> str:
            return text.format(**values) if values else text

        for name in ("question", "hint", "explanation"):
            if name in texts:
                setattr(self, name, fill(texts[name]))
        options = texts.get("options")
        if isinstance(options, Mapping):      # shuffled options: translated one by one
            self.options = [options.get(o, o) for o in self.options]
        elif options and len(options) == len(self.options):
            self.options = list(options)
        if "option_hints" in texts:
            self.option_hints = {k: fill(v) for k, v in texts["option_hints"].items()}
        elif "option_hint" in texts and "definitions" in values:  # one per wrong option
            defs = values["definitions"]
            self.option_hints = {
                letter: texts["option_hint"].format(term=o, definition=defs[o])
                for letter, o in zip(LETTERS, self.options, strict=False)
                if o in defs and letter in self.option_hints}
        return self

    # ------------------------------------------------------------------ asking
    def text(self) -> str:
        """The question as shown: number, question, the options and how to answer."""
        head = tr("exercise", ex_id=self.ex_id) if self.ex_id else ""
        lines = [head + self.question]
        lines += [f"  ({LETTERS[i]}) {o}" for i, o in enumerate(self.options)]
        if self.kind == "choice":
            lines.append(tr("answer_choice"))
        return "\n".join(lines)

    def show(self) -> None:
        """Print the question (with its options)."""
        print(self.text())

    # ------------------------------------------------------------------ checking
    def _judge(self, given: Any) -> tuple[bool | None, str]:
        """(True/False, note) for an answer; (None, why) when it cannot be read."""
        if self.judge is not None:
            try:
                ok, message = self.judge(given)
            except Exception as e:  # a judge's bug must not become the student's traceback
                return False, tr("check_failed", error=f"{type(e).__name__}: {e}")
            return bool(ok), message
        try:
            canonical, note = _canonical(self.kind, given, self.options)
        except _Unreadable as e:
            return None, str(e)
        digest = hashlib.sha256(
            f"xenlab|{self.ex_id}|{self.kind}|{canonical}".encode()).hexdigest()[:24]
        return digest == self.digest, note

    def correct(self, given: Any) -> bool:
        """Whether ``given`` is right: no output, no record (nbgrader's hidden tests)."""
        if _is_placeholder(given):
            return False
        return self._judge(given)[0] is True

    def check(self, given: Any) -> bool:
        """Say whether ``given`` is right; on a wrong answer, give the hint. Never raises."""
        if _is_placeholder(given):
            print(tr("not_answered", format=tr(f"format_{self.kind}"))
                  + (tr("hint", hint=self.hint) if self.hint else ""))
            return False
        self.attempts.append(given)
        ok, note = self._judge(given)
        shown = self._shown(given)
        if ok:
            print(tr("correct", shown=shown, note=note)
                  + (f" {self.explanation}" if self.explanation else ""))
            return True
        hint = self.hint
        if ok is False and self.kind == "choice":
            hint = self.option_hints.get(_canonical_choice(given, self.options)[0], hint)
        said = tr("hint", hint=hint) if hint else ""
        if ok is None:
            print(tr("not_quite", note=note) + said)
        elif self.kind == "custom":
            print(tr("not_quite_custom", note=note) + said)
        else:
            print(tr("not_it", shown=shown, note=note) + said)
        return False

    def _shown(self, given: Any) -> str:
        if self.kind == "choice":
            try:
                letter, _ = _canonical_choice(given, self.options)
                return f"({letter}) {self.options[LETTERS.index(letter)]}"
            except _Unreadable:
                pass
        if self.kind == "custom":
            return tr("your_answer")
        return _short(given)

    def __repr__(self) -> str:
        return f"Exercise({self.ex_id or self.question!r})"


def choice(question: str, options: Sequence[str], answer: str, **kw: Any) -> Exercise:
    """A multiple-choice exercise; ``answer`` is the right option's text or letter."""
    return Exercise(question, answer, kind="choice", options=list(options), **kw)


# ============================================================================ the catalogue
# Each entry builds one exercise of the labs. Fixed answers are digests (computed with
# answer_digest); seeded problems are generated and solved here from the seed. The
# instructor edition's solution cells hold the answers (labs/, see INSTRUCTORS.md).
CATALOGUE: dict[str, Callable[..., Exercise]] = {}


def _entry(ex_id: str) -> Callable[[Callable[..., Exercise]], Callable[..., Exercise]]:
    def register(fn: Callable[..., Exercise]) -> Callable[..., Exercise]:
        CATALOGUE[ex_id] = fn
        return fn
    return register


def exercise(ex_id: str, **context: Any) -> Exercise:
    """The exercise numbered ``ex_id`` ("6.3"); seeded ones take ``seed=``."""
    try:
        make = CATALOGUE[ex_id]
    except KeyError:
        raise KeyError(f"no exercise {ex_id!r}; there are {', '.join(CATALOGUE)}") from None
    return make(**context).localize()


def _fixed(ex_id: str, question: str, kind: str, digest: str, **kw: Any) -> Exercise:
    return Exercise(question, kind=kind, ex_id=ex_id, digest=digest, **kw)


# ---------------------------------------------------------------- 00 · Start here
@_entry("0.1")
def _ex_0_1() -> Exercise:
    return _fixed("0.1", "How many 4 KiB pages does the 32 MiB guest pv-hello own?", "number",
                  "a89d65f71b57ade2750a4cc9", hint="32 MiB = 32 * 1024 KiB; one page is 4 KiB.",
                  explanation="xl list shows 32 (MiB); Xen counts the guest's memory in pages "
                              "(tot_pages).")


# ---------------------------------------------------------------- 01 · Why virtualize?
@_entry("1.1")
def _ex_1_1(seed: int = 2026) -> Exercise:
    rng = seeded(seed)
    n = rng.choice([24, 30, 36, 40, 48, 60])
    util = rng.choice([5, 8, 10, 12, 15])
    target = rng.choice([60, 70, 75, 80])
    return Exercise(f"A company has {n} physical servers, each on average {util} % busy. How "
                    f"many hosts does it need if it loads each host up to {target} %? "
                    f"(seed {seed})", math.ceil(n * util / target), kind="number", ex_id="1.1",
                    params={"n": n, "util": util, "target": target, "seed": seed},
                    hint="total work = servers x load; divide by what one host may carry; "
                         "round up.")


@_entry("1.2")
def _ex_1_2() -> Exercise:
    return _fixed("1.2", "By how many MiB did free_memory in xl info drop when the four 64 MiB "
                  "guests were created?", "number", "3fa8d6b9f2cde5b3302aa132",
                  hint="look at free_memory before and after creating them.")


@_entry("1.3")
def _ex_1_3() -> Exercise:
    return _fixed("1.3", "pv-crash executed a forbidden instruction. What happened to the "
                  "other guests?", "choice", "3a6648501a9b7cc8e2f7958f",
                  options=["they crashed too", "they were paused until pv-crash was destroyed",
                           "nothing: they ran on, only pv-crash was crashed"],
                  hint='look at xl list after pv-crash died.',
                  option_hints={"a": "look at xl list after the crash: which guests still "
                                     "run?",
                                "b": "nobody paused them: compare their State column before "
                                     "and after the crash."},
                  explanation="Xen isolates domains: a fault is delivered to, or kills, only "
                              "the domain that caused it.")


# ---------------------------------------------------------------- 02 · The hypervisor
@_entry("2.1")
def _ex_2_1(seed: int = 2026) -> Exercise:
    rng = seeded(seed)
    a = rng.choice([128, 256, 384, 512, 768])
    b = rng.choice([128, 256, 512, 1024])
    return Exercise(f"Domain A has weight {a}, domain B has weight {b}; both spin on one CPU. "
                    f"What share of the CPU does A get, in percent (rounded)? (seed {seed})",
                    round(100 * a / (a + b)), kind="number", ex_id="2.1",
                    params={"a": a, "b": b, "seed": seed},
                    hint="the share is proportional to the weight: A / (A + B).")


@_entry("2.2")
def _ex_2_2() -> Exercise:
    return _fixed("2.2", "Dom0 has 256 MiB. How many 4 KiB frames does Xen's frame table list "
                  "as owned by domain 0?", "number", "68f4eeb886d8e8bca8d0ddcf",
                  hint="256 MiB = 256 * 1024 KiB; one frame is 4 KiB.")


@_entry("2.3")
def _ex_2_3() -> Exercise:
    return _fixed("2.3", "Where do the disk and network drivers of a Xen host run?", "choice",
                  "69aedb5be13969124c0be207",
                  options=["in the hypervisor", "in Dom0", "in every DomU's own hardware"],
                  hint="which domain did the split drivers' backends run in?",
                  option_hints={"a": "read Xen's boot log again: it sets up memory and CPUs, "
                                     "and probes no disk.",
                                "c": "a DomU is given virtual devices only; who owns the real "
                                     "ones?"},
                  explanation="Xen has no device drivers; Dom0's kernel drives the hardware.")


# ---------------------------------------------------------------- 03 · Dom0 and DomUs
@_entry("3.1")
def _ex_3_1() -> Exercise:
    return _fixed("3.1", "Domain 2 tries xenstore-write /local/domain/1/data/x hi. Which error "
                  "does xenstored answer (the name, like ENOENT)?", "name",
                  "45305a41e524878dd84abd37",
                  hint="the node's permissions are (n1,r0): who else may write? Try it with "
                       "store.write(path, value, domid=2).")


@_entry("3.2")
def _ex_3_2() -> Exercise:
    return _fixed("3.2", "Which letter does the State column of xl list show for a domain "
                  "created with xl create -p?", "state", "3feccea21530d8fd03a7fd1f",
                  hint="look at the first xl list of this notebook.")


@_entry("3.3")
def _ex_3_3() -> Exercise:
    return _fixed("3.3", 'A guest\'s config has on_poweroff = "destroy". It powers itself off. '
                  "What does xl list show for it?", "choice", "77735824b6717e91740d2b2a",
                  options=["state s (shut down)", "state p (paused)", "nothing: it is gone"],
                  hint='run the guest and look at xl list; the xl log says what it did.',
                  option_hints={"a": 'that is what on_poweroff = "preserve" leaves behind.',
                                "b": "p is a domain created with -p, or paused by xl pause."},
                  explanation="the toolstack in Dom0 destroys the domain when it powers off.")


# ---------------------------------------------------------------- 04 · Paravirtualization
HYPERCALL_PICKS = ["set_timer_op", "console_io", "xen_version", "grant_table_op", "sched_op",
                   "event_channel_op", "memory_op", "update_va_mapping"]


@_entry("4.1")
def _ex_4_1(seed: int = 2026) -> Exercise:
    from xenlab.public.xen import Hypercall

    name = seeded(seed).choice(HYPERCALL_PICKS)
    return Exercise(f"At which byte offset in the hypercall page is the stub of {name}? "
                    f"(seed {seed})", int(Hypercall[name]) * 32, kind="number", ex_id="4.1",
                    params={"name": name, "seed": seed},
                    hint="each stub is 32 bytes; the stub of hypercall nr is at 32 * nr "
                         "(the numbers are in Hypercall).")


@_entry("4.2")
def _ex_4_2() -> Exercise:
    return _fixed("4.2", "How many hypercalls did pv-spin make in its whole run (the solo host "
                  "above)?", "number", "73e37acd63b1c246d4b149e4",
                  hint="sum the counts of hypercall_counts(solo.trace) for pv-spin's domid.")


@_entry("4.3")
def _ex_4_3() -> Exercise:
    return _fixed("4.3", "A PV kernel has nothing to do until its next timer. What does it do?",
                  "choice", "2a1c87703f636977e18d396f",
                  options=["executes hlt", "calls sched_op(SCHEDOP_block)",
                           "spins in a loop"],
                  hint='which of these is allowed to a kernel that is not in ring 0?',
                  option_hints={"a": "hlt is privileged: remember what happened to pv-crash.",
                                "c": "spinning burns CPU time that another domain could use."},
                  explanation="hlt is privileged (pv-crash died of it); spinning wastes the "
                              "CPU.")


# ---------------------------------------------------------------- 05 · Split drivers
# xen/include/public/io/xenbus.h
XENBUS_STATES = {"Initialising": 1, "InitWait": 2, "Initialised": 3, "Connected": 4,
                 "Closing": 5, "Closed": 6}


@_entry("5.1")
def _ex_5_1() -> Exercise:
    return _fixed("5.1", "Dom0's blkback wrote sector 100 on behalf of a guest. Which domid did "
                  "the request come from?", "number", "8b1463bb09484fd4d36d005f",
                  hint='the trace has it: lab.trace.select(kind="io"), record '
                       "blkback.disk_write, field dom; or: which guest has a disk?")


@_entry("5.2")
def _ex_5_2(seed: int = 2026) -> Exercise:
    state = seeded(seed).choice(sorted(XENBUS_STATES))
    return Exercise(f"What is the number of XenbusState {state}? (seed {seed})",
                    XENBUS_STATES[state], kind="number", ex_id="5.2",
                    params={"state": state, "seed": seed},
                    hint="read the handshake printed above: each state is written to xenstore "
                         "as its number.")


@_entry("5.3")
def _ex_5_3() -> Exercise:
    return _fixed("5.3", "pv-net-a sends a ping to pv-net-b. Which path does the frame take?",
                  "choice", "faf4e93cd83333cdfecaad5c",
                  options=["straight from pv-net-a's memory into pv-net-b's",
                           "netfront -> netback in Dom0 -> bridge xenbr0 -> netback -> netfront",
                           "through Xen's own network driver"],
                  hint='follow the trace of the ping: which domain handles every frame?',
                  option_hints={"a": "guests share no memory unless one grants a page: whose "
                                     "grants did the trace show?",
                                "c": "Xen has no network driver: which domain has the "
                                     "bridge?"},
                  explanation="guests share nothing directly; Dom0's backends and bridge "
                              "carry it.")


# ---------------------------------------------------------------- 06 · Full virtualization
# Who serves each port hvm-hello touches: Xen's own emulation (the PIT, the PICs, the RTC,
# the 0xE9 debug port: xen/arch/x86/hvm/) or an ioreq to the device model (QEMU's IDE,
# UART, VGA).
PORT_HANDLERS = {"0x1f0": "dm", "0xe9": "xen", "0x70": "xen", "0x3f8": "dm", "0x20": "xen",
                 "0x3d4": "dm", "0x40": "xen"}


@_entry("6.1")
def _ex_6_1(seed: int = 6) -> Exercise:
    port = seeded(seed).choice(list(PORT_HANDLERS))
    return Exercise(f'Who handled the guest\'s accesses to port {port}: "xen" (emulated inside '
                    f'the hypervisor) or "dm" (an ioreq to the device model)? (seed {seed})',
                    PORT_HANDLERS[port], kind="name", ex_id="6.1",
                    params={"port": port, "seed": seed},
                    hint=f'the trace says: the vmexit records of port {port} '
                         '(hvm.trace.select(kind="vmexit", name="io")) name their handler.',
                    explanation="Xen emulates the PIT, the PICs, the RTC and port 0xE9 itself; "
                                "the disk, serial and VGA ports go to the device model.")


@_entry("6.2")
def _ex_6_2() -> Exercise:
    return _fixed("6.2", "How many hypercalls did the HVM guest hvm-hello make, in total?",
                  "number", "271c3caeafd89f4a24b71b80",
                  hint="count the hypercall records of the HVM guest's domid, or the vmcall "
                       "exits.",
                  explanation="hvmloader asks for Xen's version once through the hypercall "
                              "page; the BIOS and the boot sector never call Xen.")


@_entry("6.3")
def _ex_6_3() -> Exercise:
    return _fixed("6.3", "What let Xen 3 run unmodified guest kernels?", "choice",
                  "4034bda7d2314cd099c017ce",
                  options=["a faster binary translator in Dom0",
                           "processor extensions (Intel VT-x, AMD-V) that trap sensitive "
                           "instructions",
                           "a new hypercall ABI",
                           "running the guest kernel in ring 3"],
                  option_hints={"a": "Xen never translated guest code; who raised the VM exits "
                                     "you counted?",
                                "c": "an unmodified kernel makes no hypercalls at all.",
                                "d": "that is how PV kernels ran, and why they had to be "
                                     "changed."},
                  hint="the exits you counted are done by the processor.")


# ---------------------------------------------------------------- 07 · The HVM boot
BOOT_STEPS = ["HVM Loader", "hypercall page", "E820 table", "POST", "IVT and BDA",
              "INT 19h boot", "boot sector prints"]


@_entry("7.1")
def _ex_7_1(seed: int = 7) -> Exercise:
    shuffled = BOOT_STEPS[:]
    seeded(seed).shuffle(shuffled)
    right = "".join(LETTERS[shuffled.index(s)] for s in BOOT_STEPS)
    return Exercise(f"Put the firmware steps in the order the guest runs them: answer with the "
                    f'letters in order, e.g. answer = "a b c ...". (seed {seed})', right,
                    kind="order", options=shuffled, ex_id="7.1", params={"seed": seed},
                    hint="the trace above is in order: hvmloader first, the BIOS next.")


@_entry("7.2")
def _ex_7_2() -> Exercise:
    return _fixed("7.2", 'Who serves the guest\'s reads of the IDE data port 0x1F0: "xen" or '
                  '"dm"?', "name", "4c661131dac7588a515fb525",
                  hint="is the IDE controller emulated in the hypervisor? The vmexit records "
                       "name the handler.")


@_entry("7.2b")
def _ex_7_2b() -> Exercise:
    return _fixed("7.2b", "The BIOS reads a sector with one `rep insw`: one VM exit, one "
                  "ioreq. If it read the same 512-byte sector with a loop of single `inw` "
                  "instructions instead, how many ioreqs would the data port 0x1F0 take?",
                  "number", "69c69a46b4bd89e86523e3ce",
                  hint="every single in or out that leaves the guest is its own VM exit and "
                       "its own ioreq; how many 16-bit words are in 512 bytes?",
                  explanation="one ioreq per inw: the string instruction saves 255 round "
                              "trips to the device model.")


# ---------------------------------------------------------------- 08 · What changed
@_entry("8.1")
def _ex_8_1() -> Exercise:
    return _fixed("8.1", "What is the PCI vendor id of the Xen platform device (a number; hex "
                  "such as 0x1234 is fine)?", "number", "6649e73de970ea028de1fff2",
                  hint="read offset 0 of the platform device's configuration space, or look at "
                       "the PCI table above.",
                  explanation="0x5853 is XenSource's PCI vendor id.")


@_entry("8.2")
def _ex_8_2() -> Exercise:
    return _fixed("8.2", "What did the removed hypercall tmem_op return to pv-pubhdr?",
                  "number", "d342d306cbd815a0720f434b",
                  hint="read pv-pubhdr's console; ENOSYS is 38 and errors come back negative.")


@_entry("8.3")
def _ex_8_3() -> Exercise:
    return _fixed("8.3", "Which guest type has no BIOS, no device model, and uses "
                  "VT-x/AMD-V?", "choice", "917cf122e676dceb3195c4c9",
                  options=["PV", "HVM", "PVH", "PVHVM"],
                  hint="which type boots its kernel directly and still runs in the hardware "
                       "container?",
                  option_hints={"a": "PV boots its kernel directly, but without the hardware "
                                     "container (no VT-x).",
                                "b": "HVM boots through hvmloader and a BIOS, with a device "
                                     "model.",
                                "d": "PVHVM is an HVM guest with PV drivers: it still has a "
                                     "BIOS and a device model."})


# ---------------------------------------------------------------- 09 · The manager
@_entry("9.1")
def _ex_9_1() -> Exercise:
    return _fixed("9.1", "Which xl command does the Pause button run?", "choice",
                  "8cf7f96430e08e22c242658b",
                  options=["xl shutdown <domid>", "xl pause <domid>", "xl destroy <domid>",
                           "xl save <domid>"],
                  option_hints={"a": "shutdown asks the guest to stop itself; it does not come "
                                     "back with Unpause.",
                                "c": "destroy ends the domain for good.",
                                "d": "save writes the guest's memory to a file and ends it."},
                  hint="look at the xl log above.")


@_entry("9.2")
def _ex_9_2() -> Exercise:
    return _fixed("9.2", "Create pv-spin again and pause it. Which letter does the State "
                  "column show?", "state", "3a8bb937fe502f0119e18f07",
                  hint="r running, b blocked, p paused, s shut down; the dashboard's table "
                       "shows it.")


# ---------------------------------------------------------------- 10 · Glossary
@_entry("10.1")
def _ex_10_1(glossary: Sequence[tuple[str, str]], seed: int = 10) -> Exercise:
    rng = seeded(seed)
    term, meaning = rng.choice(list(glossary))
    options = sorted([*rng.sample([t for t, _ in glossary if t != term], 3), term])
    defs = dict(glossary)
    return Exercise(f"Which term does this definition describe? (seed {seed})\n  {meaning}",
                    term, kind="choice", options=options, ex_id="10.1",
                    params={"seed": seed, "meaning": meaning, "definitions": defs},
                    option_hints={LETTERS[i]: f"{t} is: {defs[t]}" for i, t in
                                  enumerate(options) if t != term},
                    hint="look it up in the table above.")


@_entry("10.2")
def _ex_10_2() -> Exercise:
    return _fixed("10.2", "Which of these runs in Dom0 rather than in Xen or in the guest?",
                  "choice", "10532f3686595acd87f805cd",
                  options=["the credit scheduler", "the device model", "hvmloader",
                           "blkfront"],
                  hint="Xen has no device drivers; what emulates an HVM guest's PC?",
                  option_hints={"a": "the scheduler is part of Xen itself.",
                                "c": "hvmloader runs inside the HVM guest, as its first "
                                     "firmware.",
                                "d": "blkfront is the guest's half of the split driver."})


# ---------------------------------------------------------------- 11 · Linux in a DomU
@_entry("11.1")
def _ex_11_1() -> Exercise:
    return _fixed("11.1", "Debian's Linux made tens of thousands of mmu_update hypercalls to "
                  "boot. Why does a PV kernel ask Xen to write its page-table entries?",
                  "choice", "8d7978ac6d65d56ceb02b493",
                  options=["it is faster than writing the entries itself",
                           "Xen keeps its page tables read-only to it and checks every "
                           "entry: a frame the guest does not own, or a writable mapping of "
                           "one of its own page tables, would let it reach memory that is "
                           "not its own",
                           "Linux has no code to write page tables"],
                  hint="think of what check_l1e refused above, and why.",
                  option_hints={"a": "a hypercall per entry is slower than a store: Xen "
                                     "pays it for safety, not for speed.",
                                "c": "the same kernel writes its page tables directly on "
                                     "bare metal (native_set_pte)."},
                  explanation="the PV MMU is the heart of the modified kernel: Xen validates "
                              "every entry (mod_l1_entry) so the guest maps only its own "
                              "frames.")
