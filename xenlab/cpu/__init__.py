"""The CPU layer: x86 vCPUs executed by unicorn (the only unicorn importer).

Real Xen: xen/arch/x86/ (hardware does this part on a real host)
"""

from xenlab.cpu.x86 import CpuMode, ExitReason, RunResult, VcpuExits, X86Vcpu

__all__ = ["CpuMode", "ExitReason", "RunResult", "VcpuExits", "X86Vcpu"]
