"""Differential tests: the same request sequence against a fresh reference etcd 3.4 and a fresh
target; normalised outputs must be identical.

Normalisation removes only what legitimately differs between two servers: cluster/member ids,
raft terms/indexes, lease ids, hashes, db sizes, ports, durations, remaining TTL seconds.
Revisions, versions, counts, ordering, error texts and exit codes are compared exactly (the
sequences avoid sort ties, whose order etcd leaves unspecified).
With TM_TARGET=etcd both sides are etcd (this validates the normalisation itself)."""

import base64
import queue
import re

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

import compatlib as cl
from compatlib import b64, etcdctl, txn_input

pytestmark = pytest.mark.differential


def assert_same_sessions(ref_out, tgt_out, what):
    assert len(ref_out) == len(tgt_out)
    for i, (r, t) in enumerate(zip(ref_out, tgt_out)):
        assert r == t, f"{what}: step {i} ({r.get('step')}) differs -- reference (left) vs target (right)"


# ---------------------------------------------------------------------------------------------
# etcdctl session
# ---------------------------------------------------------------------------------------------

class Step:
    def __init__(self, *args, stdin=None, out="text", capture=None):
        self.args, self.stdin, self.out, self.capture = args, stdin, out, capture

    def label(self):
        return " ".join(a if len(a) < 40 else a[:37] + "..." for a in self.args) + \
            (f" <stdin {len(self.stdin)}B>" if self.stdin else "")


def _norm_json(res, srv):
    return cl.normalize(res.json())


def _norm_text(res, srv):
    s = cl.normalize_text(res.stdout, srv)
    s = re.sub(r"remaining\(\d+s\)", "remaining(<n>s)", s)
    # attached keys of a lease come out in no particular order
    return re.sub(r"attached keys\(\[([^\]]*)\]\)",
                  lambda m: "attached keys([" + " ".join(sorted(m.group(1).split())) + "])", s)


def _norm_status(res, srv):
    out = []
    for ep in res.json():
        st = ep["Status"]
        out.append({"Endpoint": ep["Endpoint"].replace(srv.endpoint, "<ep>"),
                    "revision": st["header"]["revision"], "errors": st.get("errors", []),
                    "leader_is_self": st["leader"] == st["header"]["member_id"]})
    return out


def _norm_hashkv(res, srv):
    return [{"Endpoint": ep["Endpoint"].replace(srv.endpoint, "<ep>"),
             "revision": ep["HashKV"]["header"]["revision"],
             "compact_revision": ep["HashKV"].get("compact_revision", 0)} for ep in res.json()]


def _norm_members(res, srv):
    js = res.json()
    return [{"name": m.get("name"), "clientURLs": [u.replace(srv.url, "<url>") for u in m.get("clientURLs", [])],
             "is_self": m["ID"] == js["header"]["member_id"], "isLearner": m.get("isLearner", False)}
            for m in js["members"]]


NORMALIZERS = {"text": _norm_text, "json": _norm_json, "status": _norm_status,
               "hashkv": _norm_hashkv, "members": _norm_members}


def _capture_lease(res):
    m = re.match(r"lease ([0-9a-f]{16}) granted", res.stdout)
    return {"lease": m.group(1)}


def ctl_steps():
    J = {"out": "json"}
    tx = txn_input
    return [
        Step("get", "a", "-w", "json", **J),  # empty store
        Step("put", "a", "1"), Step("put", "b", "2"), Step("put", "a", "3", "--prev-kv"),
        Step("put", "c/x", "1"), Step("put", "c/y", "2"), Step("put", "c/z", "3"), Step("put", "c/x", "9"),
        # (c/z gets version 3 so that no sort below has ties: etcd's sort is not stable)
        Step("put", "c/z", "4"), Step("put", "c/z", "3"),
        Step("put", "d", "", "-w", "json", **J),
        Step("get", "a", "-w", "json", **J),
        Step("get", "a", "--rev=2", "-w", "json", **J),
        Step("get", "a", "--rev=0"),
        Step("get", "", "--from-key", "-w", "json", **J),
        Step("get", "", "--prefix", "--keys-only"),
        Step("get", "b", "--from-key", "--keys-only"),
        Step("get", "a", "c/y", "-w", "json", **J),
        Step("get", "c", "--prefix", "--limit=2", "-w", "json", **J),
        Step("get", "c", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "-w", "json", **J),
        Step("get", "c/", "--prefix", "--sort-by=VALUE"),
        Step("get", "c/", "--prefix", "--sort-by=VERSION", "--order=DESCEND", "--print-value-only"),
        Step("get", "c/", "--prefix", "--sort-by=CREATE", "--order=DESCEND", "--limit=1", "-w", "json", **J),
        Step("get", "", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--keys-only"),
        Step("get", "c/y", "--consistency=s", "-w", "json", **J),
        Step("put", "a", "4", "-w", "json", **J),
        Step("del", "c/y", "--prev-kv", "-w", "json", **J),
        Step("del", "nothing", "-w", "json", **J),
        Step("get", "c/y", "--rev=5", "-w", "json", **J),
        Step("get", "c/y", "-w", "json", **J),
        Step("put", "c/y", "again", "-w", "json", **J),
        Step("get", "c/y", "-w", "json", **J),
        Step("txn", "-w", "json", stdin=tx(['value("a") = "4"', 'version("a") = "3"', 'create("a") = "2"',
                                             'mod("a") > "3"', 'version("missing") = "0"'],
                                            ["put a 5", "get a", "del c/z --prev-kv", "get c/ --prefix --keys-only"],
                                            ["put a fail"]), **J),
        Step("txn", "-w", "json", stdin=tx(['value("a") = "4"'], ["put a 6"], ["get a", "put e 1", "get e"]), **J),
        Step("txn", "-w", "json", stdin=tx(['value("missing") != "x"'], ["put f 1"], ["get a"]), **J),
        Step("txn", stdin=tx([], ["get a", "get c/ --prefix"], [])),
        Step("get", "", "--prefix", "-w", "json", **J),
        Step("compaction", "6"),
        Step("get", "a", "--rev=5"),
        Step("get", "a", "--rev=6", "-w", "json", **J),
        Step("get", "a", "--rev=1000"),
        Step("compaction", "6"),
        Step("compaction", "3"),
        Step("compaction", "1000"),
        Step("endpoint", "hashkv", "-w", "json", out="hashkv"),
        Step("lease", "grant", "60", capture=_capture_lease),
        Step("put", "l1", "v", "--lease={lease}"),
        Step("put", "l2", "v", "--lease={lease}", "--prev-kv"),
        Step("get", "l", "--prefix", "-w", "json", **J),
        Step("lease", "timetolive", "{lease}", "--keys"),
        Step("lease", "list"),
        Step("lease", "keep-alive", "--once", "{lease}"),
        Step("put", "l1", "v2", "--ignore-lease", "-w", "json", **J),
        Step("put", "l1", "--ignore-value"),
        Step("get", "l1", "-w", "json", **J),
        Step("lease", "revoke", "{lease}"),
        Step("get", "l", "--prefix", "-w", "json", **J),
        Step("lease", "timetolive", "{lease}"),
        Step("lease", "revoke", "{lease}"),
        Step("lease", "keep-alive", "--once", "{lease}"),
        # bad input
        Step("put", "", "x"), Step("get", ""), Step("del", ""),
        Step("put", "x", "v", "--lease=1234abcd"),
        Step("put", "nokey", "--ignore-value"), Step("put", "nokey", "v", "--ignore-lease"),
        Step("put", "nokey", "v", "--ignore-lease", "--lease=12"),
        Step("txn", stdin=tx([], [f"put t{i} v" for i in range(129)], [])),
        Step("txn", stdin=tx([], [f"put t{i} v" for i in range(128)], [])),
        Step("txn", stdin=tx([], ["put a 1", "put a 2"], [])),
        Step("txn", stdin=tx([], ["del c/ --prefix", "put c/x 1"], [])),
        Step("txn", stdin=tx([], ["put g 1"], ['put "" 1'])),
        Step("txn", stdin=tx([], ["get a --rev=2"], [])),
        Step("put", "big", stdin="z" * 1_600_000),
        Step("get", "big"),
        # maintenance
        Step("endpoint", "status", "-w", "json", out="status"),
        Step("member", "list", "-w", "json", out="members"),
        Step("alarm", "list"),
        Step("defrag"),
        Step("get", "", "--prefix", "--keys-only", "--limit=3"),
        Step("del", "", "--prefix", "-w", "json", **J),
        Step("get", "", "--prefix", "-w", "json", **J),
    ]


def run_ctl_session(srv, steps):
    env = {}
    out = []
    for st in steps:
        args = [a.format(**env) for a in st.args]
        res = etcdctl(srv, *args, input=st.stdin, check=False)
        rec = {"step": st.label(), "rc": res.rc, "error": res.error}
        if res.rc == 0:
            if st.capture:
                env.update(st.capture(res))
            rec["out"] = NORMALIZERS[st.out](res, srv)
        else:
            rec["error"] = cl.normalize_text(res.error or "", srv)
        out.append(rec)
    return out


@pytest.mark.etcdctl
def test_etcdctl_session_matches_reference(ref_and_target):
    ref, tgt = ref_and_target
    steps = ctl_steps()
    ref_out = run_ctl_session(ref, steps)
    tgt_out = run_ctl_session(tgt, steps)
    # sanity: the reference run really exercised errors and successes
    assert sum(1 for r in ref_out if r["rc"] != 0) >= 15 and sum(1 for r in ref_out if r["rc"] == 0) >= 50
    assert_same_sessions(ref_out, tgt_out, "etcdctl session")


# ---------------------------------------------------------------------------------------------
# JSON gateway session
# ---------------------------------------------------------------------------------------------

def gw_steps():
    k = b64
    return [
        ("/v3/kv/range", {"key": k("a")}),
        ("/v3/kv/put", {"key": k("a"), "value": k("1")}),
        ("/v3/kv/put", {"key": k("b"), "value": k("2"), "prev_kv": True}),
        ("/v3/kv/put", {"key": k("a"), "value": k("3"), "prev_kv": True}),
        ("/v3/kv/put", {"key": k("c"), "value": k("")}),
        ("/v3/kv/range", {"key": "AA==", "range_end": "AA=="}),
        ("/v3/kv/range", {"key": k("a"), "range_end": k("c"), "limit": 1}),
        ("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "sort_order": "DESCEND", "sort_target": "MOD"}),
        ("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "sort_target": "VALUE"}),
        ("/v3/kv/range", {"key": "AA==", "range_end": "AA==", "count_only": True}),
        ("/v3/kv/range", {"key": k("a"), "range_end": "AA==", "keys_only": True, "min_mod_revision": "3"}),
        ("/v3/kv/range", {"key": k("a"), "revision": "2"}),
        ("/v3/kv/txn", {"compare": [{"key": k("a"), "target": "VALUE", "result": "EQUAL", "value": k("3")},
                                    {"key": k("a"), "target": "MOD", "result": "LESS", "mod_revision": "100"},
                                    {"key": k("zz"), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
                        "success": [{"request_put": {"key": k("a"), "value": k("4"), "prev_kv": True}},
                                    {"request_range": {"key": k("a")}},
                                    {"request_delete_range": {"key": k("b"), "prev_kv": True}},
                                    {"request_txn": {"compare": [{"key": k("a"), "target": "VERSION", "result": "GREATER", "version": "1"}],
                                                     "success": [{"request_range": {"key": k("a"), "keys_only": True}}]}}],
                        "failure": []}),
        ("/v3/kv/txn", {"compare": [{"key": k("a"), "target": "VALUE", "result": "EQUAL", "value": k("3")}],
                        "failure": [{"request_range": {"key": "AA==", "range_end": "AA=="}}]}),
        ("/v3/kv/txn", {"compare": [{"key": k("a"), "range_end": k("d"), "target": "VERSION", "result": "GREATER", "version": "0"}],
                        "success": [{"request_put": {"key": k("r"), "value": k("all")}}]}),
        ("/v3/kv/deleterange", {"key": k("zzz")}),
        ("/v3/kv/deleterange", {"key": k("c"), "prev_kv": True}),
        ("/v3/kv/compaction", {"revision": "4"}),
        ("/v3/kv/range", {"key": k("a"), "revision": "3"}),
        ("/v3/kv/range", {"key": k("a"), "revision": "4"}),
        ("/v3/kv/range", {"key": k("a"), "revision": "400"}),
        ("/v3/kv/compaction", {"revision": "4"}),
        ("/v3/kv/range", {"key": ""}),
        ("/v3/kv/put", {"key": "", "value": k("x")}),
        ("/v3/kv/put", {"key": k("x"), "lease": "42"}),
        ("/v3/kv/put", {"key": k("x"), "ignore_value": True}),
        ("/v3/kv/txn", {"success": [{"request_put": {"key": k("d")}}, {"request_put": {"key": k("d")}}]}),
        ("/v3/kv/txn", {"success": [{"request_put": {"key": k(f"t{i}")}} for i in range(129)]}),
        ("/v3/kv/range", {"key": "Zm9"}),
        ("/v3/lease/grant", {"TTL": 60}),
        ("/v3/lease/timetolive", {"ID": "12345"}),
        ("/v3/lease/revoke", {"ID": "12345"}),
        ("/v3/kv/range", {"key": "AA==", "range_end": "AA=="}),
    ]


def run_gw_session(srv, steps):
    out = []
    for path, body in steps:
        status, obj = cl.gw(srv, path, body)
        obj = cl.normalize(obj)
        out.append({"step": f"{path} {str(body)[:60]}", "status": status, "body": obj})
    return out


@pytest.mark.gateway
def test_gateway_session_matches_reference(ref_and_target):
    ref, tgt = ref_and_target
    steps = gw_steps()
    assert_same_sessions(run_gw_session(ref, steps), run_gw_session(tgt, steps), "gateway session")


# ---------------------------------------------------------------------------------------------
# raw gRPC session (python stubs from python3-etcd3), including the watch stream
# ---------------------------------------------------------------------------------------------

def msg(m):
    return MessageToDict(m, preserving_proto_field_name=True)


class WatchStream:
    def __init__(self, channel, timeout=20):
        from etcd3 import etcdrpc
        self.q = queue.Queue()

        def gen():
            while True:
                item = self.q.get()
                if item is None:
                    return
                yield item

        self.call = etcdrpc.WatchStub(channel).Watch(gen(), timeout=timeout)

    def send(self, req):
        self.q.put(req)

    def recv(self):
        return next(self.call)

    def close(self):
        self.q.put(None)
        self.call.cancel()


def norm_watch_resp(r):
    d = cl.normalize(msg(r))
    return d


def grpc_session(srv):
    from etcd3 import etcdrpc as R
    ch = grpc.insecure_channel(srv.endpoint)
    kv, lease, maint = R.KVStub(ch), R.LeaseStub(ch), R.MaintenanceStub(ch)
    out = []
    T = 15

    def rec(step, fn):
        try:
            resp = fn()
            out.append({"step": step, "ok": cl.normalize(msg(resp))})
            return resp
        except grpc.RpcError as e:
            out.append({"step": step, "code": e.code().name, "details": e.details()})
            return None

    def put(k, v, **kw):
        return rec(f"put {k}", lambda: kv.Put(R.PutRequest(key=k.encode(), value=v.encode(), **kw), timeout=T))

    def rng(k, **kw):
        return rec(f"range {k} {kw}", lambda: kv.Range(R.RangeRequest(key=k.encode(), **kw), timeout=T))

    def txn(step, **kw):
        return rec(step, lambda: kv.Txn(R.TxnRequest(**kw), timeout=T))

    try:
        rng("w")
        for i in range(3):
            put("w/a", f"v{i}")          # revs 2, 3, 4
        put("w/b", "x", prev_kv=True)    # rev 5
        rec("delete w/a", lambda: kv.DeleteRange(R.DeleteRangeRequest(key=b"w/a", prev_kv=True), timeout=T))  # rev 6
        # a txn writing two keys -> one revision, two events in one watch response
        txn("txn 2 puts", success=[R.RequestOp(request_put=R.PutRequest(key=b"w/c", value=b"1")),
                                   R.RequestOp(request_put=R.PutRequest(key=b"w/d", value=b"1"))])  # rev 7
        cmp = R.Compare(key=b"w/c", target=R.Compare.VALUE, result=R.Compare.EQUAL, value=b"1")
        nested = R.TxnRequest(compare=[cmp], success=[R.RequestOp(request_range=R.RangeRequest(key=b"w/c"))],
                              failure=[R.RequestOp(request_put=R.PutRequest(key=b"w/x", value=b"no"))])
        txn("nested txn", compare=[cmp], success=[R.RequestOp(request_txn=nested),
                                                  R.RequestOp(request_put=R.PutRequest(key=b"w/e", value=b"1"))])  # rev 8
        txn("empty op", success=[R.RequestOp()])
        txn("range_end compare", compare=[R.Compare(key=b"w/", range_end=b"w0", target=R.Compare.VERSION,
                                                    result=R.Compare.GREATER, version=0)])
        rng("w/", range_end=b"w0", min_create_revision=6, max_mod_revision=7)
        rng("w/", range_end=b"w0", revision=4)
        rng("w/", range_end=b"w0", count_only=True)
        # order NONE + target != KEY sorts ascending by the target (no ties in this range)
        rng("w/b", range_end=b"w/d", sort_order=R.RangeRequest.NONE, sort_target=R.RangeRequest.CREATE)
        rng("w/b", range_end=b"w/d", sort_order=R.RangeRequest.DESCEND, sort_target=R.RangeRequest.MOD)

        # watch: history replay from rev 2 with prev_kv, then live events, then cancel
        ws = WatchStream(ch)
        try:
            ws.send(R.WatchRequest(create_request=R.WatchCreateRequest(key=b"w/", range_end=b"w0",
                                                                       start_revision=2, prev_kv=True)))
            created = ws.recv()
            out.append({"step": "watch created", "ok": norm_watch_resp(created)})
            events, batches = [], []
            while len(events) < 8:
                r = ws.recv()
                assert not r.canceled, r
                batches.append([e.kv.mod_revision for e in r.events])
                events.extend(msg(e) for e in r.events)
            put("w/live", "1")  # rev 9
            r = ws.recv()
            batches.append([e.kv.mod_revision for e in r.events])
            live = norm_watch_resp(r)
            out.append({"step": "watch events", "ok": cl.normalize(events)})
            out.append({"step": "watch live response", "ok": live})
            # a revision's events are never split across responses
            flat = [rv for b in batches for rv in b]
            assert flat == sorted(flat), f"{srv.kind}: watch events out of order: {batches}"
            for a, b in zip(batches, batches[1:]):
                assert not a or not b or a[-1] < b[0], f"{srv.kind}: a revision split across responses: {batches}"
            ws.send(R.WatchRequest(cancel_request=R.WatchCancelRequest(watch_id=created.watch_id)))
            out.append({"step": "watch cancel", "ok": norm_watch_resp(ws.recv())})
        finally:
            ws.close()

        rec("compact 7", lambda: kv.Compact(R.CompactionRequest(revision=7, physical=True), timeout=T))
        for r in (5, 7, 8, 0):  # hash values differ between implementations: compare the rest
            if rec(f"hashkv {r}", lambda: maint.HashKV(R.HashKVRequest(revision=r), timeout=T)) is not None:
                out[-1]["ok"].pop("hash", None)
        rng("w/", range_end=b"w0", revision=6)
        rng("w/", range_end=b"w0", revision=7)
        # watch from a compacted revision: created, then canceled with compact_revision
        ws = WatchStream(ch)
        try:
            ws.send(R.WatchRequest(create_request=R.WatchCreateRequest(key=b"w/c", start_revision=3)))
            out.append({"step": "compacted watch created", "ok": norm_watch_resp(ws.recv())})
            out.append({"step": "compacted watch canceled", "ok": norm_watch_resp(ws.recv())})
            # at exactly the compaction revision: replays the surviving revision-7 put
            ws.send(R.WatchRequest(create_request=R.WatchCreateRequest(key=b"w/c", start_revision=7)))
            out.append({"step": "watch at compact rev created", "ok": norm_watch_resp(ws.recv())})
            out.append({"step": "watch at compact rev event", "ok": norm_watch_resp(ws.recv())})
            # empty range is rejected at create time
            ws.send(R.WatchRequest(create_request=R.WatchCreateRequest(key=b"z", range_end=b"a")))
            out.append({"step": "watch empty range", "ok": norm_watch_resp(ws.recv())})
        finally:
            ws.close()

        # leases
        g = rec("lease grant ttl 1", lambda: lease.LeaseGrant(R.LeaseGrantRequest(TTL=1), timeout=T))
        if g is not None:  # raised to the 2 s minimum; revoke before it can expire
            rec("lease revoke short", lambda: lease.LeaseRevoke(R.LeaseRevokeRequest(ID=g.ID), timeout=T))
        g = rec("lease grant", lambda: lease.LeaseGrant(R.LeaseGrantRequest(TTL=60), timeout=T))
        lid = g.ID if g is not None else 1
        rec("lease grant too large", lambda: lease.LeaseGrant(R.LeaseGrantRequest(TTL=9_000_000_001), timeout=T))
        rec("lease grant dup id", lambda: lease.LeaseGrant(R.LeaseGrantRequest(TTL=30, ID=lid), timeout=T))
        put("lk", "v", lease=lid)
        ttl = rec("lease ttl", lambda: lease.LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=lid, keys=True), timeout=T))
        if ttl is not None:
            out[-1]["ok"].pop("TTL", None)
        rec("lease revoke", lambda: lease.LeaseRevoke(R.LeaseRevokeRequest(ID=lid), timeout=T))
        rec("lease revoke again", lambda: lease.LeaseRevoke(R.LeaseRevokeRequest(ID=lid), timeout=T))
        rec("lease ttl gone", lambda: lease.LeaseTimeToLive(R.LeaseTimeToLiveRequest(ID=lid), timeout=T))
        rng("lk")
        st = maint.Status(R.StatusRequest(), timeout=T)
        out.append({"step": "status", "ok": {"leader_is_self": st.leader == st.header.member_id,
                                            "revision": st.header.revision}})
    finally:
        ch.close()
    return out


@pytest.mark.python
def test_grpc_session_matches_reference(ref_and_target):
    ref, tgt = ref_and_target
    ref_out = grpc_session(ref)
    tgt_out = grpc_session(tgt)
    assert_same_sessions(ref_out, tgt_out, "raw gRPC session")
