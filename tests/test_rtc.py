"""The RTC an HVM guest reads: Xen's wallclock, the guest's virtual time, rtc_timeoffset.

By default the machine's clock starts at 2026-01-01 00:00:00 UTC every run (the
notebooks and tests print what a guest reads and must print the same thing each
time). xl.cfg's ``rtc_timeoffset`` moves one guest's clock by whole seconds, as libxl
does with XEN_DOMCTL_settimeoffset; ``Lab(rtc_base="utc")`` (or ``$XENLAB_RTC_BASE``)
starts the machine's clock from the host's, QEMU's ``-rtc base=utc``, by choice.
"""

from __future__ import annotations

import calendar
import time
from pathlib import Path

import pytest

from xenlab.errors import UsageError
from xenlab.lab import Lab
from xenlab.public.domctl import DomctlCmd
from xenlab.xen.hvm.rtc import Rtc
from xenlab.xen.setup import WALLCLOCK_DEFAULT
from xenlab.xen.trace import Kind


def _read(rtc: Rtc, reg: int) -> int:
    rtc.io(0x70, True, reg)
    return rtc.io(0x71, False, 0)


def test_the_default_wallclock_is_new_year_2026() -> None:
    assert calendar.timegm((2026, 1, 1, 0, 0, 0)) == WALLCLOCK_DEFAULT


def test_registers_in_bcd_binary_and_twelve_hour_mode() -> None:
    now = [calendar.timegm((2026, 1, 31, 23, 59, 58))]
    rtc = Rtc(lambda: now[0])
    regs = (0x32, 0x09, 0x08, 0x07, 0x06, 0x04, 0x02, 0x00)
    assert [_read(rtc, r) for r in regs] == [0x20, 0x26, 0x01, 0x31, 0x07, 0x23, 0x59, 0x58]
    now[0] += 2   # over the end of the month: Sunday 1 February
    assert [_read(rtc, r) for r in regs] == [0x20, 0x26, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00]
    rtc.io(0x70, True, 0x0B)
    rtc.io(0x71, True, 0x02 | 0x04)                # register B: binary, 24-hour
    assert [_read(rtc, r) for r in (0x09, 0x08, 0x07)] == [26, 2, 1]
    now[0] += 13 * 3600 + 5 * 60                   # 13:05
    assert _read(rtc, 0x04) == 13
    rtc.io(0x70, True, 0x0B)
    rtc.io(0x71, True, 0x00)                       # BCD, 12-hour: 1 p.m.
    assert _read(rtc, 0x04) == 0x80 | 0x01
    now[0] -= 13 * 3600                            # 00:05 is 12 a.m.
    assert _read(rtc, 0x04) == 0x12


def _print_bcd(reg: int) -> bytes:
    """mov $reg,%al; out %al,$0x70; in $0x71,%al; print AL as two BCD digits to 0xE9."""
    return bytes([0xB0, reg, 0xE6, 0x70, 0xE4, 0x71,
                  0x88, 0xC4,              # mov %al, %ah
                  0xC0, 0xE8, 0x04,        # shr $4, %al
                  0x04, 0x30, 0xE6, 0xE9,  # add $'0', %al; out %al, $0xe9
                  0x88, 0xE0,              # mov %ah, %al
                  0x24, 0x0F,              # and $0x0f, %al
                  0x04, 0x30, 0xE6, 0xE9])  # add $'0', %al; out %al, $0xe9


def _print_char(ch: str) -> bytes:
    return bytes([0xB0, ord(ch), 0xE6, 0xE9])      # mov $ch, %al; out %al, $0xe9


#: A boot sector that prints the RTC's date and time, "2026-01-01 00:00:00", to 0xE9.
CLOCK_BOOT_SECTOR = b"".join([
    _print_bcd(0x32), _print_bcd(0x09), _print_char("-"), _print_bcd(0x08), _print_char("-"),
    _print_bcd(0x07), _print_char(" "), _print_bcd(0x04), _print_char(":"), _print_bcd(0x02),
    _print_char(":"), _print_bcd(0x00), _print_char("\n"),
    bytes([0xFA, 0xF4, 0xEB, 0xFD]),               # cli; hlt; jmp .-1
])


def _clock_guest(tmp: Path, extra: str = "", **lab_args: str) -> tuple[Lab, str]:
    disk = bytearray(64 * 1024)
    disk[: len(CLOCK_BOOT_SECTOR)] = CLOCK_BOOT_SECTOR
    disk[510:512] = b"\x55\xaa"
    image = tmp / "clock.img"
    image.write_bytes(bytes(disk))
    cfg = tmp / "clock.cfg"
    cfg.write_text('name = "clock"\ntype = "hvm"\nmemory = 32\n'
                   f"disk = [ 'format=raw, vdev=hda, access=ro, target={image}' ]\n" + extra)
    lab = Lab(memory_mib=256, dom0_mem_mib=64, **lab_args)
    lab.xl(f"create {cfg}")
    lab.run(max_instructions=20_000_000, max_seconds=1.0)
    lines = [line for line in lab.xl_output("dmesg").splitlines() if line.startswith("(d1) ")]
    return lab, lines[-1][5:]


def test_an_hvm_guest_reads_the_fixed_clock(tmp_path: Path) -> None:
    lab, shown = _clock_guest(tmp_path)
    assert shown == "2026-01-01 00:00:00"
    assert not [r for r in lab.trace.select(kind=Kind.HYPERCALL, dom=0)
                if r.args.get("cmd") == "XEN_DOMCTL_settimeoffset"]


@pytest.mark.parametrize(("offset", "shown"), [
    ("3661", "2026-01-01 01:01:01"),
    ('"-3600"', "2025-12-31 23:00:00"),             # xl.cfg's numbers have no sign
    ("4294963696", "2025-12-31 23:00:00"),          # libxl's uint32: the same -3600
    (str(45 * 86400 + 12 * 3600), "2026-02-15 12:00:00"),
])
def test_rtc_timeoffset_moves_the_guests_clock(tmp_path: Path, offset: str,
                                               shown: str) -> None:
    lab, line = _clock_guest(tmp_path, f"rtc_timeoffset = {offset}\n")
    assert line == shown
    d = lab.domain("clock")
    records = [r for r in lab.trace.select(kind=Kind.HYPERCALL, dom=0)
               if r.args.get("cmd") == DomctlCmd.XEN_DOMCTL_settimeoffset.name]
    assert [r.args["time_offset_seconds"] for r in records] == [d.time_offset_seconds]


def test_rtc_base_a_date_or_the_hosts_clock_by_choice(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _lab, shown = _clock_guest(tmp_path, rtc_base="2030-06-15T12:34:56")
    assert shown == "2030-06-15 12:34:56"
    monkeypatch.setenv("XENLAB_RTC_BASE", "2031-02-03")
    _lab, shown = _clock_guest(tmp_path)
    assert shown == "2031-02-03 00:00:00"
    _lab, shown = _clock_guest(tmp_path, rtc_base="fixed")   # the argument wins
    assert shown == "2026-01-01 00:00:00"
    monkeypatch.setenv("XENLAB_RTC_BASE", "utc")
    before = time.time()
    _lab, shown = _clock_guest(tmp_path)
    after = time.time()
    stamps = {time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
              for t in range(int(before), int(after) + 2)}
    assert shown in stamps


@pytest.mark.parametrize(("base", "message"), [
    ("now", "Lab(): rtc_base: the RTC base must be \"fixed\""),
    ("2030-13-01", "not '2030-13-01'"),
    ("1969-12-31", "a UTC date from 1970 to 2099"),
    ("2030-06-15T12:00:00+02:00", "not '2030-06-15T12:00:00+02:00'"),
])
def test_a_bad_rtc_base_is_one_line(base: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        Lab(memory_mib=256, dom0_mem_mib=64, rtc_base=base)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_rtc_base_from_the_environment_names_it(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.setenv("XENLAB_RTC_BASE", "yesterday")
    with pytest.raises(UsageError) as err:
        Lab(memory_mib=256, dom0_mem_mib=64)
    assert str(err.value).startswith("$XENLAB_RTC_BASE: the RTC base must be")
    with pytest.raises(UsageError, match="rtc_base must be a string"):
        Lab(memory_mib=256, dom0_mem_mib=64, rtc_base=2030)  # type: ignore[arg-type]
