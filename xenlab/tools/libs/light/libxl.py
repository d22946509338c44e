"""libxl: the toolstack library in Dom0 that turns an xl.cfg into a running domain.

``Libxl.domain_create_new`` follows libxl's order: check the config and the
kernel image *before* touching the hypervisor, then create the domain (paused),
give it memory, build it, and unpause it. If any step fails after the domain
exists, the domain is destroyed again, so nothing is left half-created.
``domain_death`` carries out ``on_poweroff`` / ``on_reboot`` / ``on_crash``
the way ``xl``'s per-domain daemon does (destroy, restart, preserve, ...).

Real Xen: tools/libs/light/libxl_create.c (do_domain_create),
tools/libs/light/libxl_domain.c, tools/xl/xl_vmcontrol.c (handle_domain_death)
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xenlab.devicemodel.qemu import IDE_SLOTS, DeviceModel
from xenlab.dom0.services import Dom0Services
from xenlab.errors import ConfigError, DomainError, HostMemoryError, ImageError, UsageError
from xenlab.public.sched import ShutdownReason
from xenlab.tools.libs.guest.xg_dom_core import read_image_file
from xenlab.tools.libs.guest.xg_dom_elfloader import ElfImage, load_elf_kernel
from xenlab.tools.libs.guest.xg_dom_hvm import (
    HvmFirmware,
    build_hvm,
    build_pvh,
    load_hvmloader,
    load_pvh_kernel,
)
from xenlab.tools.libs.guest.xg_dom_x86 import boot_layout, build_pv, unzip_module
from xenlab.tools.xl.xl_parse import DomainConfig
from xenlab.xen.domain import Domain, DomainType
from xenlab.xen.event_channel import evtchn_alloc_unbound
from xenlab.xen.setup import WALLCLOCK_DEFAULT, XenHost

__all__ = ["RTC_BASE_ENV", "Libxl", "PreparedDomain", "rtc_base_wallclock"]

PAGES_PER_MIB = 256
_ACTIONS_BY_REASON = {
    ShutdownReason.SHUTDOWN_poweroff: "on_poweroff",
    ShutdownReason.SHUTDOWN_reboot: "on_reboot",
    ShutdownReason.SHUTDOWN_crash: "on_crash",
    ShutdownReason.SHUTDOWN_watchdog: "on_watchdog",
    ShutdownReason.SHUTDOWN_soft_reset: "on_soft_reset",
}


IMAGES = Path(__file__).resolve().parents[4] / "images"
HVMLOADER_PATHS = ("/usr/lib/xen-4.17/boot/hvmloader", "/usr/libexec/xen/boot/hvmloader")
SEABIOS_PATHS = ("/usr/share/seabios/bios-256k.bin",)
VGABIOS = "/usr/share/seabios/vgabios-stdvga.bin"


PV_GRUB = "/usr/lib/grub-xen/grub-x86_64-xen.bin"      # grub-xen-host (Debian, Ubuntu)
PVH_GRUB = "/usr/lib/grub-xen/grub-i386-xen_pvh.bin"
# what a chapter may use from the distribution (Lab.missing says, in the labs' language,
# what to install where one is not found)
REAL_PARTS = ("seabios", "pvh-grub", "pv-grub")
SEABIOS_NEEDS = ("Xen's hvmloader and SeaBIOS (apt install xen-utils-4.17 seabios; on other "
                 "releases the xen-utils-4.x of their Xen)")


def find_hvmloader() -> str | None:
    """The distribution's hvmloader, wherever its Xen version put it (/usr/lib/xen-4.17
    on Debian 12 and Ubuntu 24.04, /usr/lib/xen-4.x elsewhere, /usr/libexec/xen)."""
    found = [p for p in HVMLOADER_PATHS + tuple(sorted(glob.glob("/usr/lib/xen-*/boot/"
                                                                 "hvmloader"), reverse=True))
             if os.path.isfile(p)]
    return found[0] if found else None


def real_part_installed(part: str) -> bool:
    """Whether the distribution's ``part`` (one of REAL_PARTS) is installed here."""
    if part == "seabios":
        return find_hvmloader() is not None and any(os.path.isfile(p) for p in SEABIOS_PATHS)
    if part == "pvh-grub":
        return os.path.isfile(PVH_GRUB)
    if part == "pv-grub":
        return os.path.isfile(PV_GRUB)
    raise KeyError(f"no part {part!r}; the parts are {', '.join(REAL_PARTS)}")


def find_firmware(cfg: DomainConfig) -> tuple[str, str]:
    """(hvmloader, BIOS image) for ``bios =``: xenlab's teaching firmware by default,
    the distribution's real hvmloader and SeaBIOS for ``bios = "seabios"``."""
    bios = cfg.bios or "xenlab"
    if bios == "xenlab":
        loader = IMAGES / "firmware" / "hvmloader.elf"
        image = IMAGES / "firmware" / "xenlab-bios.bin"
        if not loader.is_file() or not image.is_file():
            raise ImageError(f"{loader}: xenlab's teaching firmware is missing "
                             "(build it with `make -C images`)")
        return str(loader), str(image)
    if bios == "seabios":
        loader = find_hvmloader()
        seabios = [p for p in SEABIOS_PATHS if os.path.isfile(p)]
        if loader is None or not seabios:
            raise ImageError(f"{cfg.path}: bios = \"seabios\" needs {SEABIOS_NEEDS}")
        return loader, seabios[0]
    raise ConfigError(f"{cfg.path}: bios = \"{bios}\" is not supported (xenlab has "
                      "\"xenlab\", its teaching firmware, and \"seabios\")")


RTC_BASE_ENV = "XENLAB_RTC_BASE"


def rtc_base_wallclock(base: str | None, where: str) -> int:
    """The host's wallclock at boot for an RTC ``base`` as QEMU's ``-rtc base=`` takes it
    (libxl_dm.c writes that option for QEMU's own RTC): "utc", the host's clock now;
    a date "2030-06-15" or "2030-06-15T12:00:00" (UTC); or "fixed", xenlab's default
    2026-01-01 00:00:00 UTC, the same every run. None reads ``$XENLAB_RTC_BASE``, and
    "fixed" if that is unset. ``where`` names the option in the one-line error."""
    if base is None:
        base = os.environ.get(RTC_BASE_ENV) or "fixed"
        where = f"${RTC_BASE_ENV}" if RTC_BASE_ENV in os.environ else where
    if base == "fixed":
        return WALLCLOCK_DEFAULT
    if base == "utc":
        return int(time.time())
    try:
        when = datetime.datetime.fromisoformat(base)
    except ValueError:
        when = None
    if when is None or when.tzinfo is not None or not 1970 <= when.year <= 2099:
        raise UsageError(f"{where}: the RTC base must be \"fixed\" (2026-01-01, the same "
                         "every run), \"utc\" (the host's clock) or a UTC date from 1970 to "
                         f"2099 such as \"2030-06-15T12:00:00\", not {base!r}")
    return int(when.replace(tzinfo=datetime.timezone.utc).timestamp())


def _memory_text(cfg: DomainConfig) -> str:
    """Where a guest image's size bound comes from, for error messages."""
    return f"the domain's memory (memory = {cfg.memory} MiB)"


_SERVICES: weakref.WeakKeyDictionary[XenHost, Dom0Services] = weakref.WeakKeyDictionary()


def dom0_services(host: XenHost) -> Dom0Services:
    """The one set of Dom0 services (xenstored, xenconsoled, backends) of a host."""
    services = _SERVICES.get(host)
    if services is None:
        services = _SERVICES[host] = Dom0Services(host)
    return services


def disk_cache_dir() -> Path:
    """Where guests' copies of xenlab's shipped disk images go: ``$XENLAB_CACHE/disks``,
    else ``~/.cache/xenlab/disks``."""
    root = os.environ.get("XENLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "xenlab")
    return Path(root) / "disks"


def writable_disk_path(cfg: DomainConfig, target: str) -> tuple[str, str | None]:
    """The file a writable disk is served from: the config's own file, except for an
    image shipped in xenlab's ``images/`` folder, which is copied at create (a fresh copy
    every time, in ``disk_cache_dir()/<domain name>/``) so that running a demo never
    changes the repository. Returns (path, the shipped original if it was copied).
    xenlab's own rule (real libxl uses the file it is given); a file of your own, or a
    copy you made, is used in place."""
    path = cfg.resolve(target)
    real = os.path.realpath(path)
    if os.path.commonpath([real, str(IMAGES.resolve())]) != str(IMAGES.resolve()):
        return path, None
    dest = disk_cache_dir() / cfg.name / os.path.basename(real)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(real, tmp)
        os.replace(tmp, dest)
    except OSError as err:
        raise ImageError(f"{path}: cannot copy the shipped image to {dest.parent} "
                         f"({err.strerror or err}); set XENLAB_CACHE to a writable "
                         "folder") from None
    return str(dest), path


@dataclass
class PreparedDomain:
    """A config whose files have been read and checked; nothing created yet."""

    cfg: DomainConfig
    image: ElfImage | None
    ramdisk: bytes = b""
    pages: int = 0
    notes: list[str] = field(default_factory=list)
    firmware: HvmFirmware | None = None


class Libxl:
    """One toolstack context on one host (libxl_ctx)."""

    def __init__(self, host: XenHost) -> None:
        self.host = host
        self.services = dom0_services(host)
        self.configs: dict[int, DomainConfig] = {}
        self.device_models: dict[int, DeviceModel] = self.services.device_models  # Dom0's
        self.xl_log: list[str] = []          # what xl's per-domain daemons log
        #: domid -> [(shipped image, the copy its guest writes)] (``writable_disk_path``)
        self.disk_copies: dict[int, list[tuple[str, str]]] = {}
        self.on_create: list[Callable[[Domain], None]] = []
        host.death_listeners.append(self.domain_death)

    # -- create -----------------------------------------------------------------
    def prepare(self, cfg: DomainConfig) -> PreparedDomain:
        """Check everything that can be checked without the hypervisor."""
        if any(d.name == cfg.name for d in self.host.domains.values()):
            raise ConfigError(f"{cfg.path}: domain with name '{cfg.name}' already exists")
        if cfg.type == "pvh":
            if not cfg.kernel:
                raise ConfigError(f"{cfg.path}: type \"pvh\" needs a 'kernel'")
            kernel = load_pvh_kernel(cfg.resolve(cfg.kernel), cfg.memory << 20,
                                     _memory_text(cfg))
            ramdisk = b""
            if cfg.ramdisk:  # a module as it is: the kernel unpacks its initramfs itself
                ramdisk = read_image_file(cfg.resolve(cfg.ramdisk), "ramdisk",
                                          cfg.memory << 20, limit_text=_memory_text(cfg))
            return PreparedDomain(cfg, None, ramdisk, pages=cfg.memory * PAGES_PER_MIB,
                                  firmware=kernel)
        if cfg.type == "hvm":
            return self._prepare_hvm(cfg)
        assert cfg.kernel is not None
        kernel = cfg.resolve(cfg.kernel)
        image = load_elf_kernel(kernel, cfg.memory << 20, _memory_text(cfg))
        ramdisk = b""
        if cfg.ramdisk:
            ramdisk = read_image_file(cfg.resolve(cfg.ramdisk), "ramdisk", cfg.memory << 20,
                                      limit_text=_memory_text(cfg))
            ramdisk = unzip_module(ramdisk, cfg.memory << 20)  # Xen 4.17 gunzips modules
        for disk in cfg.disk:
            if disk.target is None:
                continue
            path = cfg.resolve(disk.target)
            if not os.path.isfile(path):
                what = "is not a regular file" if os.path.exists(path) else "does not exist"
                raise ImageError(f"{path}: disk image for {disk.vdev} {what}")
            if os.path.getsize(path) < 512:
                raise ImageError(f"{path}: disk image for {disk.vdev} is smaller than one sector")
            if not os.access(path, os.R_OK if disk.readonly else os.R_OK | os.W_OK):
                raise ImageError(f"{path}: disk image for {disk.vdev}: permission denied")
        pages = cfg.memory * PAGES_PER_MIB
        lay = boot_layout(image, pages, len(ramdisk))
        if lay.end_pfn > pages:
            raise ImageError(
                f"{kernel}: kernel and boot structures need "
                f"{lay.end_pfn >> 8} MiB, but memory = {cfg.memory} MiB")
        return PreparedDomain(cfg, image, ramdisk, pages)

    def _prepare_hvm(self, cfg: DomainConfig) -> PreparedDomain:
        """An HVM guest: pick its firmware, check its IDE disks."""
        loader, bios = find_firmware(cfg)
        firmware = load_hvmloader(loader, bios)
        for disk in cfg.disk:
            if disk.target is None:
                continue
            if disk.vdev not in IDE_SLOTS:
                raise ConfigError(f"{cfg.path}: HVM disk vdev '{disk.vdev}': the device model "
                                  "emulates IDE disks hda, hdb, hdc and hdd")
            path = cfg.resolve(disk.target)
            if not os.path.isfile(path) or os.path.getsize(path) < 512:
                raise ImageError(f"{path}: disk image for {disk.vdev} is missing, not a file "
                                 "or smaller than one sector")
        if cfg.memory < 4:
            raise ConfigError(f"{cfg.path}: an HVM guest needs memory >= 4 (MiB)")
        return PreparedDomain(cfg, None, pages=cfg.memory * PAGES_PER_MIB, firmware=firmware)

    def check_host_memory(self, prepared: list[PreparedDomain]) -> None:
        need = sum(p.cfg.maxmem * PAGES_PER_MIB for p in prepared)
        free = self.host.mem.free_pages - 16 * len(prepared)  # shared_info, grant frames
        if need > free:
            names = ", ".join(p.cfg.name for p in prepared)
            raise HostMemoryError(
                f"not enough free memory for {names}: need {need // PAGES_PER_MIB} MiB, "
                f"host has {max(0, free) // PAGES_PER_MIB} MiB free (ENOMEM)")

    def domain_create_new(self, cfg: DomainConfig, prepared: PreparedDomain | None = None,
                          *, paused: bool = False) -> Domain:
        """libxl_domain_create_new: prepare, create, build, unpause (or leave paused)."""
        prep = prepared or self.prepare(cfg)
        self.check_host_memory([prep])
        host = self.host
        try:
            d = host.domain_create(cfg.name, DomainType(cfg.type), max_pages=cfg.maxmem * 256,
                                   vcpus=cfg.vcpus, weight=cfg.weight, cap=cfg.cap)
        except MemoryError as err:
            raise HostMemoryError(f"cannot create '{cfg.name}': {err} (ENOMEM)") from None
        try:
            d.on_poweroff, d.on_reboot, d.on_crash = cfg.on_poweroff, cfg.on_reboot, cfg.on_crash
            if cfg.rtc_timeoffset:  # libxl__build_pre (xl.cfg "localtime" is not honoured)
                host.domain_set_time_offset(d, cfg.rtc_timeoffset)
            d.config = cfg
            d.cmdline = cfg.cmdline or ""
            if prep.firmware is not None and cfg.type == "pvh":
                self._build_pvh(d, cfg, prep)
                self.configs[d.domid] = cfg
                if not paused:
                    host.domain_unpause(d)
                return d
            if prep.firmware is not None:
                self._build_hvm(d, cfg, prep)
                self.configs[d.domid] = cfg
                if not paused:
                    host.domain_unpause(d)
                return d
            host.populate_physmap(d, prep.pages)
            store = evtchn_alloc_unbound(host, host.domains[0], d.domid, 0)
            cons = evtchn_alloc_unbound(host, host.domains[0], d.domid, 0)
            assert prep.image is not None
            build_pv(host, d, prep.image, cmdline=d.cmdline, ramdisk=prep.ramdisk,
                     store_evtchn=max(0, store), console_evtchn=max(0, cons))
            self.services.domain_created(d)
            for disk in cfg.disk:
                if disk.target is not None and disk.devtype == "disk":
                    self.services.add_disk(d, disk.devid, disk.vdev,
                                           self._disk_file(d, cfg, disk.target, disk.readonly),
                                           disk.readonly)
            for vif in cfg.vif:
                self.services.add_vif(d, vif.devid, vif.mac, vif.bridge)
        except MemoryError as err:
            self._destroy(d)
            raise HostMemoryError(f"cannot create '{cfg.name}': {err} (ENOMEM)") from None
        except BaseException:
            self._destroy(d)
            raise
        self.configs[d.domid] = cfg
        for hook in self.on_create:
            hook(d)
        if not paused:
            host.domain_unpause(d)
        return d

    def _build_pvh(self, d: Domain, cfg: DomainConfig, prep: PreparedDomain) -> None:
        """A PVH guest: no firmware, no device model; its PV console and xenstore."""
        assert prep.firmware is not None
        d.store_port = max(0, evtchn_alloc_unbound(self.host, self.host.domains[0], d.domid, 0))
        d.console_port = max(0, evtchn_alloc_unbound(self.host, self.host.domains[0], d.domid,
                                                     0))
        build_pvh(self.host, d, prep.firmware, memory_pages=prep.pages,
                  cmdline=cfg.cmdline or "", ramdisk=prep.ramdisk)
        self.services.domain_created(d)
        self.host.log.printk(f"d{d.domid}: PVH guest, kernel {prep.firmware.path}")

    def _disk_file(self, d: Domain, cfg: DomainConfig, target: str, readonly: bool) -> str:
        """A read-only disk is its file; a writable one ``writable_disk_path``'s."""
        if readonly:
            return cfg.resolve(target)
        path, shipped = writable_disk_path(cfg, target)
        if shipped is not None:
            self.disk_copies.setdefault(d.domid, []).append((shipped, path))
        return path

    def _build_hvm(self, d: Domain, cfg: DomainConfig, prep: PreparedDomain) -> None:
        """libxl__domain_build (HVM) + libxl__spawn_local_dm: firmware, then QEMU."""
        assert prep.firmware is not None
        d.store_port = max(0, evtchn_alloc_unbound(self.host, self.host.domains[0], d.domid, 0))
        d.console_port = max(0, evtchn_alloc_unbound(self.host, self.host.domains[0], d.domid,
                                                     0))
        build_hvm(self.host, d, prep.firmware, memory_pages=prep.pages)
        dm = DeviceModel(self.host, d, vga=cfg.vga != "none")
        if dm.vga is not None and cfg.bios == "seabios" and os.path.isfile(VGABIOS):
            dm.load_vga_rom(VGABIOS)
        for disk in cfg.disk:
            if disk.target is not None:
                dm.add_disk(disk.vdev, self._disk_file(d, cfg, disk.target, disk.readonly),
                            disk.readonly)
        dm.attach(self.services.kernel)
        self.device_models[d.domid] = dm
        self.services.domain_created(d)
        self.services.xenstored.write(f"/local/domain/{d.domid}/hvmloader/bios",
                                      "seabios" if (cfg.bios == "seabios") else "xenlab")
        self.host.log.printk(f"d{d.domid}: HVM guest, firmware {prep.firmware.path} + "
                             f"{prep.firmware.bios_path}")

    # -- lookups and simple operations ----------------------------------------------
    def lookup(self, name_or_id: str | int) -> Domain:
        """A domain by id or name, as xl's find_domain does."""
        text = str(name_or_id)
        if text.isdigit():
            d = self.host.domains.get(int(text))
            if d is not None:
                return d
        for d in self.host.domains.values():
            if d.name == text:
                return d
        raise DomainError(f"'{text}' is an invalid domain identifier (rc=-6)")

    def domain_destroy(self, d: Domain) -> None:
        if d.domid == 0:
            raise DomainError("Domain-0 cannot be destroyed")
        self._destroy(d)
        self.configs.pop(d.domid, None)
        self.disk_copies.pop(d.domid, None)

    def _destroy(self, d: Domain) -> None:
        """libxl__destroy_domid: devices and Dom0's services first, then the hypervisor."""
        if d.domid in self.services.devices or d.domid in self.services.xenstored.conns:
            self.services.domain_destroying(d)
        dm = self.device_models.pop(d.domid, None)
        if dm is not None:
            dm.close()
        self.host.domain_destroy(d)

    def domain_pause(self, d: Domain) -> None:
        if d.domid == 0:
            raise DomainError("pausing Domain-0 would stop the toolstack itself")
        self.host.domain_pause(d)

    def domain_unpause(self, d: Domain) -> None:
        if not d.paused:
            raise DomainError(f"domain {d.domid} is not paused")
        self.host.domain_unpause(d)

    def domain_shutdown(self, d: Domain, reason: int, *, force: bool) -> None:
        """Ask a guest to shut down. Without PV control in the guest only ``force`` works."""
        if d.domid == 0:
            raise DomainError("shutting down Domain-0 would stop the whole host")
        if d.is_shut_down:
            raise DomainError(f"domain {d.domid} has already shut down")
        if not force:
            raise DomainError(
                "PV control interface not available: external graceful shutdown not possible "
                "(the guest has no control/shutdown watch). Use \"-F\" to force it.")
        self.host.domain_shutdown(d, reason)

    # -- the per-domain daemon's job ------------------------------------------------
    def domain_death(self, d: Domain) -> None:
        """handle_domain_death: apply the config's action for the shutdown reason."""
        if d.domid not in self.host.domains or d.domid == 0:
            return
        reason = d.shutdown_code
        key = _ACTIONS_BY_REASON.get(ShutdownReason(reason) if reason in range(6) else -1,
                                     "on_poweroff")
        action = {"on_poweroff": d.on_poweroff, "on_reboot": d.on_reboot,
                  "on_crash": d.on_crash}.get(key, "destroy")
        log = self.xl_log.append
        log(f"Domain {d.domid} has shut down, reason code {reason} {reason:#x}")
        log(f"Action for shutdown reason code {reason} is {action}")
        if action.startswith("coredump-"):
            log("(xenlab writes no core dump; acting as "
                f"{action.removeprefix('coredump-')})")
            action = action.removeprefix("coredump-")
        if action == "preserve":
            log(f"Domain {d.domid} is preserved (xl destroy {d.name} to clean it up)")
            return
        cfg = self.configs.get(d.domid)
        log(f"Domain {d.domid} needs to be cleaned up: destroying the domain")
        self.domain_destroy(d)
        if action in ("restart", "rename-restart", "soft-reset") and cfg is not None:
            new = self.domain_create_new(cfg)
            log(f"Domain {d.domid} restarted as domain {new.domid}")
