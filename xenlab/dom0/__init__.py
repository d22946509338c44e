"""Dom0's kernel drivers and daemons: xenstored, xenconsoled, blkback, netback, the bridge.

In a real system these run in Dom0: the daemons in user space
(tools/xenstored, tools/console), the backends in its Linux kernel
(drivers/block/xen-blkback, drivers/net/xen-netback). In xenlab they are
Python objects driven by Dom0's event channel handlers.

Real Xen: tools/xenstored/, tools/console/daemon/, and Linux drivers/xen/,
drivers/block/xen-blkback/, drivers/net/xen-netback/
"""
