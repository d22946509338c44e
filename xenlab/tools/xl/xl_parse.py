"""Parse xl domain configuration files (xl.cfg) into a :class:`DomainConfig`.

The syntax is the one libxlu accepts (``libxlu_cfg_l.l`` / ``libxlu_cfg_y.y``)::

    # a comment runs to the end of the line
    name    = "guest"           # "double" or 'single' quoted string
    memory  = 256               # integer: decimal or 0x hex
    type    = pvh               # a bare word is taken as a string too
    disk    = [ 'img.raw,raw,xvda,rw',
                'format=raw, vdev=xvdb, access=ro, target=data.img', ]
    cmdline = "console=hvc0"; vcpus = 2     # ';' separates settings as well
    cmdline += " quiet"         # '+=' appends to a string or a list

Strings understand the C escapes ``\\n \\t \\\\ \\" \\' \\xHH`` in both quote
styles (``\\xHH`` gives the code point U+00HH).  Integers are decimal or
``0x`` hex; unlike xl (which uses ``strtol(..., 0)``) a leading ``0`` does *not*
mean octal.  A key set twice keeps its last value.

Every problem raises :class:`~xenlab.errors.ConfigError` with a one-line
message ``FILE:LINE: ...`` naming the line of the offending setting (or list
item).  Things that are accepted but worth knowing about (a qcow2 disk, a
``boot`` order on a PV guest, ``cmdline`` overriding ``extra``/``root``) are
collected in :attr:`DomainConfig.warnings`.

Relative paths (``kernel``, ``ramdisk``, disk targets) are kept as written.
:meth:`DomainConfig.resolve` turns one into an absolute path: xl itself
resolves relative to the current directory, but xenlab looks in the config
file's directory first and falls back to the current directory only when the
file is not found there.

Real Xen: tools/libs/util/libxlu_cfg.c, tools/xl/xl_parse.c
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from xenlab.errors import ConfigError
from xenlab.tools.libs.guest.xg_dom_core import file_kind

__all__ = [
    "ACTIONS",
    "DiskSpec",
    "DomainConfig",
    "VifSpec",
    "format_config",
    "parse_config_file",
    "parse_config_text",
    "vdev_to_devid",
]

#: Valid values of on_poweroff / on_reboot / on_crash (libxl_action_on_shutdown).
ACTIONS: tuple[str, ...] = (
    "destroy",
    "restart",
    "preserve",
    "coredump-destroy",
    "coredump-restart",
    "rename-restart",
    "soft-reset",
)
_TYPES = ("pv", "pvh", "hvm")
#: The largest xl.cfg read (xenlab's bound; shipped configs are under 2 KiB).
MAX_CONFIG_SIZE = 1 << 20
_BOOT_LETTERS = frozenset("abcdn")
_MAX_VCPUS = 128
_XEN_OUI = "00:16:3e"
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")
_INT_RE = re.compile(r"^(?:0[xX][0-9a-fA-F]+|[0-9]+)$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


# ---------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------


def _decode_disk_letters(letters: str) -> int:
    """Decode 'a'..'z', 'aa'.. as libxl's decode_disk_name does (bijective base 26)."""
    n = 0
    for ch in letters:
        n = n * 26 + (ord(ch) - ord("a") + 1)
    return n - 1


_VDEV_RE = re.compile(r"^(xvd|hd|sd)([a-z]+)([0-9]*)$")
_VDEV_D_RE = re.compile(r"^d([0-9]+)(?:p([0-9]+))?$")


def vdev_to_devid(vdev: str) -> int:
    """Return the Linux device number Xen uses for a virtual disk name.

    Mirrors ``libxl__device_disk_dev_number``: ``xvdX`` → ``(202<<8)|(disk<<4)|part``
    (extended ``(1<<28)|(disk<<8)|part`` beyond 16 disks/partitions), ``hdX`` →
    majors 3, 3, 22, 22 with ``(disk&1)<<6``, ``sdX`` → ``(8<<8)|(disk<<4)|part``
    and ``dNpM`` → the extended form.  Raises ValueError for anything else.
    """
    m = _VDEV_D_RE.match(vdev)
    if m:
        disk, part = int(m.group(1)), int(m.group(2) or 0)
        if disk >= 1 << 20 or part >= 256:
            raise ValueError(f"disk number out of range in {vdev!r}")
        return (1 << 28) | (disk << 8) | part
    m = _VDEV_RE.match(vdev)
    if not m:
        raise ValueError(f"invalid vdev {vdev!r} (expected e.g. xvda, hda, sda or d0p1)")
    prefix, disk, part_s = m.group(1), _decode_disk_letters(m.group(2)), m.group(3)
    part = int(part_s) if part_s else 0
    if prefix == "xvd":
        if disk < 16 and part < 16:
            return (202 << 8) | (disk << 4) | part
        if disk >= 1 << 20 or part >= 256:
            raise ValueError(f"disk number out of range in {vdev!r}")
        return (1 << 28) | (disk << 8) | part
    if prefix == "hd":
        if disk >= 4 or part >= 64:
            raise ValueError(f"IDE disk {vdev!r} out of range (hda..hdd, partitions < 64)")
        major = (3, 3, 22, 22)[disk]
        return (major << 8) | ((disk & 1) << 6) | part
    if disk >= 16 or part >= 16:
        raise ValueError(f"SCSI disk {vdev!r} out of range (sda..sdp, partitions < 16)")
    return (8 << 8) | (disk << 4) | part


@dataclass(frozen=True)
class DiskSpec:
    """One ``disk = [...]`` entry (see xl-disk-configuration(5))."""

    target: str | None
    """Backing file or device; None for an empty CD-ROM drive."""
    vdev: str
    """Guest-visible name: xvda, hdc, sda, ..."""
    format: str = "raw"
    """Image format: "raw" or "qcow2" (the latter accepted, with a warning)."""
    access: str = "rw"
    """"rw" or "ro"."""
    devtype: str = "disk"
    """"disk" or "cdrom"."""
    devid: int = field(init=False)
    """Device number computed from vdev (libxl__device_disk_dev_number)."""

    def __post_init__(self) -> None:
        """Validate the fields and compute :attr:`devid`; raises ValueError."""
        if self.access not in ("rw", "ro"):
            raise ValueError(f"access must be 'rw' or 'ro', got {self.access!r}")
        if self.devtype not in ("disk", "cdrom"):
            raise ValueError(f"devtype must be 'disk' or 'cdrom', got {self.devtype!r}")
        if self.format not in ("raw", "qcow2"):
            raise ValueError(f"unsupported format {self.format!r} (use raw or qcow2)")
        if self.target is None and self.devtype != "cdrom":
            raise ValueError("no target (only a cdrom may be empty)")
        object.__setattr__(self, "devid", vdev_to_devid(self.vdev))

    @property
    def readonly(self) -> bool:
        """True when the guest may not write to this disk."""
        return self.access == "ro"


def default_mac(name: str, index: int) -> str:
    """Deterministic MAC in Xen's OUI 00:16:3e for vif *index* of domain *name*.

    xl picks the last three bytes at random (clearing the top bit of the
    first); xenlab derives them from sha256 of ``f"{name}/{index}"`` so runs
    are reproducible.
    """
    digest = hashlib.sha256(f"{name}/{index}".encode()).digest()
    tail = (digest[0] & 0x7F, digest[1], digest[2])
    return _XEN_OUI + "".join(f":{b:02x}" for b in tail)


@dataclass(frozen=True)
class VifSpec:
    """One ``vif = [...]`` entry (see xl-network-configuration(5))."""

    mac: str
    bridge: str = "xenbr0"
    ip: str | None = None
    model: str | None = None
    devid: int = 0


@dataclass(frozen=True)
class DomainConfig:
    """A parsed xl.cfg.  Frozen, though the ``disk``/``vif`` lists are not deep-frozen.

    Equality compares only the semantic fields, not ``path``, ``base_dir``,
    ``source_lines`` or ``warnings``.
    """

    name: str
    type: str = "pv"
    memory: int = 128
    maxmem: int = 128
    vcpus: int = 1
    maxvcpus: int = 1
    kernel: str | None = None
    ramdisk: str | None = None
    cmdline: str | None = None
    on_poweroff: str = "destroy"
    on_reboot: str = "restart"
    on_crash: str = "destroy"
    disk: list[DiskSpec] = field(default_factory=list)
    vif: list[VifSpec] = field(default_factory=list)
    bios: str | None = None
    boot: str | None = None
    serial: str | None = None
    vga: str | None = None             # None: the default adapter (see _VGA_KINDS)
    weight: int = 256
    cap: int = 0
    seed: int | None = None
    rtc_timeoffset: int = 0            # seconds the guest's clock runs ahead of the host's
    path: str | None = field(default=None, compare=False)
    base_dir: str | None = field(default=None, compare=False)
    source_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    warnings: list[str] = field(default_factory=list, compare=False, repr=False)

    def resolve(self, p: str | os.PathLike[str]) -> str:
        """Return *p* as an absolute path.

        Absolute paths are returned normalised.  A relative path is looked up in
        :attr:`base_dir` (the config file's directory) first, then in the current
        directory (which is what xl does).  If it exists in neither, the
        config-directory candidate is returned (the current directory when the
        config was parsed from text). A leading ``~`` is the user's home folder, as
        in a shell (images/linux-pv.cfg names the real-guest cache that way).
        """
        raw = os.fspath(p)
        if raw.startswith("~"):
            raw = os.path.expanduser(raw)
        if os.path.isabs(raw):
            return os.path.normpath(raw)
        from_cwd = os.path.abspath(raw)
        if self.base_dir is None:
            return from_cwd
        from_cfg = os.path.normpath(os.path.join(os.path.abspath(self.base_dir), raw))
        if os.path.exists(from_cfg) or not os.path.exists(from_cwd):
            return from_cfg
        return from_cwd


# ---------------------------------------------------------------------------
# Lexer and parser (libxlu_cfg_l.l / libxlu_cfg_y.y)
# ---------------------------------------------------------------------------


@dataclass
class _Atom:
    """A scalar value: ``quoted`` tells a string literal from a bare word/number."""

    text: str
    quoted: bool
    line: int


@dataclass
class _List:
    """A ``[ ... ]`` value."""

    items: list[_Value]
    line: int


_Value = _Atom | _List


@dataclass
class _Token:
    kind: str  # "word", "string", "=", "+=", "[", "]", ",", ";", "nl", "eof"
    text: str
    line: int


_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")


class _Parser:
    """Tokenise and parse xl.cfg text into an ordered key → value mapping."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.tokens = list(self._lex())
        self.pos = 0

    def error(self, line: int, msg: str) -> NoReturn:
        """Raise a ConfigError for *line*."""
        raise ConfigError(f"{self.path}:{line}: {msg}")

    # -- lexer --------------------------------------------------------------

    def _lex(self) -> Iterator[_Token]:
        text, i, line, n = self.text, 0, 1, len(self.text)
        while i < n:
            ch = text[i]
            if ch in " \t\r\f\v":
                i += 1
            elif ch == "\n":
                yield _Token("nl", ch, line)
                line += 1
                i += 1
            elif ch == "#":
                while i < n and text[i] != "\n":
                    i += 1
            elif ch in "\"'":
                value, i = self._lex_string(i, line)
                yield _Token("string", value, line)
            elif text.startswith("+=", i):
                yield _Token("+=", "+=", line)
                i += 2
            elif ch in "=[],;":
                yield _Token(ch, ch, line)
                i += 1
            else:
                m = _WORD_RE.match(text, i)
                if not m:
                    neg = re.match(r"-[0-9][0-9a-fA-FxX]*", text[i:])
                    hint = (f' (xl.cfg has no negative numbers: quote it, "{neg.group()}")'
                            if neg else "")
                    self.error(line, f"syntax error: unexpected character {_show(ch)}{hint}")
                yield _Token("word", m.group(), line)
                i = m.end()
        yield _Token("eof", "", line)

    def _lex_string(self, start: int, line: int) -> tuple[str, int]:
        """Lex the quoted string at *start*; return (value, index after it)."""
        text, quote, i, out = self.text, self.text[start], start + 1, []
        while True:
            if i >= len(self.text) or text[i] == "\n":
                self.error(line, "syntax error: unterminated string")
            ch = text[i]
            if ch == quote:
                return "".join(out), i + 1
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            esc = text[i + 1] if i + 1 < len(text) else ""
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
            elif esc == "x":
                digits = text[i + 2 : i + 4]
                if not re.fullmatch(r"[0-9a-fA-F]{2}", digits):
                    self.error(line, "syntax error: \\x must be followed by two hex digits")
                out.append(chr(int(digits, 16)))
                i += 4
            elif esc in ("", "\n"):
                self.error(line, "syntax error: unterminated string")
            else:
                self.error(line, f"syntax error: unknown escape '\\{esc}' in string")

    # -- parser -------------------------------------------------------------

    def _peek(self) -> _Token:
        return self.tokens[self.pos]

    def _next(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def _skip_newlines(self) -> None:
        while self._peek().kind == "nl":
            self.pos += 1

    def parse(self) -> dict[str, tuple[_Value, int]]:
        """Parse every setting; return key → (value, line of the last setting)."""
        settings: dict[str, tuple[_Value, int]] = {}
        while True:
            tok = self._next()
            if tok.kind == "eof":
                return settings
            if tok.kind in ("nl", ";"):
                continue
            if tok.kind != "word" or not _KEY_RE.match(tok.text):
                self.error(tok.line, f"syntax error: expected a setting name, got {_desc(tok)}")
            key = tok.text
            op = self._next()
            if op.kind not in ("=", "+="):
                self.error(op.line, f"syntax error: expected '=' after '{key}', got {_desc(op)}")
            value = self._value()
            end = self._next()
            if end.kind not in ("nl", ";", "eof"):
                self.error(
                    end.line,
                    f"syntax error: expected end of line after '{key}', got {_desc(end)}",
                )
            if op.kind == "+=" and key in settings:
                value = self._append(key, settings[key][0], value, tok.line)
            settings.pop(key, None)  # keep dict order = order of last setting
            settings[key] = (value, tok.line)
            if end.kind == "eof":
                return settings

    def _value(self) -> _Value:
        tok = self._next()
        if tok.kind in ("word", "string"):
            return _Atom(tok.text, tok.kind == "string", tok.line)
        if tok.kind != "[":
            self.error(tok.line, f"syntax error: expected a value, got {_desc(tok)}")
        items: list[_Value] = []
        self._skip_newlines()
        while True:
            if self._peek().kind == "]":
                self._next()
                return _List(items, tok.line)
            if self._peek().kind == "eof":
                self.error(tok.line, "syntax error: unterminated list ('[' without ']')")
            items.append(self._value())
            self._skip_newlines()
            sep = self._next()
            if sep.kind == "]":
                return _List(items, tok.line)
            if sep.kind == "eof":
                self.error(tok.line, "syntax error: unterminated list ('[' without ']')")
            if sep.kind != ",":
                self.error(sep.line, f"syntax error: expected ',' or ']' in list, got {_desc(sep)}")
            self._skip_newlines()

    def _append(self, key: str, old: _Value, new: _Value, line: int) -> _Value:
        """Combine the values of ``key = old`` and ``key += new``."""
        if isinstance(old, _List):
            extra = new.items if isinstance(new, _List) else [new]
            return _List(old.items + extra, old.line)
        if isinstance(new, _List):
            self.error(line, f"cannot append a list to '{key}', which is not a list")
        return _Atom(old.text + new.text, old.quoted or new.quoted, line)


def _show(text: str) -> str:
    """Quote *text* for a one-line message."""
    return json.dumps(text, ensure_ascii=False)


def _desc(tok: _Token) -> str:
    """Describe a token in an error message."""
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "nl":
        return "end of line"
    if tok.kind == "string":
        return f"string {_show(tok.text)}"
    return f"'{tok.text}'"


def _desc_value(value: _Value) -> str:
    """Describe a value in an error message."""
    if isinstance(value, _List):
        return "a list"
    return _show(value.text) if value.quoted else value.text


# ---------------------------------------------------------------------------
# Interpretation (xl_parse.c)
# ---------------------------------------------------------------------------

_HANDLED_KEYS = frozenset(
    {
        "name", "type", "builder", "memory", "maxmem", "vcpus", "maxvcpus",
        "kernel", "ramdisk", "cmdline", "extra", "root",
        "on_poweroff", "on_reboot", "on_crash",
        "disk", "vif", "bios", "boot", "serial", "vga",
        "weight", "cpu_weight", "cap", "seed", "rtc_timeoffset",
    }
)  # fmt: skip
#: Real xl keys that xenlab accepts and ignores.
_IGNORED_KEYS = frozenset(
    {
        "uuid", "device_model_version", "device_model_override", "acpi", "apic", "pae",
        "hap", "nx", "viridian", "sdl", "vnc", "vnclisten", "vncdisplay", "vncunused",
        "vncpasswd", "keymap", "usb", "usbdevice", "localtime", "cpus", "cpus_soft",
        "stdvga", "videoram", "on_watchdog", "on_soft_reset", "xen_platform_pci",
        "hpet", "timer_mode", "soundhw", "vfb", "vkb", "pool",
        "vcpu_hard_affinity", "vcpu_soft_affinity", "shadow_memory", "nographic",
        "console", "description",
    }
)  # fmt: skip
#: Real xl keys whose meaning xenlab cannot honour: an error, not an "unknown key".
_UNSUPPORTED_KEYS = frozenset(
    {
        "bootloader", "bootloader_args", "pci", "dtdev", "irqs", "iomem", "ioports",
        "device_tree", "channel", "vtpm", "p9", "vdispl", "vsnd",
    }
)  # fmt: skip
_KNOWN_KEYS = _HANDLED_KEYS | _IGNORED_KEYS | _UNSUPPORTED_KEYS

#: xl.cfg ``vga``: the device model's one VGA adapter is the standard VGA (QEMU's
#: ``-vga std`` with vgabios-stdvga); "cirrus", Xen's default, gets the same adapter;
#: "none" is a machine without one (what QEMU's ``-nodefaults`` gives).
_VGA_KINDS = ("stdvga", "cirrus", "none")

_DISK_FLAGS = frozenset({"cdrom", "discard", "no-discard", "direct-io-safe"})
_DISK_KEYS = ("target", "format", "vdev", "access", "devtype", "backend", "backendtype", "script")
_DISK_PREFIXES = {
    "phy:": "raw", "file:": "raw", "aio:": "raw", "raw:": "raw",
    "tap:aio:": "raw", "tap2:aio:": "raw", "tap:tapdisk:aio:": "raw",
    "qcow2:": "qcow2", "tap:qcow2:": "qcow2", "tap2:qcow2:": "qcow2",
}  # fmt: skip
_ACCESS = {"rw": "rw", "w": "rw", "ro": "ro", "r": "ro"}
_VIF_KEYS = ("mac", "bridge", "ip", "model", "type", "script", "vifname", "rate", "backend")


class _Interp:
    """Turn parsed settings into a DomainConfig, checking everything."""

    def __init__(self, settings: dict[str, tuple[_Value, int]], path: str) -> None:
        self.settings = settings
        self.path = path
        self.warnings: list[str] = []

    def error(self, line: int | None, msg: str) -> NoReturn:
        """Raise a ConfigError, with a line number if there is one."""
        where = self.path if line is None else f"{self.path}:{line}"
        raise ConfigError(f"{where}: {msg}")

    def warn(self, line: int, msg: str) -> None:
        """Record a warning ``FILE:LINE: msg``."""
        self.warnings.append(f"{self.path}:{line}: {msg}")

    def line(self, key: str) -> int:
        """Line of the setting of *key*."""
        return self.settings[key][1]

    # -- typed getters ------------------------------------------------------

    def string(self, key: str) -> str | None:
        """The string value of *key*, or None when unset."""
        if key not in self.settings:
            return None
        value, line = self.settings[key]
        if isinstance(value, _List):
            self.error(line, f"'{key}' must be a string, got a list")
        return value.text

    def integer(self, key: str, unit: str = "") -> int | None:
        """The integer value of *key* (decimal or 0x hex), or None when unset."""
        if key not in self.settings:
            return None
        value, line = self.settings[key]
        if isinstance(value, _List) or not _INT_RE.match(value.text):
            suffix = f" ({unit})" if unit else ""
            self.error(line, f"'{key}' must be an integer{suffix}, got {_desc_value(value)}")
        return int(value.text, 0) if value.text[:2].lower() == "0x" else int(value.text, 10)

    def in_range(self, key: str, value: int, lo: int, hi: int | None = None) -> int:
        """Check lo <= value <= hi for a key that was set."""
        if value < lo or (hi is not None and value > hi):
            bound = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            self.error(self.line(key), f"'{key}' must be {bound}, got {value}")
        return value

    def string_list(self, key: str) -> list[_Atom]:
        """The items of a list of strings (a lone string counts as a 1-item list)."""
        if key not in self.settings:
            return []
        value = self.settings[key][0]
        if isinstance(value, _Atom):
            return [value]
        for item in value.items:
            if isinstance(item, _List):
                self.error(item.line, f"'{key}' must be a list of strings, not of lists")
        return [item for item in value.items if isinstance(item, _Atom)]

    # -- the whole config -----------------------------------------------------

    def build(self) -> DomainConfig:
        """Check every setting and build the DomainConfig."""
        for key, (_, line) in self.settings.items():
            if key not in _KNOWN_KEYS:
                close = difflib.get_close_matches(key, sorted(_HANDLED_KEYS | _IGNORED_KEYS), 1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.error(line, f"unknown key '{key}'{hint}")
            if key in _UNSUPPORTED_KEYS:
                self.error(line, f"'{key}' is a real xl option that xenlab does not support")

        name = self.string("name")
        if name is None:
            self.error(None, "missing required key 'name'")
        if not name.strip():
            self.error(self.line("name"), "'name' must not be empty")

        dtype = self._domain_type()
        memory = self.integer("memory", "MiB")
        memory = 128 if memory is None else self.in_range("memory", memory, 1)
        maxmem = self.integer("maxmem", "MiB")
        if maxmem is None:
            maxmem = memory
        elif maxmem < memory:
            self.error(
                self.line("maxmem"), f"'maxmem' ({maxmem}) must be at least 'memory' ({memory})"
            )
        vcpus = self.integer("vcpus")
        vcpus = 1 if vcpus is None else self.in_range("vcpus", vcpus, 1, _MAX_VCPUS)
        maxvcpus = self.integer("maxvcpus")
        if maxvcpus is None:
            maxvcpus = vcpus
        else:
            self.in_range("maxvcpus", maxvcpus, 1, _MAX_VCPUS)
            if maxvcpus < vcpus:
                self.error(
                    self.line("maxvcpus"),
                    f"'maxvcpus' ({maxvcpus}) must be at least 'vcpus' ({vcpus})",
                )

        kernel = self.string("kernel")
        if dtype == "pv" and kernel is None:
            self.error(None, "type \"pv\" needs a 'kernel'")

        return DomainConfig(
            name=name,
            type=dtype,
            memory=memory,
            maxmem=maxmem,
            vcpus=vcpus,
            maxvcpus=maxvcpus,
            kernel=kernel,
            ramdisk=self.string("ramdisk"),
            cmdline=self._cmdline(),
            on_poweroff=self._action("on_poweroff", "destroy"),
            on_reboot=self._action("on_reboot", "restart"),
            on_crash=self._action("on_crash", "destroy"),
            disk=self._disks(),
            vif=self._vifs(name),
            bios=self._hvm_only("bios", dtype),
            boot=self._boot(dtype),
            serial=self._serial(),
            vga=self._vga(dtype),
            weight=self._weight(),
            cap=self._cap(),
            seed=self.integer("seed"),
            rtc_timeoffset=self._rtc_timeoffset(),
            source_lines={key: line for key, (_, line) in self.settings.items()},
            warnings=self.warnings,
        )

    def _domain_type(self) -> str:
        dtype = self.string("type")
        builder = self.string("builder")
        if dtype is None and builder is not None:
            if builder not in ("hvm", "generic"):
                self.error(
                    self.line("builder"),
                    f'\'builder\' must be "hvm" or "generic", got {_show(builder)}',
                )
            return "hvm" if builder == "hvm" else "pv"
        if dtype is None:
            return "pv"
        if builder is not None:
            self.warn(self.line("builder"), "'builder' is ignored because 'type' is set")
        if dtype not in _TYPES:
            self.error(self.line("type"), f"'type' must be one of pv, pvh, hvm, got {_show(dtype)}")
        return dtype

    def _cmdline(self) -> str | None:
        cmdline, root, extra = self.string("cmdline"), self.string("root"), self.string("extra")
        if root is None and extra is None:
            return cmdline
        if cmdline is not None:
            self.warn(self.line("cmdline"), "ignoring 'root' and 'extra' in favour of 'cmdline'")
            return cmdline
        if root is not None and extra is not None:
            return f"root={root} {extra}"
        return f"root={root}" if root is not None else extra

    def _action(self, key: str, default: str) -> str:
        value = self.string(key)
        if value is None:
            return default
        if value not in ACTIONS:
            self.error(
                self.line(key),
                f"'{key}' must be one of {', '.join(ACTIONS)}, got {_show(value)}",
            )
        return value

    def _hvm_only(self, key: str, dtype: str) -> str | None:
        value = self.string(key)
        if value is not None and dtype != "hvm":
            self.warn(self.line(key), f"'{key}' only applies to hvm guests (this is {dtype})")
        return value

    def _boot(self, dtype: str) -> str | None:
        boot = self._hvm_only("boot", dtype)
        if boot is None:
            return "c" if dtype == "hvm" else None
        if not boot or not set(boot) <= _BOOT_LETTERS:
            self.error(
                self.line("boot"),
                f"'boot' must be letters from a, b, c, d, n, got {_show(boot)}",
            )
        return boot

    def _serial(self) -> str | None:
        items = self.string_list("serial")
        if len(items) > 1:
            self.warn(self.line("serial"), "only the first 'serial' device is used")
        return items[0].text if items else None

    def _vga(self, dtype: str) -> str | None:
        vga = self._hvm_only("vga", dtype)
        if vga is not None and vga not in _VGA_KINDS:
            self.error(self.line("vga"), f"'vga' must be one of {', '.join(_VGA_KINDS)}, "
                                         f"got {_show(vga)} (xenlab emulates no qxl)")
        return vga

    def _rtc_timeoffset(self) -> int:
        """Seconds (may be negative) added to the host's clock for the guest's RTC.

        xl reads a long; libxl keeps it in a uint32 and hands it to Xen as
        XEN_DOMCTL_settimeoffset's int32_t: a value of 2**31 or more counts from the
        other end (4294963696 is -3600), as on real Xen. Beyond 32 bits is refused."""
        if "rtc_timeoffset" not in self.settings:
            return 0
        value, line = self.settings["rtc_timeoffset"]
        text = "" if isinstance(value, _List) else value.text
        sign = -1 if text[:1] == "-" else 1
        if not _INT_RE.match(text[1:] if sign < 0 else text):
            self.error(line, "'rtc_timeoffset' must be an integer (seconds, may be "
                             f"negative), got {_desc_value(value)}")
        digits = text[1:] if sign < 0 else text
        seconds = sign * int(digits, 16 if digits[:2].lower() == "0x" else 10)
        if not -(1 << 31) <= seconds < 1 << 32:
            self.error(line, f"'rtc_timeoffset' must be between {-(1 << 31)} and "
                             f"{(1 << 32) - 1} seconds, got {seconds}")
        return seconds - (1 << 32) if seconds >= 1 << 31 else seconds

    def _weight(self) -> int:
        if "weight" in self.settings and "cpu_weight" in self.settings:
            self.error(self.line("cpu_weight"), "give either 'weight' or 'cpu_weight', not both")
        key = "cpu_weight" if "cpu_weight" in self.settings else "weight"
        weight = self.integer(key)
        return 256 if weight is None else self.in_range(key, weight, 1, 65535)

    def _cap(self) -> int:
        cap = self.integer("cap")
        return 0 if cap is None else self.in_range("cap", cap, 0, 65535)

    # -- disks ----------------------------------------------------------------

    def _disks(self) -> list[DiskSpec]:
        disks: list[DiskSpec] = []
        seen: dict[str, int] = {}
        for index, atom in enumerate(self.string_list("disk")):
            spec = self._disk(index, atom)
            if spec.devid in seen:
                self.error(
                    atom.line,
                    f"disk {index} ({_show(atom.text)}): vdev '{spec.vdev}' "
                    f"is the same device as disk {seen[spec.devid]}",
                )
            seen[spec.devid] = index
            if spec.format == "qcow2":
                self.warn(atom.line, f"disk {index}: qcow2 is accepted, but xenlab reads raw data")
            disks.append(spec)
        return disks

    def _disk(self, index: int, atom: _Atom) -> DiskSpec:
        """Parse one disk spec string (xl-disk-configuration(5))."""

        def fail(msg: str) -> NoReturn:
            self.error(atom.line, f"disk {index} ({_show(atom.text)}): {msg}")

        opts: dict[str, str] = {}
        positional: list[str] = []
        legacy = False
        rest = atom.text
        while rest:
            stripped = rest.lstrip()
            if stripped.startswith("target="):
                opts["target"] = stripped[len("target=") :]
                break
            part, _, rest = rest.partition(",")
            part = part.strip()
            if "=" in part:
                key, _, val = part.partition("=")
                key, val = key.strip(), val.strip()
                if key not in _DISK_KEYS:
                    close = difflib.get_close_matches(key, _DISK_KEYS, 1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    fail(f"unknown parameter '{key}'{hint}")
                opts[key] = val
            elif part in _DISK_FLAGS:
                if part == "cdrom":
                    opts["devtype"] = "cdrom"
            elif not positional and "target" not in opts:
                for prefix, fmt in _DISK_PREFIXES.items():
                    if part.startswith(prefix):
                        part, legacy = part[len(prefix) :], True
                        opts.setdefault("format", fmt)
                        break
                positional.append(part)
            else:
                positional.append(part)
        if positional:
            names = (
                ["target", "vdev", "access"] if legacy else ["target", "format", "vdev", "access"]
            )
            if len(positional) > len(names):
                fail("too many positional parameters")
            for pname, val in zip(names[: len(positional)], positional, strict=True):
                if pname in opts and pname != "format":
                    fail(f"'{pname}' given twice")
                if pname == "vdev" and ":" in val:
                    val, _, kind = val.partition(":")
                    if kind not in ("cdrom", "disk"):
                        fail(f"unknown device type ':{kind}' after vdev")
                    opts["devtype"] = kind
                if val or pname == "target":
                    opts[pname] = val
        if "vdev" not in opts or not opts["vdev"]:
            fail("missing 'vdev' (e.g. xvda)")
        access = opts.get("access")
        if access is not None and access not in _ACCESS:
            fail(f"access must be rw, ro, w or r, got {_show(access)}")
        devtype = opts.get("devtype", "disk")
        default_access = "ro" if devtype == "cdrom" else "rw"
        target = opts.get("target") or None
        try:
            return DiskSpec(
                target=target,
                vdev=opts["vdev"],
                format=opts.get("format") or "raw",
                access=_ACCESS[access] if access else default_access,
                devtype=devtype,
            )
        except ValueError as exc:
            fail(str(exc))

    # -- vifs -----------------------------------------------------------------

    def _vifs(self, name: str) -> list[VifSpec]:
        vifs: list[VifSpec] = []
        macs: dict[str, int] = {}
        for index, atom in enumerate(self.string_list("vif")):
            spec = self._vif(index, atom, name)
            if spec.mac in macs:
                self.error(
                    atom.line, f"vif {index}: mac {spec.mac} is also used by vif {macs[spec.mac]}"
                )
            macs[spec.mac] = index
            vifs.append(spec)
        return vifs

    def _vif(self, index: int, atom: _Atom, name: str) -> VifSpec:
        """Parse one vif spec string (xl-network-configuration(5))."""

        def fail(msg: str) -> NoReturn:
            self.error(atom.line, f"vif {index} ({_show(atom.text)}): {msg}")

        opts: dict[str, str] = {}
        for part in atom.text.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                fail(f"expected key=value, got {_show(part)}")
            key, _, val = part.partition("=")
            key, val = key.strip(), val.strip()
            if key not in _VIF_KEYS:
                close = difflib.get_close_matches(key, _VIF_KEYS, 1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                fail(f"unknown parameter '{key}'{hint}")
            if not val:
                fail(f"empty value for '{key}'")
            opts[key] = val
        mac = opts.get("mac")
        if mac is None:
            mac = default_mac(name, index)
        elif not _MAC_RE.match(mac):
            fail(f"bad mac {_show(mac)} (expected six hex bytes like 00:16:3e:01:02:03)")
        ip = opts.get("ip")
        if ip is not None:
            for address in ip.split():
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    fail(f"bad ip address {_show(address)}")
        return VifSpec(
            mac=mac.lower(),
            bridge=opts.get("bridge", "xenbr0"),
            ip=ip,
            model=opts.get("model"),
            devid=index,
        )


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------


def parse_config_text(text: str, path: str = "<string>") -> DomainConfig:
    """Parse xl.cfg *text*; *path* is only used in messages and kept in ``cfg.path``.

    ``base_dir`` stays None, so :meth:`DomainConfig.resolve` uses the current
    directory.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    settings = _Parser(text, path).parse()
    cfg = _Interp(settings, path).build()
    object.__setattr__(cfg, "path", path)
    return cfg


def parse_config_file(path: str | os.PathLike[str]) -> DomainConfig:
    """Read and parse the xl.cfg file at *path* (must be UTF-8).

    Sets ``cfg.path`` to *path* as given and ``cfg.base_dir`` to the absolute
    directory holding it.
    """
    shown = os.fspath(path)
    if os.path.isdir(shown):
        raise ConfigError(f"{shown}: is a directory")
    try:
        st = os.stat(shown)
        if not stat.S_ISREG(st.st_mode):  # /dev/zero, a FIFO: never read without end
            raise ConfigError(f"{shown}: is {file_kind(st.st_mode)}, not a regular file "
                              "(an xl.cfg is a text file)")
        if st.st_size > MAX_CONFIG_SIZE:
            raise ConfigError(f"{shown}: {st.st_size:,} bytes is too large for an xl.cfg "
                              f"(at most {MAX_CONFIG_SIZE >> 20} MiB)")
        fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{shown}: is not a regular file (an xl.cfg is a text file)")
            data = f.read(MAX_CONFIG_SIZE + 1)
        if len(data) > MAX_CONFIG_SIZE:
            raise ConfigError(f"{shown}: grew past {MAX_CONFIG_SIZE >> 20} MiB while being "
                              "read")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a directory") from None
    except PermissionError:
        raise ConfigError(f"{shown}: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{shown}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None
    cfg = parse_config_text(text, shown)
    object.__setattr__(cfg, "base_dir", os.path.dirname(os.path.abspath(shown)))
    return cfg


# ---------------------------------------------------------------------------
# Writing configs back
# ---------------------------------------------------------------------------


def _quote(text: str) -> str:
    """Quote *text* as an xl.cfg double-quoted string."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _format_disk(d: DiskSpec) -> str:
    """A disk spec in key=value form (target last, so it may hold commas)."""
    spec = f"format={d.format}, vdev={d.vdev}, access={d.access}, devtype={d.devtype}"
    return f"{spec}, target={d.target or ''}"


def _format_vif(v: VifSpec) -> str:
    """A vif spec in key=value form."""
    parts = [f"mac={v.mac}", f"bridge={v.bridge}"]
    if v.ip is not None:
        parts.append(f"ip={v.ip}")
    if v.model is not None:
        parts.append(f"model={v.model}")
    return ",".join(parts)


def format_config(cfg: DomainConfig) -> str:
    """Write *cfg* as xl.cfg text; ``parse_config_text(format_config(cfg)) == cfg``.

    The scheduler weight is written as ``cpu_weight`` (real xl's name).
    """
    lines = [f"name = {_quote(cfg.name)}", f'type = "{cfg.type}"', f"memory = {cfg.memory}"]
    if cfg.maxmem != cfg.memory:
        lines.append(f"maxmem = {cfg.maxmem}")
    lines.append(f"vcpus = {cfg.vcpus}")
    if cfg.maxvcpus != cfg.vcpus:
        lines.append(f"maxvcpus = {cfg.maxvcpus}")
    for key, text in (("kernel", cfg.kernel), ("ramdisk", cfg.ramdisk), ("cmdline", cfg.cmdline)):
        if text is not None:
            lines.append(f"{key} = {_quote(text)}")
    lines += [
        f'on_poweroff = "{cfg.on_poweroff}"',
        f'on_reboot = "{cfg.on_reboot}"',
        f'on_crash = "{cfg.on_crash}"',
    ]
    if cfg.disk:
        lines.append("disk = [")
        lines += [f"    {_quote(_format_disk(d))}," for d in cfg.disk]
        lines.append("]")
    if cfg.vif:
        lines.append("vif = [")
        lines += [f"    {_quote(_format_vif(v))}," for v in cfg.vif]
        lines.append("]")
    for key, text in (("bios", cfg.bios), ("boot", cfg.boot), ("serial", cfg.serial),
                      ("vga", cfg.vga)):
        if text is not None:
            lines.append(f"{key} = {_quote(text)}")
    lines += [f"cpu_weight = {cfg.weight}", f"cap = {cfg.cap}"]
    if cfg.seed is not None:
        lines.append(f"seed = {cfg.seed}")
    if cfg.rtc_timeoffset:  # quoted when negative: xl.cfg's numbers have no sign
        offset = cfg.rtc_timeoffset
        lines.append(f'rtc_timeoffset = "{offset}"' if offset < 0 else
                     f"rtc_timeoffset = {offset}")
    return "\n".join(lines) + "\n"
