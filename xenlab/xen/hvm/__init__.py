"""HVM guests: what Xen itself emulates for an unmodified guest, and the VM exits.

Real Xen: xen/arch/x86/hvm/
"""
