"""Xen's public ABI, the one source of truth for every number xenlab uses.

Each module mirrors one header of ``xen/include/public``; the guest-side
include files in ``images/include`` are generated from these modules by
``python -m xenlab.public.gen_headers`` and a test checks them against
Xen's own headers (Debian's ``libxen-dev``) when those are installed.

Real Xen: xen/include/public/
"""
