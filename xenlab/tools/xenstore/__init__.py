"""xenstored, Dom0's hierarchical key/value store, and its wire protocol.

Real Xen: tools/xenstored/, xen/include/public/io/xs_wire.h
"""

from xenlab.tools.xenstore.xenstored import XenStore, XenStoreError

__all__ = ["XenStore", "XenStoreError"]
