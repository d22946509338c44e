"""Waits on the TSC, judged exactly: what in one round of a loop depends on the time.

memtest86+'s ``usleep`` (its bit fade test sleeps 2 x 80 s of guest time) spins on

    pause; rdtsc; mov %eax,8(%esp); mov %edx,12(%esp); mov 8(%esp),%eax; mov 12(%esp),%edx
    sub %esi,%eax; sbb %edi,%edx; cmp %ebx,%eax; mov %edx,%eax; sbb %ecx,%eax; jb <pause>

a round that is never a fixed point (EDX:EAX and the stack slot hold the time read), so
``xenlab.cpu.idle`` cannot skip it as an idle loop. ``judge_round`` reads one recorded
round (each instruction, the registers before it and the memory it touched) and says
whether the rounds after it do the same again until the time read crosses a known
value:

- **liveness**: which registers, flags and bytes of memory the round writes before it
  reads them (dead at the loop's head: what they hold there does not matter);
- **the time, followed**: the values ``rdtsc`` returns are tracked as affine functions
  of the TSC ``T`` (bits ``lo`` up of ``T + c`` modulo 2^64, shifted), through moves,
  the stack, ``add``/``sub``/``cmp`` with constants, the ``sub``/``sbb`` (``add``/
  ``adc``) pair of a 64-bit subtraction on two 32-bit registers, shifts and the ``or``
  that joins EDX:EAX in 64-bit code; any other use of the time makes its result opaque;
- **what it decides**: a conditional branch may test the time only through the carry
  and zero flags of an unsigned comparison of such a value with a constant (``jb``,
  ``jae``, ``ja``, ``jbe``, ``je``, ``jne``: below, or below the constant plus one):
  the branch goes the same way until the value crosses one of them, a number of
  rounds ``rounds_to_flip`` works out. Any other branch, address or count the time reaches,
  or a time-dependent value left where the next round reads it before writing it: no
  verdict. Every tracked value is checked against the register or store the CPU really
  produced in the recorded round.

Which instructions are understood is the explicit table ``_HANDLERS``; anything else
(``int``, port I/O, a far jump, ``div``, a string instruction, a system instruction)
ends the judgement with a reason.

Real Xen: none, as xenlab/cpu/idle.py. The taint and liveness passes are what dynamic
binary analysers do over a trace (Valgrind's memcheck follows definedness bit by bit;
here only one source, the TSC, is followed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import capstone
from capstone import x86_const as cx

__all__ = ["Pred", "Step", "Verdict", "judge_round", "rounds_to_flip"]

_M64 = (1 << 64) - 1

#: The general registers by slot (QEMU's regs[]: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15),
#: each as its 64-, 32-, 16- and low 8-bit names.
_GPRS = (
    (cx.X86_REG_RAX, cx.X86_REG_EAX, cx.X86_REG_AX, cx.X86_REG_AL),
    (cx.X86_REG_RCX, cx.X86_REG_ECX, cx.X86_REG_CX, cx.X86_REG_CL),
    (cx.X86_REG_RDX, cx.X86_REG_EDX, cx.X86_REG_DX, cx.X86_REG_DL),
    (cx.X86_REG_RBX, cx.X86_REG_EBX, cx.X86_REG_BX, cx.X86_REG_BL),
    (cx.X86_REG_RSP, cx.X86_REG_ESP, cx.X86_REG_SP, cx.X86_REG_SPL),
    (cx.X86_REG_RBP, cx.X86_REG_EBP, cx.X86_REG_BP, cx.X86_REG_BPL),
    (cx.X86_REG_RSI, cx.X86_REG_ESI, cx.X86_REG_SI, cx.X86_REG_SIL),
    (cx.X86_REG_RDI, cx.X86_REG_EDI, cx.X86_REG_DI, cx.X86_REG_DIL),
    (cx.X86_REG_R8, cx.X86_REG_R8D, cx.X86_REG_R8W, cx.X86_REG_R8B),
    (cx.X86_REG_R9, cx.X86_REG_R9D, cx.X86_REG_R9W, cx.X86_REG_R9B),
    (cx.X86_REG_R10, cx.X86_REG_R10D, cx.X86_REG_R10W, cx.X86_REG_R10B),
    (cx.X86_REG_R11, cx.X86_REG_R11D, cx.X86_REG_R11W, cx.X86_REG_R11B),
    (cx.X86_REG_R12, cx.X86_REG_R12D, cx.X86_REG_R12W, cx.X86_REG_R12B),
    (cx.X86_REG_R13, cx.X86_REG_R13D, cx.X86_REG_R13W, cx.X86_REG_R13B),
    (cx.X86_REG_R14, cx.X86_REG_R14D, cx.X86_REG_R14W, cx.X86_REG_R14B),
    (cx.X86_REG_R15, cx.X86_REG_R15D, cx.X86_REG_R15W, cx.X86_REG_R15B),
)
#: capstone register -> (slot, first bit, width)
_REGS: dict[int, tuple[int, int, int]] = {
    reg: (slot, 0, width) for slot, names in enumerate(_GPRS)
    for reg, width in zip(names, (64, 32, 16, 8), strict=True)}
_REGS.update({cx.X86_REG_AH: (0, 8, 8), cx.X86_REG_CH: (1, 8, 8), cx.X86_REG_DH: (2, 8, 8),
              cx.X86_REG_BH: (3, 8, 8)})
#: registers an instruction may name besides the general ones: they are not followed
_IGNORED_REGS = frozenset({cx.X86_REG_EFLAGS, cx.X86_REG_RIP, cx.X86_REG_EIP, cx.X86_REG_IP,
                           cx.X86_REG_CS, cx.X86_REG_DS, cx.X86_REG_ES, cx.X86_REG_SS,
                           cx.X86_REG_FS, cx.X86_REG_GS})
_RSP = 4

#: the six status flags: (EFLAGS bit, capstone's test bit, its bits for a write)
_FLAGS: tuple[tuple[int, int, int], ...] = tuple(
    (bit, test, modify | reset | set_ | undefined | prior)
    for bit, test, modify, reset, set_, undefined, prior in (
        (0, cx.X86_EFLAGS_TEST_CF, cx.X86_EFLAGS_MODIFY_CF, cx.X86_EFLAGS_RESET_CF,
         cx.X86_EFLAGS_SET_CF, cx.X86_EFLAGS_UNDEFINED_CF, cx.X86_EFLAGS_PRIOR_CF),
        (2, cx.X86_EFLAGS_TEST_PF, cx.X86_EFLAGS_MODIFY_PF, cx.X86_EFLAGS_RESET_PF,
         cx.X86_EFLAGS_SET_PF, cx.X86_EFLAGS_UNDEFINED_PF, cx.X86_EFLAGS_PRIOR_PF),
        (4, cx.X86_EFLAGS_TEST_AF, cx.X86_EFLAGS_MODIFY_AF, cx.X86_EFLAGS_RESET_AF,
         cx.X86_EFLAGS_SET_AF, cx.X86_EFLAGS_UNDEFINED_AF, cx.X86_EFLAGS_PRIOR_AF),
        (6, cx.X86_EFLAGS_TEST_ZF, cx.X86_EFLAGS_MODIFY_ZF, cx.X86_EFLAGS_RESET_ZF,
         cx.X86_EFLAGS_SET_ZF, cx.X86_EFLAGS_UNDEFINED_ZF, cx.X86_EFLAGS_PRIOR_ZF),
        (7, cx.X86_EFLAGS_TEST_SF, cx.X86_EFLAGS_MODIFY_SF, cx.X86_EFLAGS_RESET_SF,
         cx.X86_EFLAGS_SET_SF, cx.X86_EFLAGS_UNDEFINED_SF, cx.X86_EFLAGS_PRIOR_SF),
        (11, cx.X86_EFLAGS_TEST_OF, cx.X86_EFLAGS_MODIFY_OF, cx.X86_EFLAGS_RESET_OF,
         cx.X86_EFLAGS_SET_OF, cx.X86_EFLAGS_UNDEFINED_OF, cx.X86_EFLAGS_PRIOR_OF)))
FLAG_BITS = tuple(bit for bit, _t, _w in _FLAGS)
_CF, _ZF = 0, 3

#: What a location holds: clean (absent from the maps), a value of the time (``_Form``,
#: ``Pred`` for the carry flag) or something the time reached otherwise.
_OPAQUE = "opaque"


def _mask(bits: int) -> int:
    return (1 << bits) - 1 if bits > 0 else 0


@dataclass(frozen=True)
class _Form:
    """``((X >> lo) mod 2**width) << shift`` with ``X = (T + c) mod 2**64``."""
    c: int
    lo: int
    width: int
    shift: int

    def value(self, t: int) -> int:
        return ((((t + self.c) & _M64) >> self.lo) & _mask(self.width)) << self.shift

    def view(self, bits: int) -> _Form | None:
        """The low ``bits`` of the value (None: they are all zero)."""
        if self.shift >= bits:
            return None
        return _Form(self.c, self.lo, min(self.width, bits - self.shift), self.shift)

    def whole(self, bits: int) -> bool:
        """The value is ``T + c`` modulo 2**bits: add and subtract stay in the form."""
        return self.lo == 0 and self.shift == 0 and self.width == bits


@dataclass(frozen=True)
class Pred:
    """A flag that is ``((X >> lo) mod 2**width) < k``, negated if ``neg``."""
    c: int
    lo: int
    width: int
    k: int
    neg: bool

    def truth(self, t: int) -> bool:
        v = (((t + self.c) & _M64) >> self.lo) & _mask(self.width)
        return (v < self.k) != self.neg


@dataclass(frozen=True)
class _Eq:
    """The zero flag of a comparison of ``(X >> lo) mod 2**width`` with ``k``: equal, i.e.
    below ``k + 1`` and not below ``k`` (two comparisons a branch on it depends on)."""
    c: int
    lo: int
    width: int
    k: int

    def truth(self, t: int) -> bool:
        return (((t + self.c) & _M64) >> self.lo) & _mask(self.width) == self.k

    def preds(self) -> list[Pred]:
        return [Pred(self.c, self.lo, self.width, k, False) for k in (self.k, self.k + 1)]


def rounds_to_flip(pred: Pred, t: int, step: int) -> int | None:
    """The first round ``j`` > 0 at which ``pred`` may be other than at round 0, whose
    time is ``t``, when each round's time is ``step`` on (at or before the first change:
    a bound, exact for the usual case); None if it never changes."""
    span = 1 << (pred.lo + pred.width)
    y = ((t + pred.c) & _M64) % span
    edge = pred.k << pred.lo
    if edge >= span or pred.k <= 0:
        return None                 # always below (or never): no change
    target = edge if y < edge else span     # crosses the constant, or wraps round
    return max(1, -(-(target - y) // step))


@dataclass
class Step:
    """One instruction of the recorded round: where, its bytes, the general registers
    before it (QEMU's order, 16 of them) and EFLAGS, and its memory accesses in order:
    (is a write, linear address, size, value)."""
    address: int
    code: bytes
    regs: Sequence[int]
    eflags: int
    accesses: list[tuple[bool, int, int, int]] = field(default_factory=list)


@dataclass
class Verdict:
    """A round judged: what is dead at the head (general registers by slot, status
    flags by index in ``FLAG_BITS``, bytes by linear address), the comparisons of the
    time its branches make, and the time its first ``rdtsc`` read."""
    t: int
    preds: list[Pred]
    dead_slots: frozenset[int]
    dead_flags: frozenset[int]
    dead_bytes: frozenset[int]
    #: the bytes the round reads before it writes them, if it writes them at all
    live_bytes: frozenset[int]


class _Refused(Exception):
    """The round is not a wait the judgement understands (the reason)."""


class _Judge:
    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.first: dict[tuple[str, int], bool] = {}    # location -> first access a write
        self.regs: dict[int, object] = {}
        self.flags: dict[int, object] = {}
        self.mem: dict[int, tuple[object, tuple[int, int], int]] = {}
        self.preds: list[Pred] = []
        self.t: int | None = None
        self.insn: _Insn
        self.step: Step
        self.after: Sequence[int] = ()
        self.after_flags = 0

    # -- locations -------------------------------------------------------------------
    def _touch(self, loc: tuple[str, int], write: bool) -> None:
        self.first.setdefault(loc, write)

    def read_reg(self, reg: int) -> tuple[object, int]:
        """The taint and value (before the instruction) of register ``reg``."""
        if reg not in _REGS:
            raise _Refused(f"{self.insn.mnemonic} {self.insn.op_str}: register not followed")
        slot, lo, width = _REGS[reg]
        self._touch(("r", slot), False)
        value = (self.step.regs[slot] >> lo) & _mask(width)
        taint = self.regs.get(slot)
        if taint is None:
            return None, value
        if isinstance(taint, _Form) and lo == 0:
            return taint.view(width), value
        return _OPAQUE, value

    def write_reg(self, reg: int, taint: object) -> None:
        if reg not in _REGS:
            raise _Refused(f"{self.insn.mnemonic} {self.insn.op_str}: register not followed")
        slot, _lo, width = _REGS[reg]
        if width < 32:      # the rest of the register stays: read as well as written
            self._touch(("r", slot), False)
            if taint is not None or self.regs.get(slot) is not None:
                taint = _OPAQUE
        self._touch(("r", slot), True)
        if taint is None:
            self.regs.pop(slot, None)
        else:
            self.regs[slot] = taint

    def accesses(self, write: bool) -> list[tuple[int, int, int]]:
        return [(a, s, v) for w, a, s, v in self.step.accesses if w == write]

    def load(self, address: int, size: int) -> object:
        """The taint of ``size`` bytes loaded at ``address``: a value of the time only if
        one store of the same size put it there."""
        entries = []
        for a in range(address, address + size):
            self._touch(("m", a), False)
            entries.append(self.mem.get(a))
        if all(e is None for e in entries):
            return None
        if all(e is not None and e[1] == (address, size) for e in entries):
            taint = entries[0][0] if entries[0] is not None else None
            if isinstance(taint, _Form):
                return taint
        return _OPAQUE

    def store(self, address: int, size: int, taint: object, value: int) -> None:
        if isinstance(taint, _Form):
            self.check(taint.value(self.t or 0) & _mask(8 * size), value, "store")
        for a in range(address, address + size):
            self._touch(("m", a), True)
            if taint is None:
                self.mem.pop(a, None)
            else:
                self.mem[a] = (taint, (address, size), address)

    def set_flags(self, taint: object, cf: object = "same", zf: object = "same") -> None:
        """The flags the instruction writes (capstone's eflags) get ``taint``; the carry
        ``cf`` and the zero flag ``zf`` if given."""
        bits = self.insn.eflags
        for i, (_bit, _test, write) in enumerate(_FLAGS):
            if bits & write:
                self._touch(("f", i), True)
                t = taint
                if i == _CF and cf != "same":
                    t = cf
                elif i == _ZF and zf != "same":
                    t = zf
                if t is None:
                    self.flags.pop(i, None)
                else:
                    self.flags[i] = t

    def tested_flags(self) -> dict[int, object]:
        """The flags the instruction reads (by index in ``_FLAGS``) and what they hold."""
        out: dict[int, object] = {}
        for i, (_bit, test, _write) in enumerate(_FLAGS):
            if self.insn.eflags & test:
                self._touch(("f", i), False)
                out[i] = self.flags.get(i)
        return out

    def check(self, expected: int, seen: int, what: str) -> None:
        if expected != seen:
            raise _Refused(f"{self.insn.mnemonic} {self.insn.op_str}: the {what} is "
                           f"{seen:#x}, the model says {expected:#x}")

    # -- operands --------------------------------------------------------------------
    def operand(self, op: Any) -> tuple[object, int]:
        """Taint and value of a source operand (register, immediate or memory)."""
        if op.type == cx.X86_OP_REG:
            return self.read_reg(op.reg)
        if op.type == cx.X86_OP_IMM:
            return None, op.imm & _mask(8 * op.size)
        self.address_clean(op)
        reads = self.accesses(False)
        if not reads:
            raise _Refused(f"{self.insn.mnemonic}: no load seen")
        address, size, value = reads[0]
        if size != op.size:
            raise _Refused(f"{self.insn.mnemonic}: a load split in parts")
        return self.load(address, size), value

    def address_clean(self, op: Any) -> None:
        for reg in (op.mem.base, op.mem.index):
            if reg and reg in _REGS:
                taint, _ = self.read_reg(reg)
                if taint is not None:
                    raise _Refused(f"{self.insn.mnemonic} {self.insn.op_str}: the time "
                                   "reaches an address")

    def put(self, op: Any, taint: object) -> None:
        """Write the destination operand (register or memory)."""
        if op.type == cx.X86_OP_REG:
            self.write_reg(op.reg, taint)
            return
        self.address_clean(op)
        writes = self.accesses(True)
        if not writes:
            raise _Refused(f"{self.insn.mnemonic}: no store seen")
        for address, size, value in writes:
            self.store(address, size, taint, value)

    # -- the instructions ------------------------------------------------------------
    def nothing(self) -> None:
        pass

    def rdtsc(self) -> None:
        t = (self.after[2] & 0xFFFF_FFFF) << 32 | self.after[0] & 0xFFFF_FFFF
        if self.t is None:
            self.t = t
        c = (t - self.t) & _M64
        self.write_reg(cx.X86_REG_EAX, _Form(c, 0, 32, 0))
        self.write_reg(cx.X86_REG_EDX, _Form(c, 32, 32, 0))
        if self.insn.id == cx.X86_INS_RDTSCP:
            self.write_reg(cx.X86_REG_ECX, None)

    def mov(self) -> None:
        dst, src = self.insn.operands
        taint, _ = self.operand(src)
        self.put(dst, taint)

    def arith(self) -> None:
        """add, sub, cmp, adc, sbb: the time plus or minus a constant, and the carry."""
        insn = self.insn
        dst, src = insn.operands
        bits = 8 * dst.size
        i = insn.id
        if (i == cx.X86_INS_SUB and dst.type == src.type == cx.X86_OP_REG
                and dst.reg == src.reg):
            self.set_flags(None)
            self.write_reg(dst.reg, None)       # sub r, r: zero, nothing read
            return
        carry = i in (cx.X86_INS_ADC, cx.X86_INS_SBB)
        add = i in (cx.X86_INS_ADD, cx.X86_INS_ADC)
        cf_in = self.tested_flags().get(_CF) if carry else None
        a, ka = self.operand(dst)
        b, kb = self.operand(src)
        if carry and cf_in is None:     # a known carry: part of the constant
            kb += self.step.eflags & 1
        result: object = None
        cf: object = None
        zf: object = "same"
        if cf_in == _OPAQUE or (a is not None and b is not None):
            result = cf = _OPAQUE
        elif cf_in is not None:
            result, cf = self.carry_chain(a, kb, cf_in, bits)
        elif a is None and b is None:
            pass
        elif kb >> bits or ka >> bits:
            result = cf = _OPAQUE
        elif isinstance(a, _Form) and a.shift == 0:
            result, cf = self.with_constant(a, kb, bits, add)
            if not add and not carry:
                zf = _Eq(a.c, a.lo, a.width, kb)
        elif isinstance(b, _Form) and b.shift == 0 and not carry:
            if add:
                result, cf = self.with_constant(b, ka, bits, True)
            else:   # k - X: the result is not followed, the carry (k < X) and zero are
                result = _OPAQUE
                cf = (Pred(b.c, b.lo, b.width, ka + 1, True) if ka + 1 < (1 << bits)
                      else None)
                zf = _Eq(b.c, b.lo, b.width, ka)
        else:
            result = cf = _OPAQUE
        other = None if result is None and cf is None else _OPAQUE
        self.set_flags(other, cf, zf if zf != "same" else other)
        if i != cx.X86_INS_CMP:
            self.put(dst, result)

    @staticmethod
    def with_constant(a: _Form, k: int, bits: int, add: bool) -> tuple[object, object]:
        """X + k or X - k on ``bits`` bits: the result (a value of the time if X is
        ``T + c`` whole) and the carry (a comparison of X with a constant)."""
        whole = a.whole(bits)
        if add:
            result = _Form((a.c + k) & _M64, 0, bits, 0) if whole else _OPAQUE
            return result, (Pred(a.c, a.lo, a.width, (1 << bits) - k, True) if k else None)
        result = _Form((a.c - k) & _M64, 0, bits, 0) if whole else _OPAQUE
        return result, Pred(a.c, a.lo, a.width, k, False)

    def carry_chain(self, a: object, k2: int, cf_in: object, bits: int
                    ) -> tuple[object, object]:
        """The high half of a 64-bit add or subtract on 32-bit registers: ``adc``/``sbb``
        of a constant to the time's high half, the carry from its low half."""
        sbb = self.insn.id == cx.X86_INS_SBB
        if (bits != 32 or not isinstance(a, _Form) or not isinstance(cf_in, Pred)
                or (a.lo, a.width, a.shift) != (32, 32, 0)
                or (cf_in.lo, cf_in.width) != (0, 32) or cf_in.neg == sbb
                or (cf_in.c - a.c) & 0xFFFF_FFFF):
            return _OPAQUE, _OPAQUE
        k = cf_in.k if sbb else (1 << 32) - cf_in.k
        big = (k2 << 32) | k
        if sbb:
            return (_Form((a.c - big) & _M64, 32, 32, 0), Pred(a.c, 0, 64, big, False))
        return (_Form((a.c + big) & _M64, 32, 32, 0),
                Pred(a.c, 0, 64, (1 << 64) - big, True) if big else None)

    def logic(self) -> None:
        """and, or, xor, test: ``xor r, r`` is a zero; ``or`` joins EDX:EAX in 64-bit
        code; anything else the time reaches is opaque."""
        insn = self.insn
        dst, src = insn.operands
        if (insn.id == cx.X86_INS_XOR and dst.type == src.type == cx.X86_OP_REG
                and dst.reg == src.reg):
            self.set_flags(None)
            self.write_reg(dst.reg, None)
            return
        a, _ = self.operand(dst)
        b, _ = self.operand(src)
        result: object = None if a is None and b is None else _OPAQUE
        if (insn.id == cx.X86_INS_OR and isinstance(a, _Form) and isinstance(b, _Form)
                and a.c == b.c):
            low, high = sorted((a, b), key=lambda f: f.lo)
            if (low.lo == low.shift and high.lo == high.shift
                    and low.lo + low.width == high.lo):
                result = _Form(a.c, low.lo, low.width + high.width, low.lo)
        self.set_flags(None if result is None else _OPAQUE)
        if insn.id != cx.X86_INS_TEST:
            self.put(dst, result)

    def shift(self) -> None:
        insn = self.insn
        dst = insn.operands[0]
        bits = 8 * dst.size
        if len(insn.operands) > 1:
            taint, count = self.operand(insn.operands[1])
            if taint is not None:
                raise _Refused(f"{insn.mnemonic} {insn.op_str}: the time is the count")
        else:
            count = 1
        count &= 63 if bits == 64 else 31
        a, _ = self.operand(dst)
        if count == 0:
            return                  # flags and value unchanged
        result: object = None
        if isinstance(a, _Form):
            if insn.id == cx.X86_INS_SHR:
                if a.shift >= count:
                    result = _Form(a.c, a.lo, a.width, a.shift - count)
                else:
                    d = count - a.shift
                    result = (_Form(a.c, a.lo + d, a.width - d, 0) if a.width > d
                              else None)
            else:
                result = _Form(a.c, a.lo, a.width, a.shift + count).view(bits)
        elif a is not None:
            result = _OPAQUE
        self.set_flags(None if a is None else _OPAQUE)
        self.put(dst, result)

    def lea(self) -> None:
        dst, src = self.insn.operands
        mem = src.mem
        base = self.read_reg(mem.base)[0] if mem.base in _REGS else None
        index = self.read_reg(mem.index)[0] if mem.index in _REGS else None
        bits = 8 * dst.size
        result: object = None
        if index is not None:
            result = _OPAQUE
        elif isinstance(base, _Form) and base.whole(bits) and not mem.index:
            result = _Form((base.c + mem.disp) & _M64, 0, bits, 0)
        elif base is not None:
            result = _OPAQUE
        self.write_reg(dst.reg, result)

    def branch(self) -> None:
        """A conditional branch (or loop, jcxz): the time may decide it only through
        the carry and zero flags of an unsigned comparison with a constant (jb, jae, ja,
        jbe, je, jne), each a threshold the time crosses once."""
        for reg in self.insn.regs_access()[0]:
            if reg in _REGS and self.read_reg(reg)[0] is not None:
                raise _Refused(f"{self.insn.mnemonic}: the time is its count")
        tested = self.tested_flags()
        if all(t is None for t in tested.values()):
            return
        t = self.t or 0
        for i, taint in tested.items():
            if i == _CF and isinstance(taint, Pred):
                self.check(int(taint.truth(t)), self.step.eflags & 1, "carry flag")
                self.preds.append(taint)
            elif i == _ZF and isinstance(taint, _Eq):
                self.check(int(taint.truth(t)), self.step.eflags >> 6 & 1, "zero flag")
                self.preds += taint.preds()
            elif taint is not None:
                raise _Refused(f"{self.insn.mnemonic}: the time decides it, not "
                               "monotonically")

    def stack(self) -> None:
        """push, pop, call, ret (near): the stack pointer must not depend on the time."""
        insn = self.insn
        if self.read_reg(cx.X86_REG_RSP)[0] is not None:
            raise _Refused(f"{insn.mnemonic}: the time reaches the stack pointer")
        if insn.id == cx.X86_INS_PUSH:
            taint, _ = self.operand(insn.operands[0])
            for address, size, value in self.accesses(True):
                self.store(address, size, taint, value)
        elif insn.id == cx.X86_INS_POP:
            address, size, _v = self.accesses(False)[0]
            self.put(insn.operands[0], self.load(address, size))
        elif insn.id == cx.X86_INS_CALL:
            if insn.operands[0].type != cx.X86_OP_IMM:
                self.generic()
                return
            for address, size, value in self.accesses(True):
                self.store(address, size, None, value)
        else:                                   # ret
            address, size, _v = self.accesses(False)[0]
            if self.load(address, size) is not None:
                raise _Refused("ret: the time is the return address")

    def generic(self) -> None:
        """Any other instruction in the table: the time in, opaque out."""
        insn = self.insn
        read, written = insn.regs_access()
        tainted = False
        for reg in read:
            if reg in _IGNORED_REGS:
                continue
            tainted |= self.read_reg(reg)[0] is not None
        for op in insn.operands:
            if op.type == cx.X86_OP_MEM:
                self.address_clean(op)
        for address, size, _v in self.accesses(False):
            tainted |= self.load(address, size) is not None
        tainted |= any(t is not None for t in self.tested_flags().values())
        if insn.id in _TRANSFERS and tainted:
            raise _Refused(f"{insn.mnemonic} {insn.op_str}: the time decides where to")
        out = _OPAQUE if tainted else None
        for reg in written:
            if reg not in _IGNORED_REGS:
                self.write_reg(reg, out)
        for address, size, value in self.accesses(True):
            self.store(address, size, out, value)
        self.set_flags(out)

    # -- the round -------------------------------------------------------------------
    def run(self, steps: Sequence[Step], after: Step, mode: int) -> Verdict:
        for n, step in enumerate(steps):
            nxt = steps[n + 1] if n + 1 < len(steps) else after
            self.insn, self.step = _decode(mode, step), step
            self.after, self.after_flags = nxt.regs, nxt.eflags
            if self.insn.prefix[0] and self.insn.id not in _PREFIX_OK:     # lock, rep
                raise _Refused(f"{self.insn.mnemonic}: prefixed")
            handler = _HANDLERS.get(self.insn.id)
            if handler is None:
                raise _Refused(f"{self.insn.mnemonic} {self.insn.op_str}: not followed")
            handler(self)
            self.check_after()
        if self.t is None:
            raise _Refused("no rdtsc in the round")
        code = {page for step in steps
                for page in (step.address >> 12, (step.address + len(step.code) - 1) >> 12)}
        if any(w and (a >> 12 in code or (a + n - 1) >> 12 in code)
               for step in steps for w, a, n, _v in step.accesses):
            raise _Refused("a store to a page of the round's own code")
        for loc, write in self.first.items():
            if not write and self.holds_time(loc):
                raise _Refused(f"the time is left in {loc} and read next round")
        dead = {loc for loc, write in self.first.items() if write}
        return Verdict(self.t, self.preds,
                       frozenset(i for kind, i in dead if kind == "r"),
                       frozenset(i for kind, i in dead if kind == "f"),
                       frozenset(i for kind, i in dead if kind == "m"),
                       frozenset(i for (kind, i), write in self.first.items()
                                 if kind == "m" and not write))

    def holds_time(self, loc: tuple[str, int]) -> bool:
        kind, i = loc
        if kind == "m":
            return i in self.mem
        return i in (self.regs if kind == "r" else self.flags)

    def check_after(self) -> None:
        """Every register the round holds a value of the time in, and a carry flag that
        is a comparison of it, must be what the CPU has after the instruction."""
        t = self.t or 0
        width = _mask(64 if self.bits == 64 else 32)
        for slot, taint in self.regs.items():
            if isinstance(taint, _Form):
                self.check(taint.value(t) & width, self.after[slot] & width, "register")
        cf = self.flags.get(_CF)
        if isinstance(cf, Pred):
            self.check(int(cf.truth(t)), self.after_flags & 1, "carry flag")
        zf = self.flags.get(_ZF)
        if isinstance(zf, _Eq):
            self.check(int(zf.truth(t)), self.after_flags >> 6 & 1, "zero flag")


_TRANSFERS = frozenset({cx.X86_INS_JMP, cx.X86_INS_CALL})
#: F3 90 is pause; a rep or bnd prefix on a near branch changes nothing it does
_PREFIX_OK = frozenset({cx.X86_INS_PAUSE, cx.X86_INS_RET, cx.X86_INS_JMP, cx.X86_INS_CALL,
                        cx.X86_INS_JB, cx.X86_INS_JAE, cx.X86_INS_JE, cx.X86_INS_JNE})

_H = Callable[[_Judge], None]
_HANDLERS: dict[int, _H] = {
    cx.X86_INS_PAUSE: _Judge.nothing, cx.X86_INS_NOP: _Judge.nothing,
    cx.X86_INS_LFENCE: _Judge.nothing, cx.X86_INS_MFENCE: _Judge.nothing,
    cx.X86_INS_RDTSC: _Judge.rdtsc, cx.X86_INS_RDTSCP: _Judge.rdtsc,
    cx.X86_INS_MOV: _Judge.mov,
    cx.X86_INS_ADD: _Judge.arith, cx.X86_INS_SUB: _Judge.arith, cx.X86_INS_CMP: _Judge.arith,
    cx.X86_INS_ADC: _Judge.arith, cx.X86_INS_SBB: _Judge.arith,
    cx.X86_INS_AND: _Judge.logic, cx.X86_INS_OR: _Judge.logic, cx.X86_INS_XOR: _Judge.logic,
    cx.X86_INS_TEST: _Judge.logic,
    cx.X86_INS_SHL: _Judge.shift, cx.X86_INS_SAL: _Judge.shift, cx.X86_INS_SHR: _Judge.shift,
    cx.X86_INS_LEA: _Judge.lea,
    cx.X86_INS_PUSH: _Judge.stack, cx.X86_INS_POP: _Judge.stack,
    cx.X86_INS_CALL: _Judge.stack, cx.X86_INS_RET: _Judge.stack,
    **{i: _Judge.branch for i in (
        cx.X86_INS_JA, cx.X86_INS_JAE, cx.X86_INS_JB, cx.X86_INS_JBE, cx.X86_INS_JE,
        cx.X86_INS_JNE, cx.X86_INS_JG, cx.X86_INS_JGE, cx.X86_INS_JL, cx.X86_INS_JLE,
        cx.X86_INS_JO, cx.X86_INS_JNO, cx.X86_INS_JP, cx.X86_INS_JNP, cx.X86_INS_JS,
        cx.X86_INS_JNS, cx.X86_INS_JCXZ, cx.X86_INS_JECXZ, cx.X86_INS_JRCXZ,
        cx.X86_INS_LOOP, cx.X86_INS_LOOPE, cx.X86_INS_LOOPNE)},
    **{i: _Judge.generic for i in (
        cx.X86_INS_JMP, cx.X86_INS_MOVZX, cx.X86_INS_MOVSX, cx.X86_INS_MOVSXD,
        cx.X86_INS_NEG, cx.X86_INS_NOT, cx.X86_INS_INC, cx.X86_INS_DEC, cx.X86_INS_IMUL,
        cx.X86_INS_MUL, cx.X86_INS_XCHG, cx.X86_INS_CDQ, cx.X86_INS_CWDE, cx.X86_INS_CDQE,
        cx.X86_INS_CQO, cx.X86_INS_CWD, cx.X86_INS_CBW, cx.X86_INS_BT, cx.X86_INS_ROL,
        cx.X86_INS_ROR, cx.X86_INS_SAR, cx.X86_INS_SHLD, cx.X86_INS_SHRD, cx.X86_INS_BSWAP,
        cx.X86_INS_BSF, cx.X86_INS_BSR,
        cx.X86_INS_SETA, cx.X86_INS_SETAE, cx.X86_INS_SETB, cx.X86_INS_SETBE,
        cx.X86_INS_SETE, cx.X86_INS_SETNE, cx.X86_INS_SETG, cx.X86_INS_SETGE,
        cx.X86_INS_SETL, cx.X86_INS_SETLE, cx.X86_INS_SETS, cx.X86_INS_SETNS,
        cx.X86_INS_CMOVA, cx.X86_INS_CMOVAE, cx.X86_INS_CMOVB, cx.X86_INS_CMOVBE,
        cx.X86_INS_CMOVE, cx.X86_INS_CMOVNE, cx.X86_INS_CMOVG, cx.X86_INS_CMOVGE,
        cx.X86_INS_CMOVL, cx.X86_INS_CMOVLE, cx.X86_INS_CMOVS, cx.X86_INS_CMOVNS)},
}


class _Insn:
    """What the judgement reads of a decoded instruction, read out of capstone once."""
    __slots__ = ("_access", "eflags", "id", "mnemonic", "op_str", "operands", "prefix")

    def __init__(self, insn: capstone.CsInsn) -> None:
        self.id, self.mnemonic, self.op_str = insn.id, insn.mnemonic, insn.op_str
        self.operands = list(insn.operands)
        self.eflags, self.prefix = insn.eflags, list(insn.prefix)
        read, written = insn.regs_access()
        self._access = (tuple(read), tuple(written))

    def regs_access(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self._access


_DECODERS: dict[int, capstone.Cs] = {}
_DECODED: dict[tuple[int, int, bytes], _Insn] = {}
_MAX_DECODED = 4096


def _decode(mode: int, step: Step) -> _Insn:
    """The instruction of ``step``, decoded once (a wait's rounds come back each slice)."""
    key = (mode, step.address, step.code)
    insn = _DECODED.get(key)
    if insn is None:
        md = _DECODERS.get(mode)
        if md is None:
            md = _DECODERS[mode] = capstone.Cs(capstone.CS_ARCH_X86, mode)
            md.detail = True
        insns = list(md.disasm(step.code, step.address, 1))
        if not insns:
            raise _Refused(f"no instruction at {step.address:#x}")
        if len(_DECODED) >= _MAX_DECODED:
            _DECODED.clear()
        insn = _DECODED[key] = _Insn(insns[0])
    return insn


def judge_round(steps: Sequence[Step], after: Step, mode: int) -> Verdict | str:
    """Judge one recorded round (``after``: the head again, the registers the round
    left); ``mode`` is capstone's (16, 32 or 64-bit code). A verdict, or why none."""
    judge = _Judge(64 if mode == capstone.CS_MODE_64 else 32)
    try:
        return judge.run(steps, after, mode)
    except _Refused as why:
        return str(why)
    except (capstone.CsError, IndexError, ValueError) as err:
        return f"cannot follow the round: {err}"
