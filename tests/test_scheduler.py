"""The credit scheduler: weights share a pCPU, blocked vCPUs wake on time, pCPUs interleave."""

from __future__ import annotations

from xenlab.lab import Lab
from xenlab.tools.xl.xl_parse import parse_config_text
from xenlab.xen.sched_credit import CSCHED_PRI_TS_BOOST, CreditScheduler


def _spinner(lab: Lab, name: str, weight: int, loop: int = 400_000_000) -> None:
    kernel = Lab.image("pv-bench/pv-bench.elf")
    text = (f'name = "{name}"\nkernel = "{kernel}"\nmemory = 16\n'
            f'cmdline = "loop={loop} hypercalls=0"\ncpu_weight = {weight}\n')
    lab.toolstack.domain_create_new(parse_config_text(text, f"{name}.cfg"))


def test_weights_share_one_pcpu_in_proportion() -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64, nr_cpus=1)
    _spinner(lab, "heavy", 512)
    _spinner(lab, "light", 256)
    lab.run(max_instructions=600_000_000)
    heavy, light = lab.domain("heavy").cpu_time, lab.domain("light").cpu_time
    assert heavy + light >= 590_000_000
    assert 1.6 < heavy / light < 2.4, (heavy, light)


def test_equal_weights_share_equally_and_two_pcpus_run_in_parallel() -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64, nr_cpus=2)
    _spinner(lab, "a", 256)
    _spinner(lab, "b", 256)
    lab.run(max_instructions=200_000_000)
    a, b = lab.domain("a").cpu_time, lab.domain("b").cpu_time
    assert abs(a - b) <= 0.1 * (a + b)
    # two pCPUs: 200 M instructions of work took about 100 ms of virtual time
    assert lab.host.elapsed() < 120_000_000


def test_a_woken_vcpu_is_boosted() -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64)
    lab.xl(f"create {Lab.image('pv-spin.cfg')}")  # created, not yet run
    v = lab.domain("pv-spin").vcpus[0]
    sched = lab.host.sched
    v.blocked = True
    lab.host.vcpu_wake(v, "test")
    assert v.priority == CSCHED_PRI_TS_BOOST
    assert isinstance(sched, CreditScheduler)


def test_time_never_runs_backwards_for_a_vcpu() -> None:
    lab = Lab(memory_mib=256, dom0_mem_mib=64, nr_cpus=2)
    lab.xl(f"create {Lab.image('pv-spin.cfg')}")
    lab.run()
    times = [r.time for r in lab.trace.select(dom=1)]
    assert times == sorted(times)
    woke = [int(line.split()[3]) for line in lab.console("pv-spin").splitlines()
            if "woke at" in line]
    assert woke == sorted(woke) and len(woke) == 5
