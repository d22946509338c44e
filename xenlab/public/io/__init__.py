"""Xen's I/O protocols between frontends and backends: shared rings, blkif, netif, console.

Real Xen: xen/include/public/io/
"""
