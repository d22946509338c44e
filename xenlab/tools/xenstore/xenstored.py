"""xenstored: Dom0's tree of small strings that every domain and backend talks through.

The store is a tree of nodes named by ``/``-separated paths. Each node holds
a value (bytes, possibly empty), an ordered list of children and a
permission list like ``["n1", "r0"]``: the first entry names the *owner*
(who may do anything) and the access everyone else gets; later entries give
access to single domains. Letters: ``n`` none, ``r`` read, ``w`` write,
``b`` both. Dom0 is privileged and ignores permissions. A node created by an
unprivileged domain inherits its parent's permissions but is owned by its
creator; a write creates missing parents the same way.

Each domain has one connection (``introduce_domain``/``release_domain``);
requests arrive as ``xsd_sockmsg`` messages through ``handle_message`` or the
domain's shared ring page (``process_ring``). Dom0's toolstack and backends
use the in-process API (``read``, ``write``, ``watch`` with Python callbacks,
``ls``...), which builds the same messages and runs the same ``do_*``
functions, so everything shows up in the trace.

Watches fire once when registered, then whenever a node at or below the
watched path is written, created, has its permissions set or is removed (a
removed subtree also fires watches placed exactly on its inner nodes), but
only for watchers allowed to read the node. Transactions work on a snapshot
of the tree; at commit, if any node the transaction read or wrote changed
outside it, the commit fails with ``EAGAIN`` and the caller retries. Their
watch events fire at commit.

Quotas apply to unprivileged domains only, with xenstored's error names:
nodes owned (``ENOSPC``), open transactions (``ENOSPC``), node size
(``ENOSPC``), watches (``E2BIG``). A message longer than
``XENSTORE_PAYLOAD_MAX`` gets ``E2BIG``.

Differences from the C daemon: no database file, no live update, no
per-domain memory accounting, and ``XS_CONTROL`` knows only a few commands.

Real Xen: tools/xenstored/ (core.c, domain.c, watch.c, transaction.c),
docs/misc/xenstore.txt, docs/misc/xenstore-paths.pandoc
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from xenlab.errors import DomainError, XenlabError
from xenlab.tools.xenstore.xs_wire import (
    ERROR_OFFSET,
    MASK_XENSTORE_IDX,
    REQ_CONS_OFFSET,
    REQ_OFFSET,
    REQ_PROD_OFFSET,
    RSP_CONS_OFFSET,
    RSP_OFFSET,
    RSP_PROD_OFFSET,
    XENSTORE_ABS_PATH_MAX,
    XENSTORE_ERROR_PROTO,
    XENSTORE_ERROR_RINGIDX,
    XENSTORE_PAYLOAD_MAX,
    XENSTORE_REL_PATH_MAX,
    XENSTORE_RING_SIZE,
    XSD_ERROR,
    XSD_SOCKMSG_SIZE,
    XsdSockmsgType,
    pack_msg,
    unpack_header,
)
from xenlab.xen.trace import Kind, Trace

__all__ = [
    "Connection",
    "Node",
    "Transaction",
    "Watch",
    "XenStore",
    "XenStoreError",
    "do_control",
    "do_directory",
    "do_directory_part",
    "do_get_domain_path",
    "do_get_perms",
    "do_introduce",
    "do_is_domain_introduced",
    "do_mkdir",
    "do_read",
    "do_release",
    "do_reset_watches",
    "do_resume",
    "do_rm",
    "do_set_perms",
    "do_set_target",
    "do_transaction_end",
    "do_transaction_start",
    "do_unwatch",
    "do_watch",
    "do_write",
    "wire_funcs",
]

T = XsdSockmsgType
Perm = tuple[str, int]                      # ("r", 1) is "r1"
WatchCallback = Callable[[str, str], None]

# perm_for_conn() result bits (XS_PERM_* in xenstore_lib.h)
XS_PERM_NONE = 0
XS_PERM_READ = 1
XS_PERM_WRITE = 2
XS_PERM_OWNER = 8
_PERM_BITS = {"n": XS_PERM_NONE, "r": XS_PERM_READ, "w": XS_PERM_WRITE,
              "b": XS_PERM_READ | XS_PERM_WRITE}

_VALID_CHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyz"
                         b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-/_@")
SPECIAL_PATHS = ("@introduceDomain", "@releaseDomain")
DOMID_MAX = 0x7FEF          # DOMID_FIRST_RESERVED - 1
_TRACE_VALUE_MAX = 64
_TRACE_PATH_MAX = 256   # a trace record's size is bounded whatever a guest sends:
_TRACE_LIST_MAX = 8     # paths, tokens and string lists are cut (the trace is a ring of
                        # records; each record must stay small too)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit})"


class XenStoreError(XenlabError):
    """A Dom0 API call xenstored refused; ``error`` is the ``xsd_errors`` name."""

    def __init__(self, error: str, message: str = "") -> None:
        super().__init__(f"xenstore: {error}" + (f": {message}" if message else ""))
        self.error = error


class _XsdErr(Exception):
    """Internal: a do_* function failed; becomes an XS_ERROR reply."""

    def __init__(self, name: str) -> None:
        assert name in XSD_ERROR, name
        super().__init__(name)
        self.name = name


@dataclasses.dataclass(frozen=True)
class Node:
    """One node; immutable, so a transaction's snapshot is a shallow dict copy."""

    value: bytes
    perms: tuple[Perm, ...]
    children: tuple[str, ...]
    gen: int

    def owner(self) -> int:
        return self.perms[0][1]


@dataclasses.dataclass
class Watch:
    domid: int
    path: str                                # canonical: absolute or @special
    token: bytes
    relative_prefix: str = ""                # "/local/domain/N/" for a relative watch
    callback: WatchCallback | None = None    # Dom0's in-process watches


@dataclasses.dataclass
class Transaction:
    """A snapshot of the tree plus what the transaction touched."""

    id: int
    nodes: dict[str, Node]                   # the transaction's view
    base: dict[str, Node]                    # the tree when it started
    accessed: set[str] = dataclasses.field(default_factory=set)
    written: set[str] = dataclasses.field(default_factory=set)
    events: list[tuple[str, bool, tuple[tuple[Perm, ...], ...]]] = dataclasses.field(
        default_factory=list)


@dataclasses.dataclass
class Connection:
    """struct connection: one domain's session with xenstored."""

    domid: int
    mfn: int = 0
    port: int = 0
    target: int | None = None
    watches: list[Watch] = dataclasses.field(default_factory=list)
    transactions: dict[int, Transaction] = dataclasses.field(default_factory=dict)
    next_transaction_id: int = 1
    events: collections.deque[bytes] = dataclasses.field(default_factory=collections.deque)
    inbuf: bytearray = dataclasses.field(default_factory=bytearray)   # partial request
    out: bytearray = dataclasses.field(default_factory=bytearray)     # not yet in rsp[]
    broken: str | None = None                # why the ring was given up, or None

    @property
    def privileged(self) -> bool:
        return self.domid == 0


@dataclasses.dataclass
class Request:
    """struct buffered_data for one incoming message."""

    type: int
    req_id: int
    tx_id: int
    payload: bytes
    tx: Transaction | None = None
    callback: WatchCallback | None = None


# -- payload helpers -------------------------------------------------------------
def _strings(payload: bytes) -> list[bytes]:
    """get_strings(): the NUL-terminated strings (an unterminated tail is dropped)."""
    return payload.split(b"\0")[:-1]


def onearg(req: Request) -> bytes:
    """The single NUL-terminated argument, or EINVAL."""
    p = req.payload
    if not p or p.find(b"\0") != len(p) - 1:
        raise _XsdErr("EINVAL")
    return p[:-1]


def _domid_arg(arg: bytes) -> int:
    if not arg.isdigit() or len(arg) > 5 or int(arg) > DOMID_MAX:
        raise _XsdErr("EINVAL")
    return int(arg)


def _parse_perm(s: bytes) -> Perm:
    """xs_strings_to_perms() for one entry."""
    if len(s) < 2 or s[:1] not in (b"n", b"r", b"w", b"b") or not s[1:].isdigit():
        raise _XsdErr("EINVAL")
    domid = int(s[1:])
    if domid > 0xFFFF:
        raise _XsdErr("EINVAL")
    return s[:1].decode(), domid


def _perm_str(p: Perm) -> str:
    return f"{p[0]}{p[1]}"


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[1]


def _join(parent: str, name: str) -> str:
    return ("" if parent == "/" else parent) + "/" + name


def _is_child(child: str, parent: str) -> bool:
    """is_child(): ``child`` is ``parent`` or below it."""
    if parent == "/":
        return child.startswith("/")
    return child == parent or child.startswith(parent + "/")


def _sanitise_value(value: bytes) -> str:
    """xenstore-ls's sanitise_value(): C escapes, octal for the unprintable."""
    out = []
    escapes = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
               0x5C: "\\\\"}
    for b in value:
        if b in escapes:
            out.append(escapes[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)


# -- the do_* functions (one per message type) -----------------------------------
def do_read(xs: XenStore, conn: Connection, req: Request) -> bytes:
    path = xs.canonicalize(conn, onearg(req))
    return xs.get_node(conn, req.tx, path, XS_PERM_READ).value


def do_write(xs: XenStore, conn: Connection, req: Request) -> bytes:
    p = req.payload
    nul = p.find(b"\0")
    if nul < 0:
        raise _XsdErr("EINVAL")
    path = xs.canonicalize(conn, p[:nul])
    value = p[nul + 1:]
    xs.write_node(conn, req.tx, path, value)
    return b"OK\0"


def do_mkdir(xs: XenStore, conn: Connection, req: Request) -> bytes:
    path = xs.canonicalize(conn, onearg(req))
    try:
        xs.get_node(conn, req.tx, path, XS_PERM_WRITE)
    except _XsdErr as e:
        if e.name != "ENOENT":
            raise
        xs.create_node(conn, req.tx, path, b"")
        xs.fire(req.tx, path, False, (xs.lookup(req.tx, path).perms,))
    return b"OK\0"


def do_rm(xs: XenStore, conn: Connection, req: Request) -> bytes:
    path = xs.canonicalize(conn, onearg(req))
    if path == "/":
        raise _XsdErr("EINVAL")
    try:
        xs.get_node(conn, req.tx, path, XS_PERM_WRITE)
    except _XsdErr as e:
        # "Didn't exist already?  Fine, if parent exists."
        if e.name == "ENOENT" and xs.lookup(req.tx, _parent(path)) is not None:
            return b"OK\0"
        raise
    xs.rm_node(req.tx, path)
    return b"OK\0"


def do_directory(xs: XenStore, conn: Connection, req: Request) -> bytes:
    path = xs.canonicalize(conn, onearg(req))
    node = xs.get_node(conn, req.tx, path, XS_PERM_READ)
    return b"".join(c.encode() + b"\0" for c in node.children)


def do_directory_part(xs: XenStore, conn: Connection, req: Request) -> bytes:
    """``path\\0offset\\0`` -> ``generation\\0`` then names from byte ``offset``."""
    args = _strings(req.payload)
    if len(args) != 2 or len(req.payload) != len(args[0]) + len(args[1]) + 2:
        raise _XsdErr("EINVAL")
    path = xs.canonicalize(conn, args[0])
    if not args[1].isdigit():
        raise _XsdErr("EINVAL")
    offset = int(args[1])
    node = xs.get_node(conn, req.tx, path, XS_PERM_READ)
    names = b"".join(c.encode() + b"\0" for c in node.children)
    if offset > len(names):
        raise _XsdErr("EINVAL")
    gen = b"%d\0" % node.gen
    room = XENSTORE_PAYLOAD_MAX - len(gen) - 1
    chunk, pos = b"", offset
    while pos < len(names):
        end = names.index(b"\0", pos) + 1
        if len(chunk) + end - pos > room:
            return gen + chunk
        chunk += names[pos:end]
        pos = end
    return gen + chunk + b"\0"          # an empty string marks the end


def do_get_perms(xs: XenStore, conn: Connection, req: Request) -> bytes:
    path = xs.canonicalize(conn, onearg(req), allow_special=True)
    node = xs.get_node(conn, req.tx, path, XS_PERM_READ)
    return b"".join(_perm_str(p).encode() + b"\0" for p in node.perms)


def do_set_perms(xs: XenStore, conn: Connection, req: Request) -> bytes:
    args = _strings(req.payload)
    if len(args) < 2:
        raise _XsdErr("EINVAL")
    path = xs.canonicalize(conn, args[0], allow_special=True)
    perms = tuple(_parse_perm(s) for s in args[1:])
    node = xs.get_node(conn, req.tx, path, XS_PERM_WRITE | XS_PERM_OWNER)
    # "Unprivileged domains may not change the owner."
    if not conn.privileged and perms[0][1] != node.owner():
        raise _XsdErr("EPERM")
    if path.startswith("@"):
        xs.special[path] = perms
        return b"OK\0"
    if node.owner() != perms[0][1]:
        xs.check_entry_quota(req.tx, perms[0][1], 1)
    old = node.perms
    xs.put(req.tx, path, dataclasses.replace(node, perms=perms, gen=xs.next_gen()))
    xs.fire(req.tx, path, False, (old, perms))
    return b"OK\0"


def do_watch(xs: XenStore, conn: Connection, req: Request) -> bytes:
    args = _strings(req.payload)
    if len(args) != 2 or len(req.payload) != len(args[0]) + len(args[1]) + 2:
        raise _XsdErr("EINVAL")
    path = xs.canonicalize(conn, args[0], allow_special=True)
    token = args[1]
    if any(w.path == path and w.token == token for w in conn.watches):
        raise _XsdErr("EEXIST")
    if not conn.privileged and len(conn.watches) >= xs.quota_watches_per_domain:
        raise _XsdErr("E2BIG")
    relative = not args[0].startswith((b"/", b"@"))
    watch = Watch(conn.domid, path, token, xs.home(conn.domid) + "/" if relative else "",
                  req.callback)
    conn.watches.append(watch)
    # "We fire once up front: simplifies clients and restart."
    xs.add_event(conn, watch, path)
    return b"OK\0"


def do_unwatch(xs: XenStore, conn: Connection, req: Request) -> bytes:
    args = _strings(req.payload)
    if len(args) != 2 or len(req.payload) != len(args[0]) + len(args[1]) + 2:
        raise _XsdErr("EINVAL")
    path = xs.canonicalize(conn, args[0], allow_special=True)
    for i, w in enumerate(conn.watches):
        if w.path == path and w.token == args[1]:
            del conn.watches[i]
            return b"OK\0"
    raise _XsdErr("ENOENT")


def do_transaction_start(xs: XenStore, conn: Connection, req: Request) -> bytes:
    if req.tx is not None or req.payload not in (b"", b"\0"):
        raise _XsdErr("EBUSY" if req.tx is not None else "EINVAL")
    if not conn.privileged and len(conn.transactions) >= xs.quota_transactions_per_domain:
        raise _XsdErr("ENOSPC")
    tid = conn.next_transaction_id
    while tid == 0 or tid in conn.transactions:
        tid = (tid + 1) & 0xFFFFFFFF
    conn.next_transaction_id = (tid + 1) & 0xFFFFFFFF
    conn.transactions[tid] = Transaction(tid, dict(xs.nodes), dict(xs.nodes))
    return b"%d\0" % tid


def do_transaction_end(xs: XenStore, conn: Connection, req: Request) -> bytes:
    arg = onearg(req)
    if req.tx is None:
        raise _XsdErr("ENOENT")
    if arg not in (b"T", b"F"):
        raise _XsdErr("EINVAL")
    tx = conn.transactions.pop(req.tx.id)
    if arg == b"T":
        xs.commit(tx)
    return b"OK\0"


def do_get_domain_path(xs: XenStore, conn: Connection, req: Request) -> bytes:
    return xs.home(_domid_arg(onearg(req))).encode() + b"\0"


def do_introduce(xs: XenStore, conn: Connection, req: Request) -> bytes:
    args = _strings(req.payload)
    if len(args) < 3 or not args[1].isdigit() or not args[2].isdigit():
        raise _XsdErr("EINVAL")
    domid = _domid_arg(args[0])
    if domid == 0:
        raise _XsdErr("EINVAL")
    xs.introduce_domain(domid, mfn=int(args[1]), port=int(args[2]))
    return b"OK\0"


def do_release(xs: XenStore, conn: Connection, req: Request) -> bytes:
    domid = _domid_arg(onearg(req))
    if domid == 0:
        raise _XsdErr("EINVAL")
    if domid not in xs.connections:
        raise _XsdErr("ENOENT")
    xs.release_domain(domid)
    return b"OK\0"


def do_resume(xs: XenStore, conn: Connection, req: Request) -> bytes:
    domid = _domid_arg(onearg(req))
    if domid == 0:
        raise _XsdErr("EINVAL")
    if domid not in xs.connections:
        raise _XsdErr("ENOENT")
    xs.connections[domid].broken = None
    return b"OK\0"


def do_set_target(xs: XenStore, conn: Connection, req: Request) -> bytes:
    """``domid\\0target\\0``: ``domid`` (a device-model stub) may act for ``target``."""
    args = _strings(req.payload)
    if len(args) != 2:
        raise _XsdErr("EINVAL")
    domid, target = _domid_arg(args[0]), _domid_arg(args[1])
    if domid not in xs.connections or target not in xs.connections or domid == 0:
        raise _XsdErr("ENOENT")
    xs.connections[domid].target = target
    return b"OK\0"


def do_is_domain_introduced(xs: XenStore, conn: Connection, req: Request) -> bytes:
    domid = _domid_arg(onearg(req))
    return b"T\0" if domid in xs.connections else b"F\0"


def do_reset_watches(xs: XenStore, conn: Connection, req: Request) -> bytes:
    conn.watches.clear()
    conn.transactions.clear()
    return b"OK\0"


def do_control(xs: XenStore, conn: Connection, req: Request) -> bytes:
    """``XS_CONTROL``: ``check``, ``print <text>``, ``quota``, ``help``."""
    args = _strings(req.payload)
    if not args:
        raise _XsdErr("EINVAL")
    cmd = _CONTROL_CMDS.get(args[0])
    if cmd is None:
        raise _XsdErr("EINVAL")
    return cmd(xs, args[1:])


def _control_check(xs: XenStore, args: list[bytes]) -> bytes:
    return b"OK\0" if not xs.check() else b"ERROR\0"


def _control_print(xs: XenStore, args: list[bytes]) -> bytes:
    xs.log.extend(a.decode("utf-8", "replace") for a in args)
    return b"OK\0"


def _control_quota(xs: XenStore, args: list[bytes]) -> bytes:
    text = (f"nodes {xs.quota_entries_per_domain}\nwatches {xs.quota_watches_per_domain}\n"
            f"transactions {xs.quota_transactions_per_domain}\n"
            f"node-size {xs.quota_max_nodesize}\n")
    return text.encode() + b"\0"


def _control_help(xs: XenStore, args: list[bytes]) -> bytes:
    return b"".join(name + b"\n" for name in _CONTROL_CMDS) + b"\0"


_CONTROL_CMDS: dict[bytes, Callable[[XenStore, list[bytes]], bytes]] = {
    b"check": _control_check,
    b"print": _control_print,
    b"quota": _control_quota,
    b"help": _control_help,
}

XS_FLAG_NOTID = 1   # not allowed inside a transaction
XS_FLAG_PRIV = 2    # Dom0 only

#: wire_funcs[] in core.c: message type -> (handler, flags). XS_WATCH_EVENT and
#: XS_ERROR only ever go to a guest, so a request of those types is EINVAL.
wire_funcs: dict[XsdSockmsgType, tuple[Callable[[XenStore, Connection, Request], bytes], int]] = {
    T.XS_CONTROL: (do_control, XS_FLAG_PRIV),
    T.XS_DIRECTORY: (do_directory, 0),
    T.XS_READ: (do_read, 0),
    T.XS_GET_PERMS: (do_get_perms, 0),
    T.XS_WATCH: (do_watch, XS_FLAG_NOTID),
    T.XS_UNWATCH: (do_unwatch, XS_FLAG_NOTID),
    T.XS_TRANSACTION_START: (do_transaction_start, 0),
    T.XS_TRANSACTION_END: (do_transaction_end, 0),
    T.XS_INTRODUCE: (do_introduce, XS_FLAG_PRIV | XS_FLAG_NOTID),
    T.XS_RELEASE: (do_release, XS_FLAG_PRIV | XS_FLAG_NOTID),
    T.XS_GET_DOMAIN_PATH: (do_get_domain_path, XS_FLAG_NOTID),
    T.XS_WRITE: (do_write, 0),
    T.XS_MKDIR: (do_mkdir, 0),
    T.XS_RM: (do_rm, 0),
    T.XS_SET_PERMS: (do_set_perms, 0),
    T.XS_IS_DOMAIN_INTRODUCED: (do_is_domain_introduced, XS_FLAG_PRIV | XS_FLAG_NOTID),
    T.XS_RESUME: (do_resume, XS_FLAG_PRIV | XS_FLAG_NOTID),
    T.XS_SET_TARGET: (do_set_target, XS_FLAG_PRIV | XS_FLAG_NOTID),
    T.XS_RESET_WATCHES: (do_reset_watches, XS_FLAG_NOTID),
    T.XS_DIRECTORY_PART: (do_directory_part, 0),
}


def _trace_args(mtype: int, payload: bytes, tx_id: int) -> dict[str, Any]:
    """What a trace record shows of a request: its path, value or token, and tx."""
    strs = [s.decode("utf-8", "replace") for s in payload.split(b"\0", _TRACE_LIST_MAX + 1)]
    args: dict[str, Any] = {}
    if mtype in _PATH_TYPES and strs:
        args["path"] = _cut(strs[0], _TRACE_PATH_MAX)
        if mtype == T.XS_WRITE:
            nul = payload.find(b"\0")
            value = payload[nul + 1:] if nul >= 0 else b""
            args["value"] = value.decode("utf-8", "replace")[:_TRACE_VALUE_MAX]
        elif mtype in (T.XS_WATCH, T.XS_UNWATCH) and len(strs) > 1:
            args["token"] = _cut(strs[1], _TRACE_VALUE_MAX)
        elif mtype == T.XS_SET_PERMS:
            args["perms"] = [_cut(s, _TRACE_VALUE_MAX) for s in strs[1:_TRACE_LIST_MAX + 1] if s]
    elif payload:
        args["args"] = [s[:_TRACE_VALUE_MAX] for s in strs[:_TRACE_LIST_MAX] if s]
    args["tx"] = tx_id
    return args


_PATH_TYPES = frozenset({T.XS_DIRECTORY, T.XS_READ, T.XS_GET_PERMS, T.XS_WATCH, T.XS_UNWATCH,
                         T.XS_WRITE, T.XS_MKDIR, T.XS_RM, T.XS_SET_PERMS,
                         T.XS_DIRECTORY_PART})


class XenStore:
    """The daemon: the tree, the connections, and the entry points."""

    def __init__(self, trace: Trace | None = None, clock: Callable[[], int] = lambda: 0,
                 quota_entries_per_domain: int = 1000, quota_watches_per_domain: int = 128,
                 quota_transactions_per_domain: int = 10,
                 quota_max_nodesize: int = 2048) -> None:
        self.trace = trace
        self.clock = clock
        self.quota_entries_per_domain = quota_entries_per_domain
        self.quota_watches_per_domain = quota_watches_per_domain
        self.quota_transactions_per_domain = quota_transactions_per_domain
        self.quota_max_nodesize = quota_max_nodesize
        self._gen = 0
        self.nodes: dict[str, Node] = {}
        self.special: dict[str, tuple[Perm, ...]] = {p: (("n", 0),) for p in SPECIAL_PATHS}
        self.connections: dict[int, Connection] = {0: Connection(0)}
        self.log: list[str] = []
        self._callbacks: collections.deque[tuple[WatchCallback, str, str]] = (
            collections.deque())
        self._delivering = False
        self._next_req_id = 1
        self.nodes["/"] = Node(b"", (("n", 0),), (), self.next_gen())
        dom0 = self.connections[0]
        # xenstored's own nodes, then what xen-init-dom0 writes at boot.
        for path, value in (("/local/domain/0/name", b"Domain-0"),
                            ("/local/domain/0/domid", b"0"), ("/tool/xenstored", b"")):
            self.create_node(dom0, None, path, value)

    # -- tree primitives (tx is None for the live tree) ---------------------------
    def next_gen(self) -> int:
        self._gen += 1
        return self._gen

    def lookup(self, tx: Transaction | None, path: str) -> Node | None:
        if tx is None:
            return self.nodes.get(path)
        tx.accessed.add(path)
        return tx.nodes.get(path)

    def put(self, tx: Transaction | None, path: str, node: Node) -> None:
        if tx is None:
            self.nodes[path] = node
        else:
            tx.accessed.add(path)
            tx.written.add(path)
            tx.nodes[path] = node

    def delete(self, tx: Transaction | None, path: str) -> None:
        if tx is None:
            del self.nodes[path]
        else:
            tx.accessed.add(path)
            tx.written.add(path)
            del tx.nodes[path]

    def home(self, domid: int) -> str:
        return f"/local/domain/{domid}"

    def canonicalize(self, conn: Connection, raw: bytes, allow_special: bool = False) -> str:
        """canonicalize() + is_valid_nodename(): an absolute path, or EINVAL."""
        if raw.startswith(b"@"):
            path = raw.decode("ascii", "replace")
            if allow_special and path in SPECIAL_PATHS:
                return path
            raise _XsdErr("EINVAL")
        if not raw.startswith(b"/"):
            if len(raw) > XENSTORE_REL_PATH_MAX:
                raise _XsdErr("E2BIG")
            raw = self.home(conn.domid).encode() + b"/" + raw
        if (len(raw) > XENSTORE_ABS_PATH_MAX or (raw.endswith(b"/") and raw != b"/")
                or b"//" in raw or not _VALID_CHARS.issuperset(raw)):
            raise _XsdErr("EINVAL")
        return raw.decode("ascii")

    def perm_for_conn(self, conn: Connection, perms: tuple[Perm, ...]) -> int:
        """perm_for_conn(): XS_PERM_* bits this connection gets on a node."""
        if conn.privileged:
            return XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER
        ids = (conn.domid,) if conn.target is None else (conn.domid, conn.target)
        if perms[0][1] in ids:
            return XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER
        for letter, domid in perms[1:]:
            if domid in ids:
                return _PERM_BITS[letter]
        return _PERM_BITS[perms[0][0]]

    def errno_from_parents(self, conn: Connection, tx: Transaction | None, path: str) -> str:
        """A missing node is ENOENT, unless its nearest ancestor is unreadable (EACCES)."""
        while path != "/":
            path = _parent(path)
            node = self.lookup(tx, path)
            if node is not None:
                readable = self.perm_for_conn(conn, node.perms) & XS_PERM_READ
                return "ENOENT" if readable else "EACCES"
        return "ENOENT"

    def get_node(self, conn: Connection, tx: Transaction | None, path: str, perm: int) -> Node:
        """get_node(): the node if ``conn`` has ``perm`` on it; ENOENT / EACCES."""
        if path.startswith("@"):
            node = Node(b"", self.special[path], (), 0)
        else:
            found = self.lookup(tx, path)
            if found is None:
                raise _XsdErr(self.errno_from_parents(conn, tx, path))
            node = found
        if (self.perm_for_conn(conn, node.perms) & perm) != perm:
            raise _XsdErr("EACCES")
        return node

    def count_entries(self, tx: Transaction | None, domid: int) -> int:
        nodes = self.nodes if tx is None else tx.nodes
        return sum(1 for n in nodes.values() if n.perms[0][1] == domid)

    def check_entry_quota(self, tx: Transaction | None, domid: int, new: int) -> None:
        if domid != 0 and self.count_entries(tx, domid) + new > self.quota_entries_per_domain:
            raise _XsdErr("ENOSPC")

    def create_node(self, conn: Connection, tx: Transaction | None, path: str,
                    value: bytes) -> None:
        """create_node(): the node and any missing parents, inheriting permissions."""
        missing = [path]
        parent_path = _parent(path)
        while (parent := self.lookup(tx, parent_path)) is None:
            missing.append(parent_path)
            parent_path = _parent(parent_path)
        if not self.perm_for_conn(conn, parent.perms) & XS_PERM_WRITE:
            raise _XsdErr("EACCES")
        perms = parent.perms
        if not conn.privileged:          # "Domains own what they create."
            perms = ((perms[0][0], conn.domid), *perms[1:])
        self.check_entry_quota(tx, perms[0][1], len(missing))
        self.put(tx, parent_path, dataclasses.replace(
            parent, children=(*parent.children, _basename(missing[-1])), gen=self.next_gen()))
        for p in reversed(missing):
            child = () if p == path else (_basename(missing[missing.index(p) - 1]),)
            self.put(tx, p, Node(value if p == path else b"", perms, child, self.next_gen()))

    def write_node(self, conn: Connection, tx: Transaction | None, path: str,
                   value: bytes) -> None:
        try:
            node = self.get_node(conn, tx, path, XS_PERM_WRITE)
        except _XsdErr as e:
            if e.name != "ENOENT":
                raise
            self.check_node_size(conn, value)
            self.create_node(conn, tx, path, value)
        else:
            self.check_node_size(conn, value)
            self.put(tx, path, dataclasses.replace(node, value=value, gen=self.next_gen()))
        self.fire(tx, path, False, (self.lookup_existing(tx, path).perms,))

    def check_node_size(self, conn: Connection, value: bytes) -> None:
        if not conn.privileged and len(value) > self.quota_max_nodesize:
            raise _XsdErr("ENOSPC")

    def lookup_existing(self, tx: Transaction | None, path: str) -> Node:
        node = self.lookup(tx, path)
        assert node is not None, path
        return node

    def rm_node(self, tx: Transaction | None, path: str) -> None:
        """_rm(): the subtree, firing watches while the permissions are still known."""
        order: list[tuple[str, Node]] = []
        stack = [path]
        while stack:
            p = stack.pop()
            node = self.lookup_existing(tx, p)
            order.append((p, node))
            stack.extend(_join(p, c) for c in reversed(node.children))
        for p, node in order:
            self.delete(tx, p)
            self.fire(tx, p, p != path, (node.perms,))
        parent = self.lookup_existing(tx, _parent(path))
        name = _basename(path)
        self.put(tx, _parent(path), dataclasses.replace(
            parent, children=tuple(c for c in parent.children if c != name),
            gen=self.next_gen()))

    def commit(self, tx: Transaction) -> None:
        """finalize_transaction(): EAGAIN if anything it touched changed meanwhile."""
        for p in tx.accessed:
            if self.nodes.get(p) is not tx.base.get(p):
                raise _XsdErr("EAGAIN")
        for p in tx.written:
            node = tx.nodes.get(p)
            if node is None:
                self.nodes.pop(p, None)
            else:
                self.nodes[p] = dataclasses.replace(node, gen=self.next_gen())
        for path, exact, perms in tx.events:
            self.fire(None, path, exact, perms)

    # -- watches ------------------------------------------------------------------
    def fire(self, tx: Transaction | None, path: str, exact: bool,
             perms: tuple[tuple[Perm, ...], ...]) -> None:
        """fire_watches(): exact -> watches on ``path``; else on ``path`` or above it."""
        if tx is not None:
            tx.events.append((path, exact, perms))
            return
        for conn in list(self.connections.values()):
            for watch in list(conn.watches):
                hit = watch.path == path if exact else _is_child(path, watch.path)
                if hit and any(self.perm_for_conn(conn, p) & XS_PERM_READ for p in perms):
                    self.add_event(conn, watch, path)

    def add_event(self, conn: Connection, watch: Watch, path: str) -> None:
        name = path
        if watch.relative_prefix and name.startswith(watch.relative_prefix):
            name = name[len(watch.relative_prefix):]
        elif watch.relative_prefix and name == watch.relative_prefix[:-1]:
            name = ""
        token = watch.token.decode("utf-8", "surrogateescape")
        if self.trace is not None:
            self.trace.emit(self.clock(), conn.domid, 0, Kind.XENSTORE, "XS_WATCH_EVENT",
                            {"path": name, "token": token})
        if watch.callback is not None:
            self._callbacks.append((watch.callback, name, token))
        else:
            conn.events.append(pack_msg(T.XS_WATCH_EVENT, 0, 0,
                                        name.encode() + b"\0" + watch.token + b"\0"))

    def _deliver_callbacks(self) -> None:
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._callbacks:
                callback, path, token = self._callbacks.popleft()
                callback(path, token)
        finally:
            self._delivering = False

    # -- connections --------------------------------------------------------------
    def introduce_domain(self, domid: int, mfn: int = 0, port: int = 0) -> None:
        """XS_INTRODUCE: a connection for ``domid`` and, as libxl would, its home node.

        ``/local/domain/<domid>`` is created owned by the domain if missing;
        @introduceDomain watches fire.
        """
        if domid == 0 or not 0 < domid <= DOMID_MAX:
            raise DomainError(f"xenstore: cannot introduce domain {domid}")
        conn = self.connections.get(domid)
        if conn is None:
            self.connections[domid] = Connection(domid, mfn=mfn, port=port)
        else:                            # re-introduce: a fresh ring
            conn.mfn, conn.port, conn.broken = mfn, port, None
            conn.inbuf.clear()
            conn.out.clear()
        home = self.home(domid)
        if home not in self.nodes:
            dom0 = self.connections[0]
            self.create_node(dom0, None, home, b"")
            node = self.nodes[home]
            self.nodes[home] = dataclasses.replace(node, perms=(("n", domid),))
        if conn is None:
            self.fire(None, "@introduceDomain", True, (self.special["@introduceDomain"],))
        self._deliver_callbacks()

    def release_domain(self, domid: int) -> None:
        """XS_RELEASE: drop the connection, its watches and transactions; fire @releaseDomain.

        The domain's nodes stay; the toolstack removes them.
        """
        if domid == 0:
            raise DomainError("xenstore: cannot release domain 0")
        if self.connections.pop(domid, None) is None:
            raise DomainError(f"xenstore: domain {domid} is not introduced")
        self.fire(None, "@releaseDomain", True, (self.special["@releaseDomain"],))
        self._deliver_callbacks()

    def is_introduced(self, domid: int) -> bool:
        return domid in self.connections

    def connection(self, domid: int) -> Connection:
        conn = self.connections.get(domid)
        if conn is None:
            raise DomainError(f"xenstore: domain {domid} is not introduced")
        return conn

    # -- the request path ---------------------------------------------------------
    def process_message(self, conn: Connection, req: Request) -> bytes:
        """process_message(): run one request, return the reply (header included)."""
        try:
            mtype = XsdSockmsgType(req.type)
        except ValueError:
            mtype = None
        name = mtype.name if mtype is not None else "XS_INVALID"
        entry = wire_funcs.get(mtype) if mtype is not None else None
        try:
            if entry is None:
                raise _XsdErr("EINVAL")
            func, flags = entry
            if flags & XS_FLAG_NOTID and req.tx_id:
                raise _XsdErr("EINVAL")
            if flags & XS_FLAG_PRIV and not conn.privileged:
                raise _XsdErr("EACCES")
            if req.tx_id and not flags & XS_FLAG_NOTID:
                req.tx = conn.transactions.get(req.tx_id)
                if req.tx is None:
                    raise _XsdErr("ENOENT")
            out = func(self, conn, req)
            reply = pack_msg(req.type, req.req_id, req.tx_id, out)
            ret = "OK"
        except _XsdErr as e:
            if e.name == "EAGAIN" and req.tx is not None:
                conn.transactions.pop(req.tx.id, None)
            reply = pack_msg(T.XS_ERROR, req.req_id, req.tx_id, e.name.encode() + b"\0")
            ret = e.name
        if self.trace is not None:
            args = _trace_args(mtype, req.payload, req.tx_id) if mtype is not None else {
                "type": req.type, "tx": req.tx_id}
            self.trace.emit(self.clock(), conn.domid, 0, Kind.XENSTORE, name, args, ret)
        return reply

    def handle_message(self, domid: int, raw: bytes) -> list[bytes]:
        """One complete request from ``domid`` -> its reply messages.

        Watch events the request causes are queued; see ``pending_events``.
        """
        conn = self.connection(domid)
        raw = bytes(raw)
        if len(raw) < XSD_SOCKMSG_SIZE:
            return [pack_msg(T.XS_ERROR, 0, 0, b"EINVAL\0")]
        mtype, req_id, tx_id, length = unpack_header(raw)
        if length > XENSTORE_PAYLOAD_MAX:
            return [pack_msg(T.XS_ERROR, req_id, tx_id, b"E2BIG\0")]
        if length != len(raw) - XSD_SOCKMSG_SIZE:
            return [pack_msg(T.XS_ERROR, req_id, tx_id, b"EINVAL\0")]
        reply = self.process_message(conn, Request(mtype, req_id, tx_id,
                                                   raw[XSD_SOCKMSG_SIZE:]))
        self._deliver_callbacks()
        return [reply]

    def pending_events(self, domid: int) -> list[bytes]:
        """The XS_WATCH_EVENT messages queued for ``domid`` (and forget them)."""
        conn = self.connection(domid)
        events = list(conn.events)
        conn.events.clear()
        return events

    # -- the ring page ------------------------------------------------------------
    def process_ring(self, domid: int, page: memoryview) -> tuple[bool, bool]:
        """Serve ``domid``'s xenstore page: requests from req[], replies and events to rsp[].

        Returns ``(consumed_any, produced_any)``: the caller notifies the guest's
        event channel if either is true. A partial request stays buffered until
        the rest arrives; replies that do not fit stay queued. A ring whose
        indices are impossible, or a message longer than XENSTORE_PAYLOAD_MAX,
        breaks the connection: ``Connection.broken`` says why and the page's
        ``error`` field is set; later calls do nothing until XS_RESUME or a new
        introduce.
        """
        conn = self.connection(domid)
        if conn.broken is not None:
            return False, False
        mv = page.cast("B") if page.format != "B" else page
        if len(mv) < ERROR_OFFSET + 4:
            conn.broken = "page too small"
            return False, False

        def rd(off: int) -> int:
            return int.from_bytes(mv[off:off + 4], "little")

        def wr(off: int, val: int) -> None:
            mv[off:off + 4] = (val & 0xFFFFFFFF).to_bytes(4, "little")

        consumed = False
        cons, prod = rd(REQ_CONS_OFFSET), rd(REQ_PROD_OFFSET)
        if (prod - cons) & 0xFFFFFFFF > XENSTORE_RING_SIZE:
            return self._break(conn, mv, "req indices", XENSTORE_ERROR_RINGIDX), False
        while (avail := (prod - cons) & 0xFFFFFFFF) and conn.broken is None:
            have = len(conn.inbuf)
            if have < XSD_SOCKMSG_SIZE:
                need = XSD_SOCKMSG_SIZE - have
            else:
                need = XSD_SOCKMSG_SIZE + unpack_header(conn.inbuf)[3] - have
            slot = MASK_XENSTORE_IDX(cons)
            n = min(avail, need, XENSTORE_RING_SIZE - slot)
            conn.inbuf += mv[REQ_OFFSET + slot:REQ_OFFSET + slot + n]
            cons = (cons + n) & 0xFFFFFFFF
            wr(REQ_CONS_OFFSET, cons)        # after the bytes are copied out
            consumed = True
            if len(conn.inbuf) < XSD_SOCKMSG_SIZE:
                continue
            mtype, req_id, tx_id, length = unpack_header(conn.inbuf)
            if length > XENSTORE_PAYLOAD_MAX:
                conn.inbuf.clear()
                conn.out += pack_msg(T.XS_ERROR, req_id, tx_id, b"E2BIG\0")
                conn.broken = "payload too long"
                break
            if len(conn.inbuf) == XSD_SOCKMSG_SIZE + length:
                payload = bytes(conn.inbuf[XSD_SOCKMSG_SIZE:])
                conn.inbuf.clear()
                conn.out += self.process_message(conn, Request(mtype, req_id, tx_id, payload))
                self._deliver_callbacks()
                if domid not in self.connections:     # it released itself? (only dom0 can)
                    break
            while conn.events:
                conn.out += conn.events.popleft()
        while conn.events:
            conn.out += conn.events.popleft()
        produced = self._write_rsp(conn, mv, rd, wr)
        if conn.broken == "payload too long":
            wr(ERROR_OFFSET, XENSTORE_ERROR_PROTO)
        return consumed, produced

    def _write_rsp(self, conn: Connection, mv: memoryview, rd: Callable[[int], int],
                   wr: Callable[[int, int], None]) -> bool:
        cons, prod = rd(RSP_CONS_OFFSET), rd(RSP_PROD_OFFSET)
        if (prod - cons) & 0xFFFFFFFF > XENSTORE_RING_SIZE:
            return self._break(conn, mv, "rsp indices", XENSTORE_ERROR_RINGIDX)
        produced = False
        while conn.out:
            space = XENSTORE_RING_SIZE - ((prod - cons) & 0xFFFFFFFF)
            if not space:
                break
            slot = MASK_XENSTORE_IDX(prod)
            n = min(space, len(conn.out), XENSTORE_RING_SIZE - slot)
            mv[RSP_OFFSET + slot:RSP_OFFSET + slot + n] = conn.out[:n]
            del conn.out[:n]
            prod = (prod + n) & 0xFFFFFFFF
            wr(RSP_PROD_OFFSET, prod)        # after the bytes are in place
            produced = True
        return produced

    @staticmethod
    def _break(conn: Connection, mv: memoryview, why: str, error: int) -> bool:
        conn.broken = why
        mv[ERROR_OFFSET:ERROR_OFFSET + 4] = error.to_bytes(4, "little")
        return False

    # -- Dom0's in-process API ----------------------------------------------------
    def _call(self, domid: int, mtype: XsdSockmsgType, payload: bytes, tx: int = 0,
              callback: WatchCallback | None = None) -> bytes:
        conn = self.connection(domid)
        req_id = self._next_req_id
        self._next_req_id = (req_id + 1) & 0xFFFFFFFF
        reply = self.process_message(conn, Request(mtype, req_id, tx, payload,
                                                   callback=callback))
        self._deliver_callbacks()
        rtype, _, _, _ = unpack_header(reply)
        body = reply[XSD_SOCKMSG_SIZE:]
        if rtype == T.XS_ERROR:
            raise XenStoreError(body.rstrip(b"\0").decode(), payload.split(b"\0")[0].decode(
                "utf-8", "replace"))
        return body

    @staticmethod
    def _enc(s: str) -> bytes:
        return s.encode("utf-8", "surrogateescape")

    def read(self, path: str, domid: int = 0, tx: int = 0) -> str | None:
        """The value, or None if the node does not exist."""
        try:
            value = self._call(domid, T.XS_READ, self._enc(path) + b"\0", tx)
        except XenStoreError as e:
            if e.error == "ENOENT":
                return None
            raise
        return value.decode("utf-8", "surrogateescape")

    def write(self, path: str, value: str | bytes, domid: int = 0, tx: int = 0) -> None:
        """Write as ``domid`` (0: Dom0); missing parents are created."""
        data = value if isinstance(value, bytes) else self._enc(value)
        self._call(domid, T.XS_WRITE, self._enc(path) + b"\0" + data, tx)

    def mkdir(self, path: str, domid: int = 0, tx: int = 0) -> None:
        self._call(domid, T.XS_MKDIR, self._enc(path) + b"\0", tx)

    def rm(self, path: str, domid: int = 0, tx: int = 0) -> None:
        self._call(domid, T.XS_RM, self._enc(path) + b"\0", tx)

    def directory(self, path: str, domid: int = 0, tx: int = 0) -> list[str]:
        out = self._call(domid, T.XS_DIRECTORY, self._enc(path) + b"\0", tx)
        return [s.decode() for s in _strings(out)]

    def get_perms(self, path: str, domid: int = 0, tx: int = 0) -> list[str]:
        out = self._call(domid, T.XS_GET_PERMS, self._enc(path) + b"\0", tx)
        return [s.decode() for s in _strings(out)]

    def set_perms(self, path: str, perms: list[str], domid: int = 0, tx: int = 0) -> None:
        payload = self._enc(path) + b"\0" + b"".join(self._enc(p) + b"\0" for p in perms)
        self._call(domid, T.XS_SET_PERMS, payload, tx)

    def exists(self, path: str, domid: int = 0, tx: int = 0) -> bool:
        try:
            self._call(domid, T.XS_READ, self._enc(path) + b"\0", tx)
        except XenStoreError as e:
            if e.error in ("ENOENT", "EACCES"):
                return False
            raise
        return True

    def watch(self, path: str, token: str, callback: WatchCallback) -> None:
        """Dom0 watch: ``callback(path, token)`` per event, the initial one included."""
        self._call(0, T.XS_WATCH, self._enc(path) + b"\0" + self._enc(token) + b"\0",
                   callback=callback)

    def unwatch(self, path: str, token: str) -> None:
        self._call(0, T.XS_UNWATCH, self._enc(path) + b"\0" + self._enc(token) + b"\0")

    def transaction_start(self, domid: int = 0) -> int:
        return int(self._call(domid, T.XS_TRANSACTION_START, b"\0").rstrip(b"\0"))

    def transaction_end(self, tx: int, commit: bool = True, domid: int = 0) -> bool:
        """Commit (or abort); False if the commit conflicted (EAGAIN: retry)."""
        try:
            self._call(domid, T.XS_TRANSACTION_END, b"T\0" if commit else b"F\0", tx)
        except XenStoreError as e:
            if e.error == "EAGAIN":
                return False
            raise
        return True

    def get_domain_path(self, domid: int) -> str:
        return self._call(0, T.XS_GET_DOMAIN_PATH, b"%d\0" % domid).rstrip(b"\0").decode()

    def ls(self, path: str = "/", perms: bool = False) -> str:
        """``xenstore-ls [-p] path``: one line per node below ``path``, one space per level."""
        canon = self.canonicalize(self.connections[0], self._enc(path))
        if canon not in self.nodes:
            raise XenStoreError("ENOENT", path)
        lines: list[str] = []

        def walk(p: str, depth: int) -> None:
            for name in self.nodes[p].children:
                child = _join(p, name)
                node = self.nodes[child]
                line = f'{" " * depth}{name} = "{_sanitise_value(node.value)}"'
                if perms:
                    line += "  (" + ",".join(_perm_str(q) for q in node.perms) + ")"
                lines.append(line)
                walk(child, depth + 1)

        walk(canon, 0)
        return "".join(line + "\n" for line in lines)

    # -- invariants ---------------------------------------------------------------
    def check(self) -> list[str]:
        """check_store(): what is inconsistent in the tree (empty when all is well)."""
        problems = []
        if "/" not in self.nodes:
            problems.append("no root")
        for path, node in self.nodes.items():
            if not node.perms:
                problems.append(f"{path}: no perms")
            if len(set(node.children)) != len(node.children):
                problems.append(f"{path}: duplicate children")
            for c in node.children:
                if _join(path, c) not in self.nodes:
                    problems.append(f"{path}: missing child {c}")
            if path != "/":
                parent = self.nodes.get(_parent(path))
                if parent is None or _basename(path) not in parent.children:
                    problems.append(f"{path}: orphan")
        return problems
