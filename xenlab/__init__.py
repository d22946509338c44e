"""xenlab: an interactive teaching lab for Xen virtualization.

An emulated Xen host whose guests are real x86 machine code executed by the
unicorn CPU emulator. Layers, bottom up (each imports only those below it):

``xenlab.public``  Xen's ABI: hypercall numbers, structures, error codes
``xenlab.cpu``     the vCPU on unicorn (the only unicorn importer)
``xenlab.xen``     the hypervisor: domains, memory, scheduler, hypercalls
``xenlab.tools``   Dom0's toolstack: xl, the domain builder
``xenlab.cli``     the ``xenlab`` command

Real Xen: xen/ (the hypervisor) and tools/ (Dom0's toolstack)
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
