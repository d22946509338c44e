"""Tests for xenlab.tools.xl.xl_parse: the xl.cfg parser."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the repo is not always pip-installed (-e) in the venv
    sys.path.insert(0, str(ROOT))

from xenlab.errors import ConfigError  # noqa: E402
from xenlab.tools.xl.xl_parse import (  # noqa: E402
    DiskSpec,
    DomainConfig,
    VifSpec,
    format_config,
    parse_config_file,
    parse_config_text,
    vdev_to_devid,
)

BAD_DIR = Path(__file__).parent / "configs" / "bad"
BAD_CONFIGS = sorted(BAD_DIR.glob("*.cfg"))


def parse(text: str) -> DomainConfig:
    """Parse inline text labelled bad.cfg."""
    return parse_config_text(text, "bad.cfg")


def error_of(text: str) -> str:
    """The ConfigError message parsing *text* gives."""
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value)


PV = 'name = "g"\nkernel = "vmlinuz"\n'


# -- good configs ---------------------------------------------------------------


def test_minimal_pv_defaults(tmp_path: Path) -> None:
    p = tmp_path / "guest.cfg"
    p.write_text('name = "guest"\nkernel = "boot/vmlinuz"\n')
    cfg = parse_config_file(p)
    assert cfg.name == "guest"
    assert cfg.type == "pv"
    assert (cfg.memory, cfg.maxmem, cfg.vcpus, cfg.maxvcpus) == (128, 128, 1, 1)
    assert cfg.kernel == "boot/vmlinuz"  # kept as written
    assert (cfg.on_poweroff, cfg.on_reboot, cfg.on_crash) == ("destroy", "restart", "destroy")
    assert (cfg.weight, cfg.cap, cfg.seed) == (256, 0, None)
    assert cfg.disk == [] and cfg.vif == []
    assert cfg.boot is None and cfg.serial is None and cfg.bios is None
    assert cfg.path == str(p)
    assert cfg.base_dir == str(tmp_path)
    assert cfg.source_lines == {"name": 1, "kernel": 2}


def test_full_hvm_config(tmp_path: Path) -> None:
    p = tmp_path / "hvm.cfg"
    p.write_text(
        """\
# An HVM guest
name = 'win'
type = "hvm"
memory = 0x200          # hex
maxmem = 1024
vcpus = 2; maxvcpus = 4
bios = "seabios"
boot = "dc"
serial = ['pty']
cpu_weight = 512
cap = 50
seed = 42
on_crash = "preserve"
acpi = 1
vnc = 1
disk = [ 'format=raw, vdev=hda, access=rw, target=disk.img',
         'format=raw, vdev=hdc, access=ro, devtype=cdrom, target=',
       ]
vif = [ 'mac=00:16:3e:01:02:03,bridge=xenbr1,model=e1000,type=ioemu' ]
"""
    )
    cfg = parse_config_file(str(p))
    assert cfg.type == "hvm"
    assert (cfg.memory, cfg.maxmem, cfg.vcpus, cfg.maxvcpus) == (512, 1024, 2, 4)
    assert (cfg.bios, cfg.boot, cfg.serial) == ("seabios", "dc", "pty")
    assert (cfg.weight, cfg.cap, cfg.seed, cfg.on_crash) == (512, 50, 42, "preserve")
    assert cfg.kernel is None
    assert cfg.disk == [
        DiskSpec(target="disk.img", vdev="hda"),
        DiskSpec(target=None, vdev="hdc", access="ro", devtype="cdrom"),
    ]
    assert cfg.disk[1].readonly and not cfg.disk[0].readonly
    assert cfg.vif == [
        VifSpec(mac="00:16:3e:01:02:03", bridge="xenbr1", model="e1000", devid=0),
    ]
    assert cfg.source_lines["disk"] == 16
    assert cfg.warnings == []


def test_hvm_boot_defaults_to_c_and_builder_is_legacy_type() -> None:
    assert parse('name = "h"\nbuilder = "hvm"\n').boot == "c"
    assert parse('name = "h"\nbuilder = "hvm"\n').type == "hvm"
    assert parse(PV + 'builder = "generic"\n').type == "pv"
    cfg = parse('name = "h"\ntype = "pvh"\nbuilder = "hvm"\n')
    assert cfg.type == "pvh"
    assert "builder" in cfg.warnings[0]


def test_pvh_needs_no_kernel_check() -> None:
    assert parse('name = "p"\ntype = "pvh"\n').kernel is None


def test_bare_words_and_numbers_are_values() -> None:
    cfg = parse("name = guest1\ntype = pvh\nmemory = 64\nseed = 0x10\n")
    assert (cfg.name, cfg.type, cfg.memory, cfg.seed) == ("guest1", "pvh", 64, 16)


def test_quoted_integer_is_accepted_like_xl() -> None:
    assert parse(PV + 'memory = "256"\n').memory == 256


def test_leading_zero_is_decimal() -> None:
    assert parse(PV + "memory = 010\n").memory == 10


def test_escapes_in_both_quote_styles() -> None:
    cfg = parse(
        'name = "a\\"b"\n'
        "kernel = 'it\\'s'\n"
        'cmdline = "x\\ty\\nz\\\\w\\x41"\n'
        "ramdisk = 'd\\\"q'\n"
    )
    assert cfg.name == 'a"b'
    assert cfg.kernel == "it's"
    assert cfg.cmdline == "x\ty\nz\\wA"
    assert cfg.ramdisk == 'd"q'


def test_comments_and_semicolons() -> None:
    cfg = parse(
        "# leading comment\n"
        'name = "c" # trailing comment with "quotes" and [brackets]\n'
        'kernel = "k#not-a-comment"; memory = 64 ; vcpus = 2;\n'
        ";;\n"
        "   # indented comment\n"
    )
    assert cfg.kernel == "k#not-a-comment"
    assert (cfg.memory, cfg.vcpus) == (64, 2)
    assert cfg.source_lines["vcpus"] == 3


def test_no_trailing_newline_and_crlf() -> None:
    assert parse('name = "x"\r\nkernel = "k"').kernel == "k"


def test_multiline_lists_and_trailing_comma() -> None:
    cfg = parse(
        PV
        + "disk = [\n"
        + "  '/a,raw,xvda,rw',   # first\n"
        + "\n"
        + "  '/b,raw,xvdb,ro'\n"
        + "  ,\n"
        + "]\n"
        + "vif = [ ]\n"
    )
    assert [d.vdev for d in cfg.disk] == ["xvda", "xvdb"]
    assert cfg.vif == []


def test_plus_equals_appends_lists_and_strings() -> None:
    cfg = parse(
        PV
        + "disk = [ '/a,raw,xvda,rw' ]\n"
        + "disk += [ '/b,raw,xvdb,rw' ]\n"
        + "disk += '/c,raw,xvdc,rw'\n"
        + 'cmdline = "console=hvc0"\n'
        + 'cmdline += " quiet"\n'
        + 'ramdisk += "initrd"\n'  # += on an unset key acts as =
    )
    assert [d.target for d in cfg.disk] == ["/a", "/b", "/c"]
    assert cfg.cmdline == "console=hvc0 quiet"
    assert cfg.ramdisk == "initrd"
    assert cfg.source_lines["cmdline"] == 7


def test_plus_equals_list_onto_string_is_an_error() -> None:
    assert error_of(PV + 'cmdline = "a"\ncmdline += ["b"]\n') == (
        "bad.cfg:4: cannot append a list to 'cmdline', which is not a list"
    )


def test_last_setting_wins() -> None:
    cfg = parse(PV + "memory = 64\nmemory = 96\n")
    assert cfg.memory == 96
    assert cfg.source_lines["memory"] == 4


@pytest.mark.parametrize(
    ("lines", "cmdline"),
    [
        ('root = "/dev/xvda1"\nextra = "console=hvc0"\n', "root=/dev/xvda1 console=hvc0"),
        ('root = "/dev/xvda1"\n', "root=/dev/xvda1"),
        ('extra = "console=hvc0"\n', "console=hvc0"),
        ("", None),
    ],
)
def test_legacy_root_and_extra(lines: str, cmdline: str | None) -> None:
    assert parse(PV + lines).cmdline == cmdline


def test_cmdline_beats_root_and_extra_with_warning() -> None:
    cfg = parse(PV + 'cmdline = "a"\nextra = "b"\n')
    assert cfg.cmdline == "a"
    assert cfg.warnings == ["bad.cfg:3: ignoring 'root' and 'extra' in favour of 'cmdline'"]


def test_ignored_keys_are_accepted() -> None:
    cfg = parse(PV + 'uuid = "x"\npae = 1\nvnc = 1\nusbdevice = "tablet"\nstdvga = 0\n')
    assert cfg == parse(PV)


@pytest.mark.parametrize(("value", "seconds"), [
    ("3600", 3600), ('"-3600"', -3600), ("0x10", 16), ('"7200"', 7200),
    ("4294963696", -3600), ("2147483648", -(1 << 31)), ('"-2147483648"', -(1 << 31)),
])
def test_rtc_timeoffset_as_xl_and_libxl_read_it(value: str, seconds: int) -> None:
    """xl reads a long (a negative one quoted: xl.cfg's numbers have no sign); libxl
    keeps it in a uint32 that Xen takes as int32_t time_offset_seconds."""
    cfg = parse(PV + f"rtc_timeoffset = {value}\n")
    assert cfg.rtc_timeoffset == seconds
    assert parse_config_text(format_config(cfg)) == cfg
    assert parse(PV).rtc_timeoffset == 0 and "rtc_timeoffset" not in format_config(parse(PV))


def test_serial_forms() -> None:
    assert parse(PV + "serial = 'pty'\n").serial == "pty"
    assert parse(PV + "serial = []\n").serial is None
    cfg = parse(PV + "serial = ['pty', 'file:/tmp/x']\n")
    assert cfg.serial == "pty"
    assert "first 'serial'" in cfg.warnings[0]


def test_vga_kinds() -> None:
    hvm = 'name = "h"\ntype = "hvm"\n'
    assert parse(hvm).vga is None                      # the default adapter
    for kind in ("stdvga", "cirrus", "none"):
        assert parse(hvm + f'vga = "{kind}"\n').vga == kind
    assert error_of(hvm + 'vga = "qxl"\n') == (
        "bad.cfg:3: 'vga' must be one of stdvga, cirrus, none, got \"qxl\" "
        "(xenlab emulates no qxl)")
    cfg = parse(PV + 'vga = "none"\n')
    assert cfg.warnings == ["bad.cfg:3: 'vga' only applies to hvm guests (this is pv)"]


def test_hvm_only_keys_on_pv_warn() -> None:
    cfg = parse(PV + 'boot = "c"\n')
    assert cfg.boot == "c"
    assert cfg.warnings == ["bad.cfg:3: 'boot' only applies to hvm guests (this is pv)"]


def test_config_is_frozen() -> None:
    cfg = parse(PV)
    with pytest.raises(AttributeError):
        cfg.memory = 1  # type: ignore[misc]


# -- disks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vdev", "devid"),
    [
        ("xvda", 51712),
        ("xvdb", 51728),
        ("xvda1", 51713),
        ("xvdp", (202 << 8) | (15 << 4)),
        ("xvdq", (1 << 28) | (16 << 8)),
        ("xvdaa", (1 << 28) | (26 << 8)),
        ("hda", 768),
        ("hdb", 832),
        ("hdc", 5632),
        ("hdd", 5696),
        ("hda1", 769),
        ("sda", 2048),
        ("sdb", 2064),
        ("d0p1", (1 << 28) | 1),
    ],
)
def test_vdev_devid(vdev: str, devid: int) -> None:
    assert vdev_to_devid(vdev) == devid
    assert DiskSpec(target="/x", vdev=vdev).devid == devid


@pytest.mark.parametrize("vdev", ["xvd", "hde", "sdq", "vda", "xvdA", ""])
def test_bad_vdev(vdev: str) -> None:
    with pytest.raises(ValueError):
        vdev_to_devid(vdev)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/img/a.raw,raw,xvda,rw", DiskSpec(target="/img/a.raw", vdev="xvda")),
        ("/img/a.raw,,xvdb,r", DiskSpec(target="/img/a.raw", vdev="xvdb", access="ro")),
        ("a.img,qcow2,xvda,w", DiskSpec(target="a.img", vdev="xvda", format="qcow2")),
        ("phy:/dev/vg/g,xvda,w", DiskSpec(target="/dev/vg/g", vdev="xvda")),
        ("file:/img/g.img,hda,w", DiskSpec(target="/img/g.img", vdev="hda")),
        (
            "file:/iso/x.iso,hdc:cdrom,r",
            DiskSpec(target="/iso/x.iso", vdev="hdc", access="ro", devtype="cdrom"),
        ),
        (",,hdc:cdrom,r", DiskSpec(target=None, vdev="hdc", access="ro", devtype="cdrom")),
        (
            "format=raw, vdev=hda, access=rw, target=/img/with,comma=.img",
            DiskSpec(target="/img/with,comma=.img", vdev="hda"),
        ),
        (
            "vdev=hdc, cdrom, target=/iso/x.iso",
            DiskSpec(target="/iso/x.iso", vdev="hdc", access="ro", devtype="cdrom"),
        ),
        (
            "vdev=xvdc, devtype=cdrom",
            DiskSpec(target=None, vdev="xvdc", access="ro", devtype="cdrom"),
        ),
        ("/img/a,raw,xvda,rw,discard", DiskSpec(target="/img/a", vdev="xvda")),
    ],
)
def test_disk_forms(spec: str, expected: DiskSpec) -> None:
    assert parse(PV + f"disk = [ '{spec}' ]\n").disk == [expected]


def test_qcow2_is_flagged() -> None:
    cfg = parse(PV + "disk = ['a.qcow2,qcow2,xvda,rw']\n")
    assert cfg.warnings == ["bad.cfg:3: disk 0: qcow2 is accepted, but xenlab reads raw data"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/a,raw", "missing 'vdev'"),
        ("/a,vmdk,xvda,rw", "unsupported format 'vmdk'"),
        ("/a,raw,xvda,rx", 'access must be rw, ro, w or r, got "rx"'),
        ("/a,raw,xvda,rw,extra", "too many positional parameters"),
        ("vdev=xvda, acess=rw, target=/a", "unknown parameter 'acess' (did you mean 'access'?)"),
        (",raw,xvda,rw", "no target (only a cdrom may be empty)"),
        ("/a,raw,hda:floppy,rw", "unknown device type ':floppy'"),
        ("/a,raw,hde,rw", "IDE disk 'hde' out of range"),
    ],
)
def test_disk_errors_name_the_entry(spec: str, message: str) -> None:
    msg = error_of(PV + f"disk = [\n  '/ok,raw,xvdz,rw',\n  '{spec}' ]\n")
    assert msg.startswith(f'bad.cfg:5: disk 1 ("{spec}"): ')
    assert message in msg


def test_disk_list_of_lists_is_an_error() -> None:
    assert error_of(PV + "disk = [ ['a'] ]\n") == (
        "bad.cfg:3: 'disk' must be a list of strings, not of lists"
    )


# -- vifs -----------------------------------------------------------------------


def test_vif_forms() -> None:
    cfg = parse(
        PV
        + "vif = [ '', 'mac=00:16:3E:0A:0b:0c, bridge=br1, ip=10.0.0.2 fe80::1', 'model=e1000' ]\n"
    )
    assert [v.devid for v in cfg.vif] == [0, 1, 2]
    assert cfg.vif[0].bridge == "xenbr0" and cfg.vif[0].ip is None
    assert cfg.vif[1] == VifSpec(
        mac="00:16:3e:0a:0b:0c", bridge="br1", ip="10.0.0.2 fe80::1", devid=1
    )
    assert cfg.vif[2].model == "e1000"


def test_vif_default_mac_is_deterministic() -> None:
    a = parse(PV + "vif = ['', '']\n")
    b = parse(PV + "vif = ['', 'bridge=xenbr1']\n")
    c = parse(PV.replace('"g"', '"other"') + "vif = ['']\n")
    assert [v.mac for v in a.vif] == [v.mac for v in b.vif]
    assert a.vif[0].mac != a.vif[1].mac
    assert a.vif[0].mac != c.vif[0].mac
    for vif in a.vif:
        assert vif.mac.startswith("00:16:3e:")
        assert int(vif.mac.split(":")[3], 16) < 0x80  # libxl clears the top bit
    assert a.vif[0].mac == "00:16:3e:" + ":".join(f"{b:02x}" for b in _sha_tail("g/0"))


def _sha_tail(seed: str) -> tuple[int, int, int]:
    import hashlib

    d = hashlib.sha256(seed.encode()).digest()
    return (d[0] & 0x7F, d[1], d[2])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mac=00:16:3e:01:02", 'bad mac "00:16:3e:01:02"'),
        ("bridge", 'expected key=value, got "bridge"'),
        ("brige=xenbr0", "unknown parameter 'brige' (did you mean 'bridge'?)"),
        ("ip=10.0.0.300", 'bad ip address "10.0.0.300"'),
        ("bridge=", "empty value for 'bridge'"),
    ],
)
def test_vif_errors(spec: str, message: str) -> None:
    msg = error_of(PV + f"vif = [ '{spec}' ]\n")
    assert msg.startswith(f'bad.cfg:3: vif 0 ("{spec}"): ')
    assert message in msg


def test_duplicate_mac() -> None:
    msg = error_of(PV + "vif = ['mac=00:16:3e:00:00:01', 'mac=00:16:3E:00:00:01']\n")
    assert msg == "bad.cfg:3: vif 1: mac 00:16:3e:00:00:01 is also used by vif 0"


# -- errors with line numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "a\n', "bad.cfg:1: syntax error: unterminated string"),
        ("name = 'a", "bad.cfg:1: syntax error: unterminated string"),
        ('\nname = "a\\', "bad.cfg:2: syntax error: unterminated string"),
        ('name = "\\x4"', "bad.cfg:1: syntax error: \\x must be followed by two hex digits"),
        ('name = "\\q"', "bad.cfg:1: syntax error: unknown escape '\\q' in string"),
        ("\n\nmemory 5", "bad.cfg:3: syntax error: expected '=' after 'memory', got '5'"),
        ("memory =\n", "bad.cfg:1: syntax error: expected a value, got end of line"),
        ("memory = 5 6", "bad.cfg:1: syntax error: expected end of line after 'memory', got '6'"),
        ('"name" = 1', 'bad.cfg:1: syntax error: expected a setting name, got string "name"'),
        ("= 1", "bad.cfg:1: syntax error: expected a setting name, got '='"),
        ("name = ]", "bad.cfg:1: syntax error: expected a value, got ']'"),
        ("x = [1 2]", "bad.cfg:1: syntax error: expected ',' or ']' in list, got '2'"),
        ("x = [1,\n2,\n", "bad.cfg:1: syntax error: unterminated list ('[' without ']')"),
        ("x = [1,, 2]", "bad.cfg:1: syntax error: expected a value, got ','"),
        ("name = a$b", 'bad.cfg:1: syntax error: unexpected character "$"'),
        ("name = 1.5.x\nfoo! = 1", 'bad.cfg:2: syntax error: unexpected character "!"'),
        (PV + "memroy = 4", "bad.cfg:3: unknown key 'memroy' (did you mean 'memory'?)"),
        (PV + "zzzzzz = 4", "bad.cfg:3: unknown key 'zzzzzz'"),
        (PV + "vcpu = 4", "bad.cfg:3: unknown key 'vcpu' (did you mean 'vcpus'?)"),
        ('kernel = "k"', "bad.cfg: missing required key 'name'"),
        ('name = ""\nkernel = "k"', "bad.cfg:1: 'name' must not be empty"),
        ('name = "x"', "bad.cfg: type \"pv\" needs a 'kernel'"),
        ('name = ["x"]', "bad.cfg:1: 'name' must be a string, got a list"),
        (PV + 'memory = "abc"', "bad.cfg:3: 'memory' must be an integer (MiB), got \"abc\""),
        (PV + "memory = 12ab", "bad.cfg:3: 'memory' must be an integer (MiB), got 12ab"),
        (PV + "memory = [1]", "bad.cfg:3: 'memory' must be an integer (MiB), got a list"),
        (PV + "memory = 0", "bad.cfg:3: 'memory' must be at least 1, got 0"),
        (
            PV + "memory = 64\nmaxmem = 32",
            "bad.cfg:4: 'maxmem' (32) must be at least 'memory' (64)",
        ),
        (PV + "vcpus = 0", "bad.cfg:3: 'vcpus' must be between 1 and 128, got 0"),
        (PV + "vcpus = 129", "bad.cfg:3: 'vcpus' must be between 1 and 128, got 129"),
        (PV + "vcpus = 4\nmaxvcpus = 2", "bad.cfg:4: 'maxvcpus' (2) must be at least 'vcpus' (4)"),
        (PV + "weight = 0", "bad.cfg:3: 'weight' must be between 1 and 65535, got 0"),
        (
            PV + "cpu_weight = 70000",
            "bad.cfg:3: 'cpu_weight' must be between 1 and 65535, got 70000",
        ),
        (
            PV + "weight = 1\ncpu_weight = 2",
            "bad.cfg:4: give either 'weight' or 'cpu_weight', not both",
        ),
        (PV + "cap = 70000", "bad.cfg:3: 'cap' must be between 0 and 65535, got 70000"),
        (PV + "seed = x", "bad.cfg:3: 'seed' must be an integer, got x"),
        ('name = "t"\ntype = "xen"', "bad.cfg:2: 'type' must be one of pv, pvh, hvm, got \"xen\""),
        ('name = "t"\nbuilder = "x"', 'bad.cfg:2: \'builder\' must be "hvm" or "generic", got "x"'),
        (PV + 'on_reboot = "boom"', "bad.cfg:3: 'on_reboot' must be one of destroy, restart"),
        (
            'name = "h"\ntype = "hvm"\nboot = ""',
            "bad.cfg:3: 'boot' must be letters from a, b, c, d, n",
        ),
        (
            PV + 'pci = ["01:00.0"]',
            "bad.cfg:3: 'pci' is a real xl option that xenlab does not support",
        ),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    msg = error_of(text)
    assert msg.startswith(message), msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "action",
    [
        "destroy",
        "restart",
        "preserve",
        "coredump-destroy",
        "coredump-restart",
        "rename-restart",
        "soft-reset",
    ],
)
def test_all_actions_accepted(action: str) -> None:
    cfg = parse(PV + f'on_poweroff = "{action}"\non_reboot = "{action}"\non_crash = "{action}"\n')
    assert cfg.on_poweroff == cfg.on_reboot == cfg.on_crash == action


# -- files ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.cfg")
    with pytest.raises(ConfigError, match=r"nope\.cfg: no such file$"):
        parse_config_file(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_file(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory"


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.cfg"
    p.write_bytes(b'name = "x"\nkernel = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        parse_config_file(p)
    assert str(info.value) == f"{p}:2: not valid UTF-8 (byte 0xe9)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable(tmp_path: Path) -> None:
    p = tmp_path / "secret.cfg"
    p.write_text(PV)
    p.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        parse_config_file(p)


def test_error_uses_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rel.cfg").write_text('name = "x"\nmemory = "lots"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        parse_config_file("rel.cfg")
    assert str(info.value).startswith("rel.cfg:2: 'memory' must be an integer (MiB)")


def test_utf8_bom_and_non_ascii(tmp_path: Path) -> None:
    p = tmp_path / "u.cfg"
    p.write_text('\ufeffname = "café"\nkernel = "k"\n', encoding="utf-8")
    assert parse_config_file(p).name == "café"


def test_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfgdir = tmp_path / "cfgs"
    cwd = tmp_path / "cwd"
    cfgdir.mkdir()
    cwd.mkdir()
    (cfgdir / "guest.cfg").write_text('name = "g"\nkernel = "vmlinuz"\n')
    (cfgdir / "vmlinuz").write_text("")
    (cwd / "only-in-cwd.img").write_text("")
    monkeypatch.chdir(cwd)
    cfg = parse_config_file(cfgdir / "guest.cfg")
    assert cfg.kernel == "vmlinuz"
    assert cfg.resolve(cfg.kernel) == str(cfgdir / "vmlinuz")
    assert cfg.resolve("only-in-cwd.img") == str(cwd / "only-in-cwd.img")
    assert cfg.resolve("nowhere.img") == str(cfgdir / "nowhere.img")
    assert cfg.resolve("/abs/../x") == "/x"
    assert parse(PV).resolve("k") == str(cwd / "k")


# -- the corpus of bad configs ----------------------------------------------------------


def test_bad_corpus_is_there() -> None:
    names = {p.name for p in BAD_CONFIGS}
    assert {
        "syntax-unterminated.cfg", "unknown-key.cfg", "memory-not-int.cfg", "memory-zero.cfg",
        "maxmem-below-memory.cfg", "missing-name.cfg", "pv-without-kernel.cfg",
        "bad-on-crash.cfg", "bad-disk.cfg", "bad-mac.cfg", "bad-type.cfg", "vcpus-zero.cfg",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", BAD_CONFIGS, ids=[p.name for p in BAD_CONFIGS])
def test_bad_config(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks a '# expect:' first line"
    expected = first[len("# expect: ") :]
    with pytest.raises(ConfigError) as info:
        parse_config_file(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert expected in message
    assert "\n" not in message


# -- round trip --------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
_word = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
_path = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
_vdevs = st.sampled_from(
    ["xvda", "xvdb", "xvdc", "xvdz", "xvda1", "xvdaa", "hda", "hdb", "hdc", "hdd", "sda",
     "sdp", "d3p2"]
)  # fmt: skip


@st.composite
def _disks(draw: st.DrawFn) -> list[DiskSpec]:
    vdevs = draw(st.lists(_vdevs, unique_by=vdev_to_devid, max_size=4))
    disks = []
    for vdev in vdevs:
        devtype = draw(st.sampled_from(["disk", "cdrom"]))
        target = draw(_path if devtype == "disk" else st.none() | _path)
        disks.append(
            DiskSpec(
                target=target,
                vdev=vdev,
                format=draw(st.sampled_from(["raw", "qcow2"])),
                access=draw(st.sampled_from(["rw", "ro"])),
                devtype=devtype,
            )
        )
    return disks


_mac = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda bs: ":".join(f"{b:02x}" for b in bs)
)


@st.composite
def _vifs(draw: st.DrawFn) -> list[VifSpec]:
    macs = draw(st.lists(_mac, unique=True, max_size=3))
    return [
        VifSpec(
            mac=mac,
            bridge=draw(_word),
            ip=draw(st.none() | st.ip_addresses().map(str)),
            model=draw(st.none() | _word),
            devid=i,
        )
        for i, mac in enumerate(macs)
    ]


@st.composite
def _configs(draw: st.DrawFn) -> DomainConfig:
    dtype = draw(st.sampled_from(["pv", "pvh", "hvm"]))
    memory = draw(st.integers(1, 1 << 20))
    vcpus = draw(st.integers(1, 128))
    actions = st.sampled_from(
        ["destroy", "restart", "preserve", "coredump-destroy", "coredump-restart",
         "rename-restart", "soft-reset"]
    )  # fmt: skip
    kernel = draw(_path) if dtype == "pv" else draw(st.none() | _path)
    return DomainConfig(
        name=draw(_text.filter(lambda s: bool(s.strip()))),
        type=dtype,
        memory=memory,
        maxmem=draw(st.integers(memory, memory + 4096)),
        vcpus=vcpus,
        maxvcpus=draw(st.integers(vcpus, 128)),
        kernel=kernel,
        ramdisk=draw(st.none() | _path),
        cmdline=draw(st.none() | _text),
        on_poweroff=draw(actions),
        on_reboot=draw(actions),
        on_crash=draw(actions),
        disk=draw(_disks()),
        vif=draw(_vifs()),
        bios=draw(st.none() | st.sampled_from(["seabios", "rombios", "ovmf", "xenlab"]))
        if dtype == "hvm"
        else None,
        boot=draw(st.text("abcdn", min_size=1, max_size=4)) if dtype == "hvm" else None,
        serial=draw(st.none() | st.sampled_from(["pty", "file:/tmp/s", "null"])),
        vga=draw(st.none() | st.sampled_from(["stdvga", "cirrus", "none"]))
        if dtype == "hvm"
        else None,
        weight=draw(st.integers(1, 65535)),
        cap=draw(st.integers(0, 65535)),
        seed=draw(st.none() | st.integers(0, 1 << 64)),
    )


@settings(max_examples=200, deadline=None)
@given(_configs())
def test_format_round_trip(cfg: DomainConfig) -> None:
    text = format_config(cfg)
    again = parse_config_text(text, "roundtrip.cfg")
    assert again == cfg
    assert format_config(again) == text


def test_format_example_parses_and_round_trips() -> None:
    cfg = parse(PV + "vif = ['']\ndisk = ['phy:/dev/x,xvda,w', ',,hdc:cdrom,r']\nextra = 'q'\n")
    text = format_config(cfg)
    assert 'name = "g"' in text and "cpu_weight = 256" in text
    assert parse_config_text(text) == cfg
