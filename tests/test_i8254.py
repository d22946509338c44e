"""The PIT's channel 2 as port 0x61 shows it: the gate (bit 0) and OUT (bit 5), the way
memtest86+ and Linux calibrate their TSC against it (xenlab/xen/hvm/i8254.py; Xen's
emul-i8254.c pit_get_out and pit_set_gate)."""

from __future__ import annotations

from xenlab.xen.hvm.i8254 import PIT_FREQ, Pit


def _pit() -> tuple[Pit, list[int]]:
    now = [0]
    return Pit(lambda: now[0]), now


def _ns(ticks: int) -> int:
    return -(-ticks * 1_000_000_000 // PIT_FREQ)   # the first ns at which ``ticks`` passed


def _program(pit: Pit, mode: int, count: int) -> None:
    pit.io(0x43, True, 0xB0 | mode << 1)               # channel 2, lo then hi byte
    pit.io(0x42, True, count & 0xFF)
    pit.io(0x42, True, count >> 8)


def test_mode_0_out_rises_at_the_terminal_count_counted_from_the_gate() -> None:
    pit, now = _pit()
    assert pit.io(0x61, False, 0) & 1 == 0              # after reset the gate is low
    _program(pit, 0, 59_659)                            # 50 ms, as memtest86+ calibrates
    pit.io(0x61, True, 0x01)                            # gate up, speaker off
    start = now[0]
    now[0] = start + _ns(59_658)
    assert not pit.io(0x61, False, 0) & 0x20
    now[0] = start + _ns(59_659)
    assert pit.io(0x61, False, 0) & 0x20
    now[0] += 10**9                                     # mode 0 stays high
    assert pit.io(0x61, False, 0) & 0x20


def test_mode_3_is_a_square_wave_restarted_by_a_rising_gate() -> None:
    pit, now = _pit()
    _program(pit, 3, 100)
    now[0] = 1_000_000
    pit.io(0x61, True, 0x01)                            # rising gate: the count restarts
    outs = []
    for tick in (0, 49, 50, 99, 100, 149, 150):
        now[0] = 1_000_000 + _ns(tick)
        outs.append(pit.io(0x61, False, 0) >> 5 & 1)
    assert outs == [1, 1, 0, 0, 1, 1, 0]
    now[0] = 1_000_000 + _ns(60)
    pit.io(0x61, True, 0x01)                            # the gate stays up: no restart
    assert pit.io(0x61, False, 0) >> 5 & 1 == 0
