"""The hypervisor: domains, memory, the scheduler, hypercalls and traps.

Runs and is tested without Jupyter. Imports only ``xenlab.public`` and ``xenlab.cpu``.

Real Xen: xen/common/, xen/arch/x86/
"""
