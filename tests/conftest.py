"""Shared fixtures: the repository's paths and a fresh host per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenlab.tools.libs.light.libxl import Libxl
from xenlab.xen.setup import XenHost

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"


@pytest.fixture
def host() -> XenHost:
    return XenHost(memory_mib=256, dom0_mem_mib=64)


@pytest.fixture
def xl(host: XenHost) -> Libxl:
    return Libxl(host)
