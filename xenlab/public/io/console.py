"""The PV console ring: a page shared between a guest and xenconsoled in Dom0.

``struct xencons_interface { char in[1024]; char out[2048]; XENCONS_RING_IDX
in_cons, in_prod; XENCONS_RING_IDX out_cons, out_prod; }``; indexes grow
forever and are masked with ``MASK_XENCONS_IDX``.

Real Xen: xen/include/public/io/console.h
"""

from __future__ import annotations

__all__ = ["IN_OFF", "IN_SIZE", "OUT_OFF", "OUT_SIZE"]

IN_OFF, IN_SIZE = 0, 1024
OUT_OFF, OUT_SIZE = 1024, 2048
IN_CONS, IN_PROD, OUT_CONS, OUT_PROD = 3072, 3076, 3080, 3084
