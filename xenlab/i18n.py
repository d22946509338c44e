"""The labs in three languages: English, Spanish, Portuguese (``set_language``).

The chapters exist as ``NN-name.ipynb`` (English), ``NN-name.es.ipynb`` and
``NN-name.pt.ipynb`` side by side; a translated chapter starts with
``set_language("es")``, and from then on every exercise of ``xenlab.exercises`` asks,
hints and answers in that language, and every hands-on check of ``xenlab.handson``
gives its verdict in it (the ``hx_`` messages, looked up when the check runs). What
Xen and the tools print (Xen's log, ``xl``'s output, xenstore paths, error names) stays
as they print it, in every edition.

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
    "missing_seabios": "Xen's real hvmloader and SeaBIOS are not installed here (apt install "
                       "xen-utils-4.17 seabios; on other releases the xen-utils-4.x of their "
                       "Xen); the teaching firmware above shows the same steps.",
    "missing_pvh-grub": "PVH GRUB is not installed here (apt install grub-xen-host); the "
                        "chapter goes on without it.",
    "missing_pv-grub": "PV GRUB is not installed here (apt install grub-xen-host); the "
                       "chapter goes on without it.",
    # ---------------------------------------------------------------- xenlab.handson
    # The hands-on checkers' verdicts: the prefixes, each checker's placeholder hint
    # (hx_*_hint) and what a run showed. The {values} are what the run measured or what
    # Xen and xl printed, shown as they are in every language.
    "hx_correct": "Correct: ",
    "hx_not_yet": "Not yet: ",
    "hx_not_answered": "Not answered yet: ",
    "hx_assembler_refused": "the assembler refused your code: {error}",
    "hx_attempt_failed": "the attempt failed with {error}",
    "hx_need_str": "{what} must be a string (text in quotes), not {type}",
    "hx_the_code": "the code",
    "hx_the_config": "the config",
    "hx_create_failed": "xl create failed: {error}",
    "hx_xl_refused": "xl create refused it: {error}",
    "hx_crashed": "crashed",
    "hx_guest_crashed": "the guest crashed: {crash}.",
    "hx_no_exits": "none",
    "hx_no_leaves": "none",
    "hx_no_domains": "none",
    "hx_nothing": "nothing",
    "hx_refused": "refused",
    "hx_it_made": "; it made {names}",
    "hx_screen_crashed": " The guest crashed: {crash}. Did the CPU run past your last "
                         "instruction into your data or the zeros after it? End with cli; "
                         "hlt before any data.",
    "hx_screen_empty_ports": "the screen stayed empty: your code wrote to port(s) {ports} but "
                             "never asked the BIOS to print. int $0x10 with AH = 0x0E prints "
                             "the character in AL (teletype).",
    "hx_screen_empty": "the screen stayed empty: print each character with int $0x10, "
                       "AH = 0x0E, AL = the character.",
    "hx_screen_shows": "the screen shows {shown}, not {expect}.",
    "hx_boot_hint": "write 16-bit code that prints the text on the screen with int $0x10 "
                    "(AH = 0x0E, AL = the character), then stops with cli; hlt.",
    "hx_boot_too_big": "your code assembles to {size} bytes; a boot sector holds 510 before "
                       "its 55AA signature",
    "hx_boot_no_halt": " (it did not halt: end with cli; hlt)",
    "hx_boot_right": "the BIOS loaded your {size}-byte boot sector at 0000:7C00 and the screen "
                     "shows {expect}, with {exits} VM exits from your code{tail}.",
    "hx_cpuid_hint": "execute cpuid with EAX = 0x40000000; Xen answers with its signature in "
                     "EBX, ECX, EDX (4 characters each, lowest byte first). Print those 12 "
                     "characters with int $0x10 (AH = 0x0E), then cli; hlt.",
    "hx_cpuid_typed": "the screen shows the signature, but your code never asked CPUID leaf "
                      "0x40000000: print what Xen answers, not a string you typed.",
    "hx_cpuid_right": "CPUID leaf 0x40000000 was a VM exit Xen answered itself, and your boot "
                      "sector printed {signature}: this guest knows it runs on Xen, the first "
                      "thing PV drivers in an HVM guest check.",
    "hx_cpuid_never_asked": "your code never asked CPUID leaf 0x40000000 (leaves asked: "
                            "{asked}). {screen}",
    "hx_cpuid_asked": "you asked leaf 0x40000000; {screen} Print EBX, then ECX, then EDX, "
                      "lowest byte first (shr $8 between bytes).",
    "hx_exits_hint": "write your prediction (a whole number) before you run the code, then "
                     "run the cell: the run counts every VM exit of the code after the BIOS "
                     "jumps to it.",
    "hx_exits_not_whole": "the prediction must be a whole number, not {given}",
    "hx_exits_who": "{xen} handled by Xen, {dm} by the device model",
    "hx_exits_crashed": "the code crashed before it finished ({crash}); fix it first. Exits "
                        "so far: {summary}.",
    "hx_exits_right": "{n} VM exits ({who}): {summary}.",
    "hx_more": "more",
    "hx_fewer": "fewer",
    "hx_exits_wrong": "you predicted {guess}; the run measured {n} ({off}): {summary}; {who}. "
                      "Which instructions of yours leave the guest?",
    "hx_idle_hint": "after the timer is armed, the guest has nothing to do until the timer's "
                    "event: give the CPU back to Xen with one sched_op hypercall (EDI = the "
                    "command, ESI = its argument, then HYPERCALL __HYPERVISOR_sched_op). "
                    "Which SCHEDOP_ command waits for an event?",
    "hx_idle_hlt": " hlt is a privileged instruction: a PV kernel runs in ring 3 and Xen "
                   "answers #GP, so it crashes the guest. Ask Xen instead.",
    "hx_idle_yields": " It called sched_op(SCHEDOP_yield) {count} times: yield keeps the vCPU "
                      "runnable, so it comes straight back.",
    "hx_idle_spins": " It made no sched_op call: it spins.",
    "hx_idle_running": "after {run_ms} ms the guest was still in your code, having used the "
                       "CPU all along ({cpu_ms} ms).{how} Block until an event instead, and "
                       "let the timer's event end the wait.",
    "hx_idle_stopped": "the guest stopped inside your code (it never reached the line after "
                       "it): do not shut it down, just wait.",
    "hx_idle_at_once": "your code returned at once, without waiting for the timer at "
                       "{deadline_ms} ms ({cpu_ms} ms of CPU, no SCHEDOP_block): the guest "
                       "never gave the CPU back.",
    "hx_idle_right": "sched_op({command}) blocked the vCPU until VIRQ_TIMER fired at "
                     "{deadline_ms} ms; it used {cpu_us} us of CPU in all. This is how a PV "
                     "kernel idles.",
    "hx_console_hint": "call HYPERVISOR_console_io(CONSOLEIO_write, count, buffer): EDI = "
                       "CONSOLEIO_write, ESI = msg_len, RDX = the address of msg (lea "
                       "msg(%rip), %rdx), then HYPERCALL __HYPERVISOR_console_io.",
    "hx_console_bad_expect": "the expected text must be 1-60 printable characters without "
                             "quotes or backslashes",
    "hx_console_right": "Xen's console shows {line}: your console_io hypercall (number 18) "
                        "went through the hypercall page.",
    "hx_console_none": "your code made no console_io hypercall (number 18){made}: HYPERCALL "
                       "__HYPERVISOR_console_io.",
    "hx_console_returned": "console_io returned {ret} ({args}): check EDI (the command), ESI "
                           "(the count) and RDX (the buffer's address).",
    "hx_console_count": "console_io wrote {count} bytes; msg is {size} bytes with its newline "
                        "(msg_len), and Xen prints a line only when it sees the newline: ESI "
                        "is the count.",
    "hx_console_shows": "console_io ran, but Xen's console shows {shown}, not {expect}: ESI "
                        "is the number of bytes (msg_len), RDX where they are (msg).",
    "hx_pte_hint": "ask Xen to rewrite scratch's L1 entry: one mmu_update whose request (a "
                   "struct mmu_update {fields} in mmu_req) names the entry's machine address "
                   "(RSI) and the new entry (built from other's frame, RCX).",
    "hx_pte_right": "Xen validated your entry (ptr {ptr}, val {val}: a frame of the domain's, "
                    "not a page table) and wrote it: scratch now reads other's page. This is "
                    "how a PV kernel changes its page tables.",
    "hx_pte_not_present": "Xen wrote your entry {val}, but its PRESENT bit (1) is clear: "
                          "scratch is no longer mapped, and reading it page-faulted ({crash}).",
    "hx_pte_none": "your code made no mmu_update hypercall (number 1){made}: HYPERCALL "
                   "__HYPERVISOR_mmu_update.",
    "hx_pte_check_args": " Check the four arguments: RDI = &mmu_req, RSI = 1, RDX = 0, R10 = "
                         "DOMID_SELF.",
    "hx_pte_virtual_ptr": " ptr must be the machine address of the L1 entry (RSI when your "
                          "code starts), not a virtual address.",
    "hx_pte_not_owned": " val must name other's machine frame: RCX << 12, plus the flag bits.",
    "hx_pte_page_table": " That frame is a page table: Xen never lets a guest map one "
                         "writable.",
    "hx_pte_reserved_bits": " Only the low flag bits and the frame number may be set in val.",
    "hx_pte_returned": "mmu_update returned {ret} ({why}).{hint}",
    "hx_pte_unchanged": "mmu_update succeeded, but scratch still shows its own page: val must "
                        "map other's frame (RCX << 12) with PRESENT (1); and ptr must be "
                        "scratch's L1 entry (RSI).",
    "hx_config_hint": "fix the config one error at a time: run the cell, read what xl says, "
                      "change that line.",
    "hx_config_other_name": "xl created {got}, not a domain named {name}: the name line "
                            "decides what xl list shows.",
    "hx_config_hvm": 'xl built an HVM guest (type = "hvm"): it boots firmware from a disk and '
                     "ignores kernel. pv-hello is a PV kernel.",
    "hx_config_gone": "the guest ran and powered off, and xl list no longer shows it: "
                      "on_poweroff decides what happens then (destroy, restart, preserve).",
    "hx_config_no_greeting": "the guest never printed its greeting on its console: is the "
                             "kernel pv-hello's?",
    "hx_config_right": "{name} booted, printed {line}, powered off and stays listed in state "
                       "{state}.",
    "hx_credit_hint": "write heavy's config: a copy of light's with its own name and a "
                      "weight.",
    "hx_credit_no_heavy": "there is no domain named 'heavy': set name = \"heavy\".",
    "hx_credit_crashed": "heavy crashed: {crash} (is its kernel pv-spin's?)",
    "hx_credit_measured": "heavy (weight {weight}) got {share} % of the CPU, light (weight "
                          "{light_weight}) {light_share} %",
    "hx_credit_right": "{measured} in the first 70 ms.",
    "hx_credit_wrong": "{measured}; the goal is {goal} %. The credit scheduler shares in "
                       "proportion to the weights: give heavy a larger weight than light's.",
    "hx_fe_hint": "write a function answer(fe) that grants fe.ring_pfn to the backend, "
                  "allocates an event channel for it, writes ring-ref, event-channel and "
                  "finally state = 3 (Initialised).",
    "hx_fe_not_whole": "{call}: {what} must be a whole number, not {given}",
    "hx_fe_not_a_page": "grant_access: pfn {pfn} is not a page of this guest",
    "hx_fe_alloc_failed": "alloc_unbound({domid}) failed: {error}",
    "hx_fe_bad_key": "write: the key is a node name such as 'ring-ref', not {given}",
    "hx_fe_log_grant": "grant ref {ref}: d{domid} may use pfn {pfn}{read_only}",
    "hx_fe_read_only": " read-only",
    "hx_fe_log_port": "event channel port {port} for d{domid}",
    "hx_fe_not_function": "the answer is a function answer(fe), not {type}",
    "hx_fe_raised": "your step raised {error}",
    "hx_fe_right": "blkback mapped your grant, bound your port and went to 4 (Connected). You "
                   "did: {did}.",
    "hx_fe_read_only_refused": " blkback maps the ring read-write: a read-only grant is "
                               "refused.",
    "hx_fe_wrong_domain": " The grant must name the domain that maps it: the backend's "
                          "(fe.backend_id), not the guest itself.",
    "hx_fe_bad_ref": " ring-ref must be the ref grant_access returned.",
    "hx_fe_state_last": " blkback reads ring-ref and event-channel as soon as it sees state "
                        "3: write them first, the state last.",
    "hx_fe_port_domain": " The port must be allocated for the backend's domain "
                         "(alloc_unbound(0)).",
    "hx_fe_gave_up": "blkback gave up with error {error} and went to state {state}.{hint} You "
                     "did: {did}.",
    "hx_fe_waiting": "blkback is still in state {state} (InitWait): it acts when the "
                     "frontend's state node says 3 (Initialised). You did: {did}.",
    "hx_session_hint": 'a list of xl command lines such as ["list"], run in order: one '
                       "command per goal that is not met yet.",
    "hx_session_not_a_list": "the answer is a list of xl command lines (strings), such as "
                             '["pause web"]',
    "hx_session_failed": "`xl {command}` failed: {error}",
    "hx_goal_running": "running",
    "hx_goal_paused": "paused",
    "hx_gone": "gone",
    "hx_session_still_listed": "{name} is still listed (state {state}); the goal is that it "
                               "is gone.",
    "hx_session_gone": "{name} is gone; the goal is {goal}: a destroyed domain cannot come "
                       "back (xl create would build a new one).",
    "hx_session_not_paused": "{name} shows State {state}, not paused (p).",
    "hx_session_still_paused": "{name} shows State {state}: still paused.",
    "hx_session_right": "xl list now shows {summary}.",
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
