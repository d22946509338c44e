"""The network protocol (netif): a transmit ring and a receive ring of packet slots.

Real Xen: xen/include/public/io/netif.h
"""

from __future__ import annotations

import struct

__all__ = ["NETIF_RSP_OKAY", "TX_REQUEST", "TX_RESPONSE"]

NETIF_RSP_DROPPED = -2
NETIF_RSP_ERROR = -1
NETIF_RSP_OKAY = 0
NETIF_RSP_NULL = 1
NETTXF_csum_blank = 1 << 0
NETTXF_data_validated = 1 << 1
NETTXF_more_data = 1 << 2
NETTXF_extra_info = 1 << 3
NETRXF_data_validated = 1 << 0
NETRXF_more_data = 1 << 2
TX_REQUEST = struct.Struct("<IHHHH")     # gref, offset, flags, id, size (12 bytes)
TX_RESPONSE = struct.Struct("<Hh")       # id, status (4 bytes)
RX_REQUEST = struct.Struct("<HxxI")      # id, (pad), gref (8 bytes)
RX_RESPONSE = struct.Struct("<HHHh")     # id, offset, flags, status (8 bytes)
ETH_MIN = 14
ETH_MAX = 1514
ETH_MAX_TX = 65535  # the largest packet a tx chain may carry (IP's 64 KiB limit)
