"""etcdctl 3.4 (ETCDCTL_API=3) KV commands against the target: put/get/del/txn.

All tests here share one server and stay inside their own key namespace (fixture ``ns``)."""

import pytest

import compatlib as cl
from compatlib import etcdctl, txn_input

pytestmark = pytest.mark.etcdctl


def put(srv, key, value):
    """put via etcdctl and return the revision it created."""
    res = etcdctl(srv, "put", key, value, "-w", "json").json()
    return int(res["header"]["revision"])


def current_rev(srv):
    return int(etcdctl(srv, "get", "/no-such-key/compat", "-w", "json").json()["header"]["revision"])


def keys_of(res):
    return [cl.unb64(kv["key"]).decode() for kv in res.get("kvs", [])]


# ---------------------------------------------------------------------------------------------
# put / get
# ---------------------------------------------------------------------------------------------

def test_put_get_roundtrip(server, ns):
    k = ns + "greeting"
    assert etcdctl(server, "put", k, "hello world").stdout == "OK\n"
    assert etcdctl(server, "get", k).stdout == f"{k}\nhello world\n"
    # unicode, leading dash via "--"
    assert etcdctl(server, "put", "--", ns + "uni", "-ünïcødé-").stdout == "OK\n"
    assert etcdctl(server, "get", ns + "uni", "--print-value-only").stdout == "-ünïcødé-\n"
    # missing key: no output, success
    assert etcdctl(server, "get", ns + "missing").stdout == ""
    missing = etcdctl(server, "get", ns + "missing", "-w", "json").json()
    assert "kvs" not in missing and missing.get("count", 0) == 0
    # value from stdin
    assert etcdctl(server, "put", ns + "stdin", input="from stdin").stdout == "OK\n"
    assert etcdctl(server, "get", ns + "stdin", "--print-value-only").stdout == "from stdin\n"
    # empty value is a value
    assert etcdctl(server, "put", ns + "empty", "").stdout == "OK\n"
    res = etcdctl(server, "get", ns + "empty", "-w", "json").json()
    assert res["count"] == 1 and res["kvs"][0].get("value", "") == ""


def test_put_prev_kv_and_overwrite_bumps_version(server, ns):
    k = ns + "k"
    r1 = put(server, k, "v1")
    out = etcdctl(server, "put", k, "v2", "--prev-kv").stdout
    assert out == f"OK\n{k}\nv1\n"
    r3 = put(server, k, "v2")  # identical value still creates a revision
    assert r3 == r1 + 2
    kv = etcdctl(server, "get", k, "-w", "json").json()["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (r1, r3, 3)


def test_get_json_structure(server, ns):
    k = ns + "json"
    rev = put(server, k, "v")
    res = etcdctl(server, "get", k, "-w", "json").json()
    hdr = res["header"]
    for f in ("cluster_id", "member_id", "revision", "raft_term"):
        assert isinstance(hdr.get(f), int) and hdr[f] > 0, f"header.{f} missing/zero: {hdr}"
    assert hdr["revision"] == rev
    assert res["count"] == 1 and "more" not in res
    kv = res["kvs"][0]
    assert kv == {"key": cl.b64(k), "create_revision": rev, "mod_revision": rev, "version": 1,
                  "value": cl.b64("v")}


def test_get_prefix_range_and_from_key(server, ns):
    for k in ("a", "b", "b/1", "b/2", "c", "d"):
        put(server, ns + k, "val-" + k)
    assert keys_of(etcdctl(server, "get", ns + "b", "--prefix", "-w", "json").json()) == \
        [ns + "b", ns + "b/1", ns + "b/2"]
    # simple output: key, value lines
    assert etcdctl(server, "get", ns + "b/", "--prefix").stdout == \
        f"{ns}b/1\nval-b/1\n{ns}b/2\nval-b/2\n"
    # explicit [start, end)
    assert keys_of(etcdctl(server, "get", ns + "b", ns + "c", "-w", "json").json()) == \
        [ns + "b", ns + "b/1", ns + "b/2"]
    # end <= start: empty
    assert etcdctl(server, "get", ns + "c", ns + "a").stdout == ""
    # --from-key: everything >= key (other namespaces may follow; check the sorted prefix part)
    got = keys_of(etcdctl(server, "get", ns + "b/2", "--from-key", "-w", "json").json())
    assert got[:3] == [ns + "b/2", ns + "c", ns + "d"]
    assert got == sorted(got, key=lambda s: s.encode()) and all(g.encode() >= (ns + "b/2").encode() for g in got)
    # whole namespace via prefix, count
    res = etcdctl(server, "get", ns, "--prefix", "-w", "json").json()
    assert res["count"] == 6


def test_get_rev_history(server, ns):
    k = ns + "hist"
    r1 = put(server, k, "v1")
    r2 = put(server, k, "v2")
    r3 = int(etcdctl(server, "del", k, "-w", "json").json()["header"]["revision"])
    r4 = put(server, k, "v3")
    assert (r2, r3, r4) == (r1 + 1, r1 + 2, r1 + 3)

    def at(rev):
        return etcdctl(server, "get", k, f"--rev={rev}", "-w", "json").json()

    a = at(r1)
    assert a["kvs"][0]["value"] == cl.b64("v1") and a["kvs"][0]["version"] == 1
    # the header carries the *current* revision, not the requested one
    assert a["header"]["revision"] >= r4
    b = at(r2)["kvs"][0]
    assert (b["value"], b["version"], b["create_revision"], b["mod_revision"]) == (cl.b64("v2"), 2, r1, r2)
    assert "kvs" not in at(r3)
    d = at(r4)["kvs"][0]
    assert (d["value"], d["version"], d["create_revision"]) == (cl.b64("v3"), 1, r4)  # new life
    assert etcdctl(server, "get", k, "--rev=0", "--print-value-only").stdout == "v3\n"
    assert etcdctl(server, "get", k, f"--rev={r1}", "--print-value-only").stdout == "v1\n"


def test_get_limit_count_more(server, ns):
    for i in range(5):
        put(server, f"{ns}k{i}", str(i))
    res = etcdctl(server, "get", ns, "--prefix", "--limit=2", "-w", "json").json()
    assert keys_of(res) == [ns + "k0", ns + "k1"]
    assert res["more"] is True and res["count"] == 5
    res = etcdctl(server, "get", ns, "--prefix", "--limit=5", "-w", "json").json()
    assert len(res["kvs"]) == 5 and not res.get("more") and res["count"] == 5
    res = etcdctl(server, "get", ns, "--prefix", "--limit=0", "-w", "json").json()
    assert len(res["kvs"]) == 5
    assert etcdctl(server, "get", ns, "--prefix", "--limit=1", "--keys-only").stdout == f"{ns}k0\n\n"


def test_keys_only_and_print_value_only(server, ns):
    put(server, ns + "a", "1")
    put(server, ns + "b", "2")
    assert etcdctl(server, "get", ns, "--prefix", "--keys-only").stdout == f"{ns}a\n\n{ns}b\n\n"
    assert etcdctl(server, "get", ns, "--prefix", "--print-value-only").stdout == "1\n2\n"
    res = etcdctl(server, "get", ns, "--prefix", "--keys-only", "-w", "json").json()
    assert [("value" in kv) for kv in res["kvs"]] == [False, False]
    assert [kv["version"] for kv in res["kvs"]] == [1, 1]  # other fields kept
    # serializable read
    assert etcdctl(server, "get", ns + "a", "--consistency=s", "--print-value-only").stdout == "1\n"


# ---------------------------------------------------------------------------------------------
# sorting: every target x order (incl. no order, which the server must treat as ASCEND)
# ---------------------------------------------------------------------------------------------

SORT_PREFIX = "/compat-sort/"


@pytest.fixture(scope="module")
def sort_data(server):
    etcdctl(server, "del", SORT_PREFIX, "--prefix")
    # creation order c, a, d, b; final versions a=2 b=1 c=4 d=3; last mod order b, a, d, c;
    # values: a=zebra b=kiwi c=apple d=mango
    seq = [("c", "x1"), ("a", "x2"), ("d", "x3"), ("b", "kiwi"), ("c", "x4"), ("d", "x5"),
           ("c", "x6"), ("a", "zebra"), ("d", "mango"), ("c", "apple")]
    for k, v in seq:
        put(server, SORT_PREFIX + k, v)
    kvs = etcdctl(server, "get", SORT_PREFIX, "--prefix", "-w", "json").json()["kvs"]
    table = {cl.unb64(kv["key"]).decode(): kv for kv in kvs}
    assert sorted(kv["version"] for kv in kvs) == [1, 2, 3, 4]
    return table


SORT_FIELD = {"KEY": lambda kv: cl.unb64(kv["key"]), "CREATE": lambda kv: kv["create_revision"],
              "MODIFY": lambda kv: kv["mod_revision"], "VERSION": lambda kv: kv["version"],
              "VALUE": lambda kv: cl.unb64(kv["value"])}


@pytest.mark.parametrize("order", ["ASCEND", "DESCEND", None])
@pytest.mark.parametrize("target", ["KEY", "CREATE", "MODIFY", "VALUE", "VERSION"])
def test_sort_by(server, sort_data, target, order):
    args = ["get", SORT_PREFIX, "--prefix", "--keys-only", "-w", "json", f"--sort-by={target}"]
    if order:
        args.append(f"--order={order}")
    got = keys_of(etcdctl(server, *args).json())
    expected = sorted(sort_data, key=lambda k: SORT_FIELD[target](sort_data[k]),
                      reverse=(order == "DESCEND"))
    assert got == expected, f"sort {target}/{order or 'none'}"


def test_sort_with_limit_sorts_whole_range_first(server, sort_data):
    res = etcdctl(server, "get", SORT_PREFIX, "--prefix", "--sort-by=MODIFY", "--order=DESCEND",
                  "--limit=2", "-w", "json").json()
    assert keys_of(res) == [SORT_PREFIX + "c", SORT_PREFIX + "d"]
    assert res["more"] is True and res["count"] == 4
    res = etcdctl(server, "get", SORT_PREFIX, "--prefix", "--sort-by=VALUE", "--order=ASCEND",
                  "--limit=1", "--print-value-only").stdout
    assert res == "apple\n"


# ---------------------------------------------------------------------------------------------
# del
# ---------------------------------------------------------------------------------------------

def test_del_prefix_prev_kv_and_counts(server, ns):
    put(server, ns + "p/1", "one")
    put(server, ns + "p/2", "two")
    put(server, ns + "q", "q")
    assert etcdctl(server, "del", ns + "p/", "--prefix", "--prev-kv").stdout == \
        f"2\n{ns}p/1\none\n{ns}p/2\ntwo\n"
    assert etcdctl(server, "get", ns, "--prefix", "--keys-only").stdout == f"{ns}q\n\n"
    # deleting nothing succeeds, prints 0 and does not create a revision
    before = current_rev(server)
    res = etcdctl(server, "del", ns + "p/", "--prefix", "-w", "json").json()
    assert res.get("deleted", 0) == 0 and res["header"]["revision"] == before
    assert etcdctl(server, "del", ns + "nothing").stdout == "0\n"
    assert current_rev(server) == before
    # single delete with prev kv, json
    res = etcdctl(server, "del", ns + "q", "--prev-kv", "-w", "json").json()
    assert res["deleted"] == 1 and res["header"]["revision"] == before + 1
    assert [cl.unb64(kv["value"]) for kv in res["prev_kvs"]] == [b"q"]
    # range delete [a, c)
    for k in ("a", "b", "c"):
        put(server, ns + k, k)
    assert etcdctl(server, "del", ns + "a", ns + "c").stdout == "2\n"
    assert etcdctl(server, "get", ns, "--prefix", "--keys-only").stdout == f"{ns}c\n\n"


# ---------------------------------------------------------------------------------------------
# txn
# ---------------------------------------------------------------------------------------------

def txn(srv, compares, success, failure, json_out=False):
    args = ["txn"] + (["-w", "json"] if json_out else [])
    res = etcdctl(srv, *args, input=txn_input(compares, success, failure))
    return res.json() if json_out else res.stdout


@pytest.fixture
def txn_key(server, ns):
    k = ns + "t"
    r1 = put(server, k, "v1")
    r2 = put(server, k, "v2")
    return k, r1, r2  # create=r1, mod=r2, version=2, value=v2


@pytest.mark.parametrize("compare,holds", [
    ('value("{k}") = "v2"', True), ('value("{k}") = "v1"', False),
    ('value("{k}") != "v1"', True), ('value("{k}") > "v1"', True), ('value("{k}") < "v1"', False),
    ('version("{k}") = "2"', True), ('version("{k}") > "2"', False), ('ver("{k}") < "3"', True),
    ('version("{k}") != "2"', False),
    ('create("{k}") = "{r1}"', True), ('create("{k}") > "{r1}"', False), ('c("{k}") < "{r2}"', True),
    ('mod("{k}") = "{r2}"', True), ('mod("{k}") < "{r2}"', False), ('m("{k}") > "{r1}"', True),
    # missing keys: VERSION/CREATE/MOD compare as 0; VALUE compares are always false
    ('version("{k}-missing") = "0"', True), ('create("{k}-missing") = "0"', True),
    ('mod("{k}-missing") > "0"', False),
    ('value("{k}-missing") = ""', False), ('value("{k}-missing") != "x"', False),
])
def test_txn_compare_targets_both_branches(server, txn_key, compare, holds):
    k, r1, r2 = txn_key
    cmp = compare.format(k=k, r1=r1, r2=r2)
    out = txn(server, [cmp], [f"put {k}-then yes", f"get {k}"], [f"put {k}-else yes", f"get {k}"])
    branch = "then" if holds else "else"
    assert out == f"{'SUCCESS' if holds else 'FAILURE'}\n\nOK\n\n{k}\nv2\n", cmp
    assert etcdctl(server, "get", f"{k}-{branch}", "--print-value-only").stdout == "yes\n"
    other = "else" if holds else "then"
    assert etcdctl(server, "get", f"{k}-{other}").stdout == ""


def test_txn_multiple_compares_are_anded(server, txn_key):
    k, r1, r2 = txn_key
    ok = [f'value("{k}") = "v2"', f'version("{k}") = "2"', f'create("{k}") = "{r1}"', f'mod("{k}") = "{r2}"']
    assert txn(server, ok, [f"put {k}-all ok"], []).startswith("SUCCESS")
    bad = ok[:-1] + [f'mod("{k}") = "{r1}"']
    assert txn(server, bad, [f"put {k}-all no"], [f"get {k}-all"]) == f"FAILURE\n\n{k}-all\nok\n"


def test_txn_json_and_revisions(server, ns):
    k = ns + "j"
    r0 = put(server, k, "v1")
    res = txn(server, [f'value("{k}") = "v1"'],
              [f"put {k} v2", f"get {k}", f"put {k}-b x", f"del {k}-nothing", f"get {k} --prefix --keys-only"],
              [], json_out=True)
    assert res["succeeded"] is True
    new_rev = r0 + 1  # one revision for the whole txn
    assert res["header"]["revision"] == new_rev
    kinds = [list(r["Response"].keys())[0] for r in res["responses"]]
    assert kinds == ["ResponsePut", "ResponseRange", "ResponsePut", "ResponseDeleteRange", "ResponseRange"]
    rng = res["responses"][1]["Response"]["ResponseRange"]
    # a range after a put in the same txn sees the put
    assert rng["kvs"][0]["value"] == cl.b64("v2") and rng["kvs"][0]["mod_revision"] == new_rev
    assert rng["kvs"][0]["version"] == 2
    keys = res["responses"][4]["Response"]["ResponseRange"]
    assert [cl.unb64(kv["key"]).decode() for kv in keys["kvs"]] == [k, k + "-b"]
    assert all("value" not in kv for kv in keys["kvs"])
    assert res["responses"][3]["Response"]["ResponseDeleteRange"].get("deleted", 0) == 0
    # both puts share the new revision
    kv = etcdctl(server, "get", k + "-b", "-w", "json").json()["kvs"][0]
    assert kv["create_revision"] == new_rev


def test_txn_failure_json_and_read_only_txn_keeps_revision(server, ns):
    k = ns + "ro"
    r0 = put(server, k, "v1")
    res = txn(server, [f'value("{k}") = "nope"'], [f"put {k} changed"], [f"get {k}"], json_out=True)
    assert not res.get("succeeded")
    assert res["header"]["revision"] == r0  # read-only branch: no new revision
    assert res["responses"][0]["Response"]["ResponseRange"]["kvs"][0]["value"] == cl.b64("v1")
    # empty txn (no compares, no ops) succeeds without a revision
    res = txn(server, [], [], [], json_out=True)
    assert res["succeeded"] is True and res["header"]["revision"] == r0
    assert current_rev(server) == r0


def test_txn_delete_with_prev_kv_and_prefix_ops(server, ns):
    for i in range(3):
        put(server, f"{ns}d/{i}", f"v{i}")
    out = txn(server, [f'create("{ns}d/0") > "0"'], [f"del {ns}d/ --prefix --prev-kv"], [])
    assert out == f"SUCCESS\n\n3\n{ns}d/0\nv0\n{ns}d/1\nv1\n{ns}d/2\nv2\n"
    assert etcdctl(server, "get", ns + "d/", "--prefix").stdout == ""
