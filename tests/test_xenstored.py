"""xenstored: tree operations, permissions, watches, transactions, quotas, the ring."""

from __future__ import annotations

import ctypes
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenlab.errors import DomainError
from xenlab.tools.xenstore import xs_wire as W
from xenlab.tools.xenstore.xenstored import XenStore, XenStoreError, wire_funcs
from xenlab.tools.xenstore.xs_wire import XsdSockmsgType as T
from xenlab.tools.xenstore.xs_wire import pack_msg, unpack_header
from xenlab.xen.trace import Kind, Trace


@pytest.fixture
def xs() -> XenStore:
    store = XenStore()
    store.introduce_domain(1)
    store.introduce_domain(2)
    return store


def req(xs: XenStore, domid: int, mtype: int, payload: bytes, tx: int = 0,
        req_id: int = 7) -> tuple[int, bytes]:
    """One request through handle_message -> (reply type, reply payload)."""
    [reply] = xs.handle_message(domid, pack_msg(mtype, req_id, tx, payload))
    rtype, rid, rtx, length = unpack_header(reply)
    assert (rid, rtx, length) == (req_id, tx, len(reply) - 16)
    return rtype, reply[16:]


def err(xs: XenStore, domid: int, mtype: int, payload: bytes, tx: int = 0) -> str:
    rtype, body = req(xs, domid, mtype, payload, tx)
    assert rtype == T.XS_ERROR, body
    return body.rstrip(b"\0").decode()


def ok(xs: XenStore, domid: int, mtype: int, payload: bytes, tx: int = 0) -> bytes:
    rtype, body = req(xs, domid, mtype, payload, tx)
    assert rtype == mtype, body
    return body


def events(xs: XenStore, domid: int) -> list[tuple[str, str]]:
    out = []
    for msg in xs.pending_events(domid):
        assert unpack_header(msg)[0] == T.XS_WATCH_EVENT
        path, token, rest = msg[16:].split(b"\0")
        assert rest == b""
        out.append((path.decode(), token.decode()))
    return out


# -- xs_wire ----------------------------------------------------------------------
def test_wire_constants_match_the_header() -> None:
    assert T.XS_DEBUG is T.XS_CONTROL and T.XS_CONTROL == 0
    assert (T.XS_DIRECTORY, T.XS_WATCH_EVENT, T.XS_ERROR, T.XS_SET_TARGET) == (1, 15, 16, 19)
    assert (T.XS_RESET_WATCHES, T.XS_DIRECTORY_PART) == (21, 22)
    assert [name for _, name in W.xsd_errors][:3] == ["EINVAL", "EACCES", "EEXIST"]
    assert len(W.xsd_errors) == 16 and W.xsd_errors[-1] == (1, "EPERM")
    assert ctypes.sizeof(W.XsdSockmsg) == W.XSD_SOCKMSG_SIZE == 16
    iface = W.XenstoreDomainInterface
    assert ctypes.sizeof(iface) == 2076
    offsets = {"req": 0, "rsp": 1024, "req_cons": 2048, "req_prod": 2052, "rsp_cons": 2056,
               "rsp_prod": 2060, "server_features": 2064, "connection": 2068, "error": 2072}
    for field, off in offsets.items():
        assert getattr(iface, field).offset == off
    assert W.ERROR_OFFSET == 2072 and W.RSP_PROD_OFFSET == 2060
    assert W.MASK_XENSTORE_IDX(1024 + 5) == 5
    assert (W.XENSTORE_CONNECTED, W.XENSTORE_RECONNECT) == (0, 1)


def test_pack_and_unpack() -> None:
    msg = pack_msg(T.XS_WRITE, 3, 4, b"a\0b")
    assert msg == struct.pack("<IIII", 11, 3, 4, 3) + b"a\0b"
    assert unpack_header(msg) == (11, 3, 4, 3)
    with pytest.raises(ValueError):
        unpack_header(b"\0" * 15)


def test_wire_funcs_is_an_explicit_table() -> None:
    assert T.XS_WATCH_EVENT not in wire_funcs and T.XS_ERROR not in wire_funcs
    assert wire_funcs[T.XS_READ][0].__name__ == "do_read"


# -- tree operations --------------------------------------------------------------
def test_initial_tree_and_ls() -> None:
    xs = XenStore()
    assert xs.ls("/") == ('local = ""\n domain = ""\n  0 = ""\n   name = "Domain-0"\n'
                          '   domid = "0"\ntool = ""\n xenstored = ""\n')
    xs.write("/local/domain/0/odd", b'a\\b\n\x01"')
    assert 'odd = "a\\\\b\\n\\001""  (n0)\n' in xs.ls("/local/domain/0", perms=True)
    assert xs.check() == []


def test_read_write_mkdir_directory_rm(xs: XenStore) -> None:
    assert xs.read("/local/domain/1/nope") is None
    xs.write("/local/domain/1/a/b/c", "hello")
    assert xs.read("/local/domain/1/a/b/c") == "hello"
    assert xs.read("/local/domain/1/a/b") == ""          # created parent
    assert xs.directory("/local/domain/1/a") == ["b"]
    xs.mkdir("/local/domain/1/a/d")
    xs.mkdir("/local/domain/1/a/d")                      # existing: OK
    assert xs.directory("/local/domain/1/a") == ["b", "d"]
    assert xs.exists("/local/domain/1/a/d") and not xs.exists("/local/domain/1/zz")
    xs.rm("/local/domain/1/a")
    assert not xs.exists("/local/domain/1/a/b/c")
    assert xs.directory("/local/domain/1") == []
    with pytest.raises(XenStoreError) as e:
        xs.directory("/local/domain/1/a")
    assert e.value.error == "ENOENT"
    assert xs.check() == []


def test_wire_payload_formats(xs: XenStore) -> None:
    assert ok(xs, 1, T.XS_WRITE, b"data/x\0va\0lue") == b"OK\0"    # relative, value with NUL
    assert ok(xs, 1, T.XS_READ, b"/local/domain/1/data/x\0") == b"va\0lue"
    ok(xs, 1, T.XS_WRITE, b"data/y\0")
    assert ok(xs, 1, T.XS_DIRECTORY, b"data\0") == b"x\0y\0"
    assert ok(xs, 1, T.XS_GET_PERMS, b"data\0") == b"n1\0"
    assert ok(xs, 1, T.XS_GET_DOMAIN_PATH, b"5\0") == b"/local/domain/5\0"
    assert ok(xs, 0, T.XS_IS_DOMAIN_INTRODUCED, b"2\0") == b"T\0"
    assert ok(xs, 0, T.XS_IS_DOMAIN_INTRODUCED, b"9\0") == b"F\0"
    assert ok(xs, 1, T.XS_DIRECTORY_PART, b"data\0" + b"0\0").split(b"\0")[1:] == [
        b"x", b"y", b"", b""]
    assert ok(xs, 0, T.XS_CONTROL, b"check\0") == b"OK\0"


def test_errors(xs: XenStore) -> None:
    assert err(xs, 1, T.XS_READ, b"/local/domain/1/missing\0") == "ENOENT"
    assert err(xs, 1, T.XS_READ, b"/bad path\0") == "EINVAL"
    assert err(xs, 1, T.XS_READ, b"/trailing/\0") == "EINVAL"
    assert err(xs, 1, T.XS_READ, b"/a//b\0") == "EINVAL"
    assert err(xs, 1, T.XS_READ, b"/local\0extra\0") == "EINVAL"
    assert err(xs, 1, T.XS_READ, b"/local") == "EINVAL"              # not NUL-terminated
    assert err(xs, 1, T.XS_READ, b"@releaseDomain\0") == "EINVAL"
    assert err(xs, 1, T.XS_READ, b"/" + b"a" * 3100 + b"\0") == "EINVAL"
    assert err(xs, 0, T.XS_RM, b"/\0") == "EINVAL"
    assert err(xs, 1, T.XS_WATCH_EVENT, b"x\0y\0") == "EINVAL"
    assert err(xs, 1, 99, b"") == "EINVAL"
    assert err(xs, 1, T.XS_INTRODUCE, b"3\0" + b"1\0" + b"1\0") == "EACCES"   # Dom0 only
    assert err(xs, 1, T.XS_CONTROL, b"check\0") == "EACCES"
    assert err(xs, 1, T.XS_WATCH, b"a\0t\0", tx=1) == "EINVAL"                # NOTID
    assert err(xs, 1, T.XS_READ, b"/local\0", tx=42) == "ENOENT"             # no such tx
    assert err(xs, 1, T.XS_GET_DOMAIN_PATH, b"x\0") == "EINVAL"


def test_rm_semantics(xs: XenStore) -> None:
    # xenstored: removing a missing node is fine if its parent exists, else ENOENT.
    assert ok(xs, 1, T.XS_RM, b"/local/domain/1/nothing\0") == b"OK\0"
    assert err(xs, 1, T.XS_RM, b"/local/domain/1/no/thing\0") == "ENOENT"
    with pytest.raises(XenStoreError):
        xs.rm("/")


def test_introduce_and_release_over_the_wire() -> None:
    xs = XenStore()
    assert ok(xs, 0, T.XS_INTRODUCE, b"4\0" + b"1234\0" + b"3\0") == b"OK\0"
    assert xs.connection(4).mfn == 1234 and xs.connection(4).port == 3
    assert xs.get_perms("/local/domain/4") == ["n4"]
    assert ok(xs, 0, T.XS_RELEASE, b"4\0") == b"OK\0"
    assert not xs.is_introduced(4)
    assert err(xs, 0, T.XS_RELEASE, b"4\0") == "ENOENT"
    with pytest.raises(DomainError):
        xs.handle_message(4, pack_msg(T.XS_READ, 1, 0, b"/\0"))


# -- permissions ------------------------------------------------------------------
def test_domu_owns_its_home_and_nothing_else(xs: XenStore) -> None:
    assert ok(xs, 1, T.XS_WRITE, b"/local/domain/1/x\0v") == b"OK\0"
    assert err(xs, 1, T.XS_WRITE, b"/local/domain/0/x\0v") == "EACCES"
    assert err(xs, 1, T.XS_WRITE, b"/local/domain/2/x\0v") == "EACCES"
    assert err(xs, 1, T.XS_MKDIR, b"/tool/mine\0") == "EACCES"
    assert err(xs, 1, T.XS_RM, b"/local/domain/0/name\0") == "EACCES"
    assert err(xs, 1, T.XS_READ, b"/local/domain/0/name\0") == "EACCES"
    assert err(xs, 1, T.XS_READ, b"/local/domain/2\0") == "EACCES"
    # a missing node below an unreadable one does not reveal its absence
    assert err(xs, 1, T.XS_READ, b"/local/domain/2/secret\0") == "EACCES"
    assert err(xs, 1, T.XS_SET_PERMS, b"/local/domain/2\0n1\0") == "EACCES"


def test_created_nodes_inherit_perms_with_creator_as_owner(xs: XenStore) -> None:
    xs.write("/local/domain/1/shared", "s")
    xs.set_perms("/local/domain/1/shared", ["n0", "b1", "r2"])
    xs.write("/local/domain/1/shared/a/b", "v", domid=1)
    assert xs.get_perms("/local/domain/1/shared/a") == ["n1", "b1", "r2"]
    assert xs.get_perms("/local/domain/1/shared/a/b") == ["n1", "b1", "r2"]
    assert xs.read("/local/domain/1/shared/a/b", domid=2) == "v"          # r2
    with pytest.raises(XenStoreError) as e:
        xs.write("/local/domain/1/shared/a/b", "w", domid=2)
    assert e.value.error == "EACCES"
    # Dom0-created nodes keep the inherited owner
    xs.write("/local/domain/1/fromdom0", "x")
    assert xs.get_perms("/local/domain/1/fromdom0") == ["n1"]


def test_set_perms_rules(xs: XenStore) -> None:
    ok(xs, 1, T.XS_WRITE, b"/local/domain/1/p\0")
    assert ok(xs, 1, T.XS_SET_PERMS, b"/local/domain/1/p\0n1\0r2\0") == b"OK\0"
    assert xs.read("/local/domain/1/p", domid=2) == ""
    assert err(xs, 1, T.XS_SET_PERMS, b"/local/domain/1/p\0n2\0") == "EPERM"   # owner change
    assert err(xs, 2, T.XS_SET_PERMS, b"/local/domain/1/p\0n2\0") == "EACCES"
    assert err(xs, 1, T.XS_SET_PERMS, b"/local/domain/1/p\0x1\0") == "EINVAL"
    assert err(xs, 1, T.XS_SET_PERMS, b"/local/domain/1/p\0") == "EINVAL"
    xs.set_perms("/local/domain/1/p", ["n2"])          # Dom0 may give it away
    assert xs.get_perms("/local/domain/1/p") == ["n2"]
    assert err(xs, 1, T.XS_READ, b"/local/domain/1/p\0") == "EACCES"
    assert xs.read("/local/domain/1/p", domid=2) == ""              # the owner
    xs.set_perms("/local/domain/1/p", ["r2"])                        # others: read
    assert ok(xs, 1, T.XS_READ, b"/local/domain/1/p\0") == b""
    assert err(xs, 1, T.XS_WRITE, b"/local/domain/1/p\0") == "EACCES"


# -- watches ----------------------------------------------------------------------
def test_watch_initial_event_write_below_token_and_unwatch(xs: XenStore) -> None:
    assert ok(xs, 1, T.XS_WATCH, b"/local/domain/1/dev\0tok\0") == b"OK\0"
    assert events(xs, 1) == [("/local/domain/1/dev", "tok")]        # fires once up front
    xs.write("/local/domain/1/dev/vif/0", "x")
    xs.write("/local/domain/1/devnot", "x")                          # not below
    assert events(xs, 1) == [("/local/domain/1/dev/vif/0", "tok")]
    assert err(xs, 1, T.XS_WATCH, b"/local/domain/1/dev\0tok\0") == "EEXIST"
    ok(xs, 1, T.XS_WATCH, b"/local/domain/1/dev\0tok2\0")
    assert events(xs, 1) == [("/local/domain/1/dev", "tok2")]
    ok(xs, 1, T.XS_UNWATCH, b"/local/domain/1/dev\0tok\0")
    assert err(xs, 1, T.XS_UNWATCH, b"/local/domain/1/dev\0tok\0") == "ENOENT"
    xs.mkdir("/local/domain/1/dev/vbd")
    assert events(xs, 1) == [("/local/domain/1/dev/vbd", "tok2")]


def test_relative_watch_reports_relative_paths(xs: XenStore) -> None:
    ok(xs, 1, T.XS_WATCH, b"control\0c\0")
    xs.write("/local/domain/1/control/shutdown", "poweroff")
    assert events(xs, 1) == [("control", "c"), ("control/shutdown", "c")]


def test_watch_fires_on_rm_and_set_perms(xs: XenStore) -> None:
    xs.write("/local/domain/1/a/b/c", "v")
    seen: list[tuple[str, str]] = []
    xs.watch("/local/domain/1/a", "above", lambda p, t: seen.append((p, t)))
    xs.watch("/local/domain/1/a/b/c", "inner", lambda p, t: seen.append((p, t)))
    seen.clear()
    xs.rm("/local/domain/1/a/b")
    assert sorted(seen) == [("/local/domain/1/a/b", "above"),
                            ("/local/domain/1/a/b/c", "inner")]
    seen.clear()
    xs.set_perms("/local/domain/1/a", ["n1", "r2"])
    assert seen == [("/local/domain/1/a", "above")]


def test_watch_events_filtered_by_read_permission(xs: XenStore) -> None:
    ok(xs, 2, T.XS_WATCH, b"/local/domain/1\0spy\0")
    assert events(xs, 2) == [("/local/domain/1", "spy")]       # the initial event always
    xs.write("/local/domain/1/private", "x")
    assert events(xs, 2) == []
    xs.write("/local/domain/1/public", "x")
    xs.set_perms("/local/domain/1/public", ["n1", "r2"])
    xs.write("/local/domain/1/public", "y")
    assert events(xs, 2) == [("/local/domain/1/public", "spy")] * 2


def test_dom0_callbacks_and_special_watches(xs: XenStore) -> None:
    seen: list[tuple[str, str]] = []
    xs.watch("@releaseDomain", "rel", lambda p, t: seen.append((p, t)))
    xs.watch("@introduceDomain", "intro", lambda p, t: seen.append((p, t)))
    xs.introduce_domain(3)
    xs.release_domain(2)
    assert seen == [("@releaseDomain", "rel"), ("@introduceDomain", "intro"),
                    ("@introduceDomain", "intro"), ("@releaseDomain", "rel")]


def test_callback_may_write_reentrantly(xs: XenStore) -> None:
    seen: list[str] = []

    def backend(path: str, token: str) -> None:
        seen.append(path)
        if path.endswith("/state") and xs.read(path) == "1":
            xs.write(path, "2")

    xs.watch("/local/domain/1/state", "be", backend)
    xs.write("/local/domain/1/state", "1", domid=1)
    assert xs.read("/local/domain/1/state") == "2"
    assert seen == ["/local/domain/1/state"] * 3


def test_release_drops_watches_and_transactions(xs: XenStore) -> None:
    ok(xs, 1, T.XS_WATCH, b"/local/domain/1\0t\0")
    ok(xs, 1, T.XS_TRANSACTION_START, b"\0")
    xs.release_domain(1)
    xs.introduce_domain(1)
    assert xs.connection(1).watches == [] and xs.connection(1).transactions == {}


def test_reset_watches(xs: XenStore) -> None:
    ok(xs, 1, T.XS_WATCH, b"a\0t\0")
    assert ok(xs, 1, T.XS_RESET_WATCHES, b"") == b"OK\0"
    assert xs.connection(1).watches == []


# -- transactions -----------------------------------------------------------------
def test_transaction_commit(xs: XenStore) -> None:
    seen: list[str] = []
    xs.watch("/local/domain/1", "w", lambda p, t: seen.append(p))
    tid = int(ok(xs, 1, T.XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
    assert tid != 0
    ok(xs, 1, T.XS_WRITE, b"a\0" + b"1", tx=tid)
    assert ok(xs, 1, T.XS_READ, b"a\0", tx=tid) == b"1"
    assert xs.read("/local/domain/1/a") is None                  # not visible outside yet
    assert seen == ["/local/domain/1"]                            # no events before commit
    assert ok(xs, 1, T.XS_TRANSACTION_END, b"T\0", tx=tid) == b"OK\0"
    assert xs.read("/local/domain/1/a") == "1"
    assert seen == ["/local/domain/1", "/local/domain/1/a"]
    assert err(xs, 1, T.XS_TRANSACTION_END, b"T\0", tx=tid) == "ENOENT"


def test_transaction_conflict_and_abort(xs: XenStore) -> None:
    xs.write("/local/domain/1/n", "0")
    tid = int(ok(xs, 1, T.XS_TRANSACTION_START, b"\0").rstrip(b"\0"))
    assert ok(xs, 1, T.XS_READ, b"n\0", tx=tid) == b"0"
    ok(xs, 1, T.XS_WRITE, b"n\0" + b"1", tx=tid)
    xs.write("/local/domain/1/n", "outside")
    assert err(xs, 1, T.XS_TRANSACTION_END, b"T\0", tx=tid) == "EAGAIN"
    assert xs.read("/local/domain/1/n") == "outside"
    assert tid not in xs.connection(1).transactions
    tid = xs.transaction_start(domid=1)
    xs.write("n", "2", domid=1, tx=tid)
    assert err(xs, 1, T.XS_TRANSACTION_END, b"X\0", tx=tid) == "EINVAL"
    assert xs.transaction_end(tid, commit=False, domid=1)
    assert xs.read("/local/domain/1/n") == "outside"
    assert err(xs, 1, T.XS_TRANSACTION_START, b"\0", tx=99) == "ENOENT"


def test_transaction_unrelated_change_commits(xs: XenStore) -> None:
    xs.write("/local/domain/1/a/x", "0")
    xs.write("/local/domain/1/b", "0")
    tid = xs.transaction_start(domid=1)
    xs.write("a/x", "1", domid=1, tx=tid)
    xs.write("/local/domain/1/b", "other")
    assert xs.transaction_end(tid, domid=1)
    assert xs.read("/local/domain/1/a/x") == "1"
    tid = xs.transaction_start()
    inner = xs.transaction_start()
    xs.rm("/local/domain/1/a", tx=tid)
    xs.write("/local/domain/1/a/y", "new", tx=inner)
    assert xs.transaction_end(inner)
    assert not xs.transaction_end(tid)                  # a's children changed: EAGAIN
    assert xs.check() == []


# -- quotas -----------------------------------------------------------------------
def test_quotas() -> None:
    xs = XenStore(quota_entries_per_domain=4, quota_watches_per_domain=2,
                  quota_transactions_per_domain=2, quota_max_nodesize=8)
    xs.introduce_domain(1)                              # its home counts as one entry
    ok(xs, 1, T.XS_WRITE, b"a\0")
    ok(xs, 1, T.XS_WRITE, b"b\0")
    assert err(xs, 1, T.XS_WRITE, b"c/d\0") == "ENOSPC"  # would need two more
    ok(xs, 1, T.XS_WRITE, b"c\0")
    assert err(xs, 1, T.XS_WRITE, b"e\0") == "ENOSPC"
    ok(xs, 1, T.XS_RM, b"c\0")
    assert err(xs, 1, T.XS_WRITE, b"a\0" + b"x" * 9) == "ENOSPC"   # node size
    ok(xs, 1, T.XS_WRITE, b"a\0" + b"x" * 8)
    xs.write("/local/domain/0/big", "x" * 3000)                       # Dom0 has no quota
    ok(xs, 1, T.XS_WATCH, b"a\0" + b"1\0")
    ok(xs, 1, T.XS_WATCH, b"a\0" + b"2\0")
    assert err(xs, 1, T.XS_WATCH, b"a\0" + b"3\0") == "E2BIG"
    ok(xs, 1, T.XS_TRANSACTION_START, b"\0")
    ok(xs, 1, T.XS_TRANSACTION_START, b"\0")
    assert err(xs, 1, T.XS_TRANSACTION_START, b"\0") == "ENOSPC"
    [reply] = xs.handle_message(1, struct.pack("<IIII", T.XS_READ, 1, 0, 5000))
    assert reply[16:] == b"E2BIG\0"


# -- trace ------------------------------------------------------------------------
def test_trace_records() -> None:
    trace = Trace()
    xs = XenStore(trace=trace, clock=lambda: 42)
    xs.introduce_domain(1)
    xs.handle_message(1, pack_msg(T.XS_WRITE, 1, 0, b"k\0" + b"v" * 100))
    xs.handle_message(1, pack_msg(T.XS_READ, 2, 0, b"/local/domain/0/name\0"))
    recs = trace.select(kind=Kind.XENSTORE, dom=1)
    assert [(r.name, r.ret) for r in recs] == [("XS_WRITE", "OK"), ("XS_READ", "EACCES")]
    assert recs[0].args == {"path": "k", "value": "v" * 64, "tx": 0}
    assert recs[0].time == 42
    xs.watch("/local", "t", lambda p, t: None)
    assert trace.select(name="XS_WATCH_EVENT")[0].args == {"path": "/local", "token": "t"}


# -- the ring ---------------------------------------------------------------------
class FakeRing:
    """The guest's side of a xenstore page."""

    def __init__(self, start: int = 0) -> None:
        self.buf = bytearray(4096)
        self.page = memoryview(self.buf)
        for off in (W.REQ_CONS_OFFSET, W.REQ_PROD_OFFSET, W.RSP_CONS_OFFSET, W.RSP_PROD_OFFSET):
            self.set(off, start)

    def get(self, off: int) -> int:
        return struct.unpack_from("<I", self.buf, off)[0]

    def set(self, off: int, val: int) -> None:
        struct.pack_into("<I", self.buf, off, val & 0xFFFFFFFF)

    def send(self, data: bytes) -> int:
        """Put as much of ``data`` as fits into req[]; returns how much."""
        cons, prod = self.get(W.REQ_CONS_OFFSET), self.get(W.REQ_PROD_OFFSET)
        n = min(len(data), 1024 - ((prod - cons) & 0xFFFFFFFF))
        for i in range(n):
            self.buf[W.MASK_XENSTORE_IDX(prod + i)] = data[i]
        self.set(W.REQ_PROD_OFFSET, prod + n)
        return n

    def recv(self) -> bytes:
        cons, prod = self.get(W.RSP_CONS_OFFSET), self.get(W.RSP_PROD_OFFSET)
        out = bytes(self.buf[1024 + W.MASK_XENSTORE_IDX(cons + i)]
                    for i in range((prod - cons) & 0xFFFFFFFF))
        self.set(W.RSP_CONS_OFFSET, prod)
        return out


def split_msgs(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    while data:
        t, rid, _, length = unpack_header(data)
        out.append((t, rid, data[16:16 + length]))
        data = data[16 + length:]
    return out


def pump(xs: XenStore, domid: int, ring: FakeRing, data: bytes) -> bytes:
    got = b""
    while data:
        n = ring.send(data)
        data = data[n:]
        xs.process_ring(domid, ring.page)
        got += ring.recv()
    for _ in range(20):
        xs.process_ring(domid, ring.page)
        got += ring.recv()
    return got


@pytest.mark.parametrize("start", [0, 1000, 0xFFFFFF00])
def test_ring_round_trip_with_wrap_around(xs: XenStore, start: int) -> None:
    ring = FakeRing(start)
    msgs = b"".join(pack_msg(T.XS_WRITE, i, 0, b"k%d\0v%d" % (i, i)) for i in range(100))
    msgs += pack_msg(T.XS_READ, 500, 0, b"k99\0")
    got = split_msgs(pump(xs, 1, ring, msgs))
    assert got[:100] == [(T.XS_WRITE, i, b"OK\0") for i in range(100)]
    assert got[100] == (T.XS_READ, 500, b"v99")
    assert xs.connection(1).broken is None


def test_ring_partial_messages_wait(xs: XenStore) -> None:
    ring = FakeRing(1020)
    msg = pack_msg(T.XS_WRITE, 9, 0, b"key\0value")
    ring.send(msg[:10])
    assert xs.process_ring(1, ring.page) == (True, False)
    assert ring.recv() == b""
    ring.send(msg[10:])
    assert xs.process_ring(1, ring.page) == (True, True)
    assert split_msgs(ring.recv()) == [(T.XS_WRITE, 9, b"OK\0")]
    assert xs.process_ring(1, ring.page) == (False, False)


def test_ring_large_messages_and_full_rsp(xs: XenStore) -> None:
    ring = FakeRing(7)
    value = bytes(range(65, 91)) * 78                         # 2028 bytes > ring size
    xs.write("/local/domain/1/big", value)
    got = pump(xs, 1, ring, pack_msg(T.XS_WRITE, 1, 0, b"big2\0" + value[:2000])
               + pack_msg(T.XS_READ, 2, 0, b"big\0"))
    assert split_msgs(got) == [(T.XS_WRITE, 1, b"OK\0"), (T.XS_READ, 2, value)]
    # responses that do not fit wait for the guest to consume
    ring.send(pack_msg(T.XS_READ, 3, 0, b"big\0"))
    assert xs.process_ring(1, ring.page) == (True, True)
    assert xs.connection(1).out                              # rest still queued
    assert xs.process_ring(1, ring.page) == (False, False)   # rsp[] full
    got = ring.recv()
    while xs.process_ring(1, ring.page)[1]:
        got += ring.recv()
    assert split_msgs(got) == [(T.XS_READ, 3, value)]


def test_ring_delivers_watch_events(xs: XenStore) -> None:
    ring = FakeRing()
    got = split_msgs(pump(xs, 1, ring, pack_msg(T.XS_WATCH, 1, 0, b"dev\0t\0")))
    assert got == [(T.XS_WATCH, 1, b"OK\0"), (T.XS_WATCH_EVENT, 0, b"dev\0t\0")]
    xs.write("/local/domain/1/dev/x", "1")
    assert xs.process_ring(1, ring.page) == (False, True)
    assert split_msgs(ring.recv()) == [(T.XS_WATCH_EVENT, 0, b"dev/x\0t\0")]


def test_ring_misbehaving_indices_break_the_connection(xs: XenStore) -> None:
    ring = FakeRing()
    ring.set(W.REQ_PROD_OFFSET, 2000)
    assert xs.process_ring(1, ring.page) == (False, False)
    assert xs.connection(1).broken
    assert ring.get(W.ERROR_OFFSET) == W.XENSTORE_ERROR_RINGIDX
    assert xs.process_ring(1, ring.page) == (False, False)
    xs.introduce_domain(1)                                   # a fresh ring
    assert xs.connection(1).broken is None


def test_ring_oversized_message_is_a_protocol_error(xs: XenStore) -> None:
    ring = FakeRing()
    ring.send(struct.pack("<IIII", T.XS_WRITE, 5, 0, 5000))
    assert xs.process_ring(1, ring.page) == (True, True)
    assert split_msgs(ring.recv()) == [(T.XS_ERROR, 5, b"E2BIG\0")]
    assert ring.get(W.ERROR_OFFSET) == W.XENSTORE_ERROR_PROTO
    assert xs.connection(1).broken


# -- properties -------------------------------------------------------------------
_names = st.sampled_from(["a", "b", "c", "local", "domain", "1", "2", "0", "@x", "x y", ""])
_paths = st.lists(_names, min_size=0, max_size=4).map(
    lambda parts: "/".join(parts)) | st.lists(_names, max_size=4).map(
    lambda parts: "/" + "/".join(parts)) | st.just("/local/domain/1/a")
_types = st.sampled_from([*range(24), 0xFFFF, 1000])


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=64))
    mtype = draw(_types)
    strings = draw(st.lists(_paths | st.sampled_from(["T", "F", "1", "n1", "r2", "b0", "tok"]),
                            max_size=4))
    payload = b"".join(s.encode() + b"\0" for s in strings)
    if draw(st.booleans()):
        payload = payload[:-1]
    return pack_msg(mtype, draw(st.integers(0, 5)), draw(st.sampled_from([0, 0, 1, 2, 7])),
                    payload)


def _invariants(xs: XenStore) -> None:
    assert xs.check() == []
    for conn in xs.connections.values():
        for watch in conn.watches:
            assert watch.path.startswith(("/", "@"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), _messages()), max_size=30))
def test_random_messages_never_raise(msgs: list[tuple[int, bytes]]) -> None:
    xs = XenStore(quota_entries_per_domain=20)
    xs.introduce_domain(1)
    xs.introduce_domain(2)
    for domid, raw in msgs:
        if domid not in xs.connections:
            continue
        replies = xs.handle_message(domid, raw)
        assert len(replies) == 1
        t, _, _, length = unpack_header(replies[0])
        assert length == len(replies[0]) - 16
        if t == T.XS_ERROR:
            assert replies[0][16:-1].decode() in W.XSD_ERROR
        for ev in xs.pending_events(domid):
            assert unpack_header(ev)[0] == T.XS_WATCH_EVENT
        _invariants(xs)
    assert xs.get_perms("/local/domain/0/name") == ["n0"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_messages(), max_size=20), st.binary(max_size=40),
       st.integers(0, 0xFFFFFFFF), st.lists(st.integers(1, 300), min_size=1, max_size=5))
def test_random_ring_traffic_never_raises(msgs: list[bytes], junk: bytes, start: int,
                                          chunks: list[int]) -> None:
    xs = XenStore()
    xs.introduce_domain(1)
    ring = FakeRing(start)
    data = b"".join(msgs) + junk
    i = 0
    while data and i < 200:
        n = ring.send(data[:chunks[i % len(chunks)]])
        data = data[n:]
        xs.process_ring(1, ring.page)
        ring.recv()
        i += 1
    ring.set(W.REQ_PROD_OFFSET, start + 5000)       # a guest scribbling over its indices
    assert xs.process_ring(1, ring.page) in ((False, False), (False, True))
    _invariants(xs)


@settings(max_examples=100, deadline=None)
@given(st.lists(_messages(), min_size=1, max_size=15), st.integers(0, 0xFFFFFFFF))
def test_ring_and_handle_message_agree(msgs: list[bytes], start: int) -> None:
    good = [m for m in msgs if len(m) >= 16 and unpack_header(m)[3] == len(m) - 16]
    a, b = XenStore(), XenStore()
    for xs in (a, b):
        xs.introduce_domain(1)
    direct = b""
    for m in good:
        direct += b"".join(a.handle_message(1, m)) + b"".join(a.pending_events(1))
    via_ring = pump(b, 1, FakeRing(start), b"".join(good))
    assert via_ring == direct
    assert a.ls(perms=True) == b.ls(perms=True)


def test_trace_records_stay_small_whatever_the_request() -> None:
    """The trace is a ring of records; a guest must not make each record large: paths,
    tokens and lists of strings in a record are cut (issue 12: bounded host memory)."""
    from xenlab.tools.xenstore.xenstored import _trace_args
    from xenlab.tools.xenstore.xs_wire import XsdSockmsgType as T

    huge = b"/local/domain/1/" + b"x" * 3000
    for mtype, payload in ((T.XS_READ, huge + b"\0"), (T.XS_WATCH, huge + b"\0" + b"t" * 3000),
                           (T.XS_SET_PERMS, huge + b"\0" + b"\0".join([b"r1"] * 2000)),
                           (T.XS_DEBUG, b"\0".join([b"a" * 100] * 2000))):
        args = _trace_args(mtype, payload, 0)
        assert len(repr(args)) < 1200, (mtype, len(repr(args)))
    short = _trace_args(T.XS_READ, b"/local/domain/1/name\0", 0)
    assert short == {"path": "/local/domain/1/name", "tx": 0}
