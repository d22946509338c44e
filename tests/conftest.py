"""Shared fixtures: the repository's paths and a fresh host per test."""

from __future__ import annotations

import os
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``make fuzz`` (xenlab.fuzz) sets XENLAB_FUZZ_FRESH=1 and passes a fresh
    ``--hypothesis-seed``: the fuzz suites' ``derandomize=True`` is lifted so that the seed
    decides the examples. Without the variable (``make test``, CI) nothing changes."""
    if os.environ.get("XENLAB_FUZZ_FRESH") != "1":
        return
    from hypothesis import settings

    for item in items:
        test = getattr(item, "obj", None)
        inner = getattr(test, "_hypothesis_internal_use_settings", None)
        if inner is not None and inner.derandomize:
            test._hypothesis_internal_use_settings = settings(inner, derandomize=False)
