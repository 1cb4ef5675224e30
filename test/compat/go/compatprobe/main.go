// compatprobe: Go clientv3 (etcd 3.4, go.etcd.io/etcd/clientv3) compatibility probe for
// Tidemark (test/compat). Built offline in GOPATH mode against Debian's
// golang-etcd-server-dev sources:
//
//	GO111MODULE=off GOPROXY=off GOPATH=<dir>/gopath:/usr/share/gocode go build
//
// usage: compatprobe -endpoint 127.0.0.1:PORT -name MEMBERNAME
//
// It needs a FRESH server (store at revision 1): revisions are asserted exactly.
// Every step is logged to stdout; the first failed assertion prints "FAIL <step>: <why>" and
// exits 1. Success prints "OK <n> steps" and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

var (
	endpoint = flag.String("endpoint", "127.0.0.1:2379", "server endpoint host:port")
	name     = flag.String("name", "", "expected member name")
	step     = "<setup>"
	steps    = 0
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL %s: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func must(err error) {
	if err != nil {
		fail("unexpected error: %v", err)
	}
}

func expect(cond bool, format string, args ...interface{}) {
	if !cond {
		fail(format, args...)
	}
}

func eq(got, want interface{}, what string) {
	if !reflect.DeepEqual(got, want) {
		fail("%s: got %#v, want %#v", what, got, want)
	}
}

func begin(s string) {
	step = s
	steps++
	fmt.Printf("step %d: %s\n", steps, s)
}

func ctx() context.Context {
	c, _ := context.WithTimeout(context.Background(), 10*time.Second)
	return c
}

func keys(kvs []*mvccpb.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

func main() {
	flag.Parse()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{*endpoint},
		DialTimeout: 5 * time.Second,
	})
	must(err)
	defer cli.Close()

	begin("Status")
	st, err := cli.Status(ctx(), *endpoint)
	must(err)
	expect(st.Header != nil, "Status without header")
	expect(st.Header.MemberId != 0 && st.Header.ClusterId != 0, "zero ids in header %v", st.Header)
	eq(st.Leader, st.Header.MemberId, "Status.Leader == header.member_id")
	expect(strings.HasPrefix(st.Version, "3.4."), "version %q", st.Version)
	expect(st.DbSize > 0, "dbSize %d", st.DbSize)
	expect(st.RaftTerm > 0 && st.RaftIndex > 0, "raft term/index %d/%d", st.RaftTerm, st.RaftIndex)
	memberID := st.Header.MemberId

	begin("MemberList")
	ml, err := cli.MemberList(ctx())
	must(err)
	expect(ml.Header != nil, "MemberList without header")
	eq(len(ml.Members), 1, "member count")
	m := ml.Members[0]
	eq(m.ID, memberID, "member ID")
	if *name != "" {
		eq(m.Name, *name, "member name")
	}
	eq(m.ClientURLs, []string{"http://" + *endpoint}, "clientURLs")
	expect(len(m.PeerURLs) >= 1, "no peerURLs")
	expect(!m.IsLearner, "isLearner")

	begin("Get on empty store")
	gr, err := cli.Get(ctx(), "a")
	must(err)
	eq(gr.Header.Revision, int64(1), "fresh store revision")
	eq(gr.Count, int64(0), "count")
	eq(len(gr.Kvs), 0, "kvs")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix())
	must(err)
	eq(gr.Count, int64(0), "count of everything")

	begin("Put")
	pr, err := cli.Put(ctx(), "a", "1")
	must(err)
	eq(pr.Header.Revision, int64(2), "first write revision")
	pr, err = cli.Put(ctx(), "b", "2")
	must(err)
	eq(pr.Header.Revision, int64(3), "second write revision")
	pr, err = cli.Put(ctx(), "a", "11", clientv3.WithPrevKV())
	must(err)
	eq(pr.Header.Revision, int64(4), "third write revision")
	expect(pr.PrevKv != nil && string(pr.PrevKv.Value) == "1", "prev kv %v", pr.PrevKv)
	_, err = cli.Put(ctx(), "c", "3")
	must(err)
	_, err = cli.Put(ctx(), "d\xff", "4")
	must(err)
	_, err = cli.Put(ctx(), "d\xff\xff", "5")
	must(err) // rev 7

	begin("Get variants")
	gr, err = cli.Get(ctx(), "a")
	must(err)
	kv := gr.Kvs[0]
	eq([]interface{}{string(kv.Value), kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease},
		[]interface{}{"11", int64(2), int64(4), int64(2), int64(0)}, "kv a")
	eq(gr.Header.Revision, int64(7), "header revision")
	gr, err = cli.Get(ctx(), "a", clientv3.WithRev(2))
	must(err)
	eq(string(gr.Kvs[0].Value), "1", "value at rev 2")
	eq(gr.Header.Revision, int64(7), "historical read header carries current revision")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithLimit(2))
	must(err)
	eq(keys(gr.Kvs), []string{"a", "b"}, "limit 2")
	eq(gr.More, true, "more")
	eq(gr.Count, int64(5), "count with limit")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithCountOnly())
	must(err)
	eq(gr.Count, int64(5), "count only")
	eq(len(gr.Kvs), 0, "count only kvs")
	gr, err = cli.Get(ctx(), "b", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	must(err)
	eq(keys(gr.Kvs), []string{"b", "c", "d\xff", "d\xff\xff"}, "from key")
	expect(len(gr.Kvs[0].Value) == 0, "keys only returned a value")
	gr, err = cli.Get(ctx(), "d\xff", clientv3.WithPrefix())
	must(err)
	eq(keys(gr.Kvs), []string{"d\xff", "d\xff\xff"}, "prefix with 0xff carry")
	gr, err = cli.Get(ctx(), "a", clientv3.WithRange("c"))
	must(err)
	eq(keys(gr.Kvs), []string{"a", "b"}, "range [a,c)")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend))
	must(err)
	eq(keys(gr.Kvs), []string{"d\xff\xff", "d\xff", "c", "a", "b"}, "sort by mod desc")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend), clientv3.WithLimit(1))
	must(err)
	eq(keys(gr.Kvs), []string{"a"}, "sort by value asc limit 1") // "11" < "2"
	// filters used by concurrency (lock/election)
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithMaxCreateRev(3),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(1))
	must(err)
	eq(keys(gr.Kvs), []string{"b"}, "max create rev filter")
	eq(gr.Count, int64(5), "count is not reduced by filters")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithMinModRev(5))
	must(err)
	eq(keys(gr.Kvs), []string{"c", "d\xff", "d\xff\xff"}, "min mod rev filter")
	gr, err = cli.Get(ctx(), "a", clientv3.WithSerializable())
	must(err)
	eq(string(gr.Kvs[0].Value), "11", "serializable get")

	begin("Txn success")
	tr, err := cli.Txn(ctx()).If(
		clientv3.Compare(clientv3.Value("a"), "=", "11"),
		clientv3.Compare(clientv3.Version("a"), "=", 2),
		clientv3.Compare(clientv3.CreateRevision("a"), "=", 2),
		clientv3.Compare(clientv3.ModRevision("a"), "<", 5),
		clientv3.Compare(clientv3.LeaseValue("a"), "=", clientv3.NoLease),
	).Then(
		clientv3.OpPut("t1", "x"), clientv3.OpGet("t1"), clientv3.OpPut("t2", "y"),
	).Else(
		clientv3.OpPut("e1", "x"),
	).Commit()
	must(err)
	eq(tr.Succeeded, true, "succeeded")
	eq(tr.Header.Revision, int64(8), "txn revision")
	eq(len(tr.Responses), 3, "responses")
	rr := tr.Responses[1].GetResponseRange()
	expect(rr != nil && len(rr.Kvs) == 1 && string(rr.Kvs[0].Value) == "x", "range after put in txn: %v", rr)
	gr, err = cli.Get(ctx(), "t2")
	must(err)
	eq(gr.Kvs[0].CreateRevision, tr.Header.Revision, "txn writes get the txn header revision")
	eq(gr.Kvs[0].ModRevision, int64(8), "same revision for all txn writes")

	begin("Txn failure")
	tr, err = cli.Txn(ctx()).If(clientv3.Compare(clientv3.Value("a"), "=", "nope")).
		Then(clientv3.OpPut("t3", "x")).Else(clientv3.OpGet("a"), clientv3.OpDelete("t1", clientv3.WithPrevKV())).Commit()
	must(err)
	eq(tr.Succeeded, false, "succeeded")
	eq(tr.Header.Revision, int64(9), "delete in else branch bumps revision")
	dr := tr.Responses[1].GetResponseDeleteRange()
	expect(dr != nil && dr.Deleted == 1 && len(dr.PrevKvs) == 1, "delete response %v", dr)
	tr, err = cli.Txn(ctx()).If(clientv3.Compare(clientv3.Version("missing"), "=", 0)).Then(clientv3.OpGet("a")).Commit()
	must(err)
	eq(tr.Succeeded, true, "version of missing key is 0")
	eq(tr.Header.Revision, int64(9), "read-only txn keeps revision")
	tr, err = cli.Txn(ctx()).If(clientv3.Compare(clientv3.Value("missing"), "!=", "x")).Commit()
	must(err)
	eq(tr.Succeeded, false, "value compare on missing key is false")

	begin("Nested Txn")
	tr, err = cli.Txn(ctx()).Then(
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value("a"), "=", "11")},
			[]clientv3.Op{clientv3.OpPut("n1", "then")}, []clientv3.Op{clientv3.OpPut("n1", "else")}),
		clientv3.OpPut("n2", "x"),
	).Commit()
	must(err)
	eq(tr.Succeeded, true, "outer")
	nt := tr.Responses[0].GetResponseTxn()
	expect(nt != nil && nt.Succeeded, "nested txn response %v", nt)
	gr, err = cli.Get(ctx(), "n1")
	must(err)
	eq(string(gr.Kvs[0].Value), "then", "nested then branch")
	eq(gr.Kvs[0].ModRevision, int64(10), "nested write revision")

	begin("Delete")
	dresp, err := cli.Delete(ctx(), "n", clientv3.WithPrefix(), clientv3.WithPrevKV())
	must(err)
	eq(dresp.Deleted, int64(2), "deleted")
	eq(dresp.Header.Revision, int64(11), "delete revision")
	eq(keys(dresp.PrevKvs), []string{"n1", "n2"}, "prev kvs")
	dresp, err = cli.Delete(ctx(), "nothing")
	must(err)
	eq(dresp.Deleted, int64(0), "deleted nothing")
	eq(dresp.Header.Revision, int64(11), "no-op delete keeps revision")

	begin("Typed errors")
	_, err = cli.Put(ctx(), "", "v")
	eq(err, rpctypes.ErrEmptyKey, "empty key")
	_, err = cli.Put(ctx(), "x", "v", clientv3.WithLease(clientv3.LeaseID(0x1234abcd)))
	eq(err, rpctypes.ErrLeaseNotFound, "missing lease")
	ops := []clientv3.Op{}
	for i := 0; i < 129; i++ {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("many%d", i), "v"))
	}
	_, err = cli.Txn(ctx()).Then(ops...).Commit()
	eq(err, rpctypes.ErrTooManyOps, "129 ops")
	_, err = cli.Txn(ctx()).Then(clientv3.OpPut("dup", "1"), clientv3.OpPut("dup", "2")).Commit()
	eq(err, rpctypes.ErrDuplicateKey, "duplicate key")
	_, err = cli.Get(ctx(), "a", clientv3.WithRev(1000))
	eq(err, rpctypes.ErrFutureRev, "future revision")
	_, err = cli.Put(ctx(), "x", "", clientv3.WithIgnoreValue())
	eq(err, rpctypes.ErrKeyNotFound, "ignore value on missing key")
	_, err = cli.Put(ctx(), "big", strings.Repeat("v", 1600000))
	eq(err, rpctypes.ErrRequestTooLarge, "request too large")
	gr, err = cli.Get(ctx(), "", clientv3.WithPrefix(), clientv3.WithCountOnly())
	must(err)
	eq(gr.Header.Revision, int64(11), "failed requests did not change the store")

	begin("Lease")
	lg, err := cli.Grant(ctx(), 30)
	must(err)
	eq(lg.TTL, int64(30), "granted TTL")
	expect(lg.ID > 0, "lease id %d", lg.ID)
	_, err = cli.Put(ctx(), "leased", "l", clientv3.WithLease(lg.ID))
	must(err) // rev 12
	tr, err = cli.Txn(ctx()).If(clientv3.Compare(clientv3.LeaseValue("leased"), "=", lg.ID)).Commit()
	must(err)
	eq(tr.Succeeded, true, "lease compare")
	ttl, err := cli.TimeToLive(ctx(), lg.ID, clientv3.WithAttachedKeys())
	must(err)
	eq(ttl.GrantedTTL, int64(30), "granted ttl")
	expect(ttl.TTL > 0 && ttl.TTL <= 30, "remaining ttl %d", ttl.TTL)
	eq(len(ttl.Keys), 1, "attached keys")
	ka, err := cli.KeepAliveOnce(ctx(), lg.ID)
	must(err)
	eq(ka.TTL, int64(30), "keepalive ttl")
	ls, err := cli.Leases(ctx())
	must(err)
	eq(len(ls.Leases), 1, "lease list")
	_, err = cli.Revoke(ctx(), lg.ID)
	must(err) // rev 13 (deletes "leased")
	gr, err = cli.Get(ctx(), "leased")
	must(err)
	eq(gr.Count, int64(0), "leased key removed by revoke")
	eq(gr.Header.Revision, int64(13), "revoke revision")
	_, err = cli.KeepAliveOnce(ctx(), lg.ID)
	eq(err, rpctypes.ErrLeaseNotFound, "keepalive revoked lease")
	_, err = cli.Revoke(ctx(), lg.ID)
	eq(err, rpctypes.ErrLeaseNotFound, "revoke revoked lease")
	ttl, err = cli.TimeToLive(ctx(), lg.ID)
	must(err)
	eq(ttl.TTL, int64(-1), "ttl of revoked lease")

	begin("Watch")
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	wch := cli.Watch(clientv3.WithRequireLeader(wctx), "w", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	created := <-wch
	expect(created.Created, "first watch response is not the created notification: %+v", created)
	eq(created.Header.Revision, int64(13), "created header revision")
	_, err = cli.Put(ctx(), "w1", "a")
	must(err)
	_, err = cli.Put(ctx(), "w1", "b")
	must(err)
	_, err = cli.Delete(ctx(), "w1")
	must(err) // rev 16
	var evs []*clientv3.Event
	for len(evs) < 3 {
		wr, ok := <-wch
		expect(ok, "watch channel closed early (err %v)", wr.Err())
		must(wr.Err())
		evs = append(evs, wr.Events...)
	}
	eq(evs[0].Type, mvccpb.PUT, "event 0")
	eq(evs[1].Type, mvccpb.PUT, "event 1")
	eq(evs[2].Type, mvccpb.DELETE, "event 2")
	eq(string(evs[1].PrevKv.Value), "a", "prev kv of event 1")
	eq(evs[2].Kv.ModRevision, int64(16), "delete event revision")
	wcancel()

	begin("Compact")
	cr, err := cli.Compact(ctx(), 14)
	must(err)
	expect(cr.Header != nil, "compact without header")
	_, err = cli.Get(ctx(), "a", clientv3.WithRev(13))
	eq(err, rpctypes.ErrCompacted, "get below compaction")
	gr, err = cli.Get(ctx(), "a", clientv3.WithRev(14))
	must(err)
	eq(string(gr.Kvs[0].Value), "11", "get at compaction revision")
	_, err = cli.Compact(ctx(), 14)
	eq(err, rpctypes.ErrCompacted, "compact again")
	_, err = cli.Compact(ctx(), 100)
	eq(err, rpctypes.ErrFutureRev, "compact future")
	_, err = cli.Put(ctx(), "w1", "c")
	must(err) // rev 17
	_, err = cli.Compact(ctx(), 17, clientv3.WithCompactPhysical())
	must(err)

	begin("Watch compacted revision")
	// Keep one watcher open while creating the next one: clientv3 3.4 tears its shared watch
	// stream down when the last watcher on it goes away, racing with a new Watch call.
	wctx, wcancel = context.WithTimeout(context.Background(), 10*time.Second)
	// (a watch starting exactly at the compaction revision is allowed; the latest revision of a
	// live key survives compaction, a tombstone at or below it does not)
	replay := cli.Watch(wctx, "w1", clientv3.WithRev(17))
	wr := <-replay
	must(wr.Err())
	expect(len(wr.Events) == 1, "replay from the compaction revision: %+v", wr)
	eq(wr.Events[0].Type, mvccpb.PUT, "replayed event")
	eq(string(wr.Events[0].Kv.Value), "c", "replayed value")
	eq(wr.Events[0].Kv.CreateRevision, int64(17), "replayed create revision")
	compacted := cli.Watch(wctx, "w1", clientv3.WithRev(2))
	wr = <-compacted
	eq(wr.Err(), rpctypes.ErrCompacted, "watch from compacted revision")
	eq(wr.CompactRevision, int64(17), "compact revision in watch response")
	wcancel()

	begin("HashKV")
	hk, err := cli.HashKV(ctx(), *endpoint, 0)
	must(err)
	eq(hk.CompactRevision, int64(17), "hashkv compact revision")
	eq(hk.Header.Revision, int64(17), "hashkv header revision")
	hk2, err := cli.HashKV(ctx(), *endpoint, 0)
	must(err)
	eq(hk2.Hash, hk.Hash, "hashkv stable")

	begin("Maintenance")
	_, err = cli.Defragment(ctx(), *endpoint)
	must(err)
	al, err := cli.AlarmList(ctx())
	must(err)
	eq(len(al.Alarms), 0, "alarms")

	begin("concurrency.Mutex")
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	must(err)
	mu := concurrency.NewMutex(sess, "/lock/")
	must(mu.Lock(ctx()))
	sess2, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	must(err)
	mu2 := concurrency.NewMutex(sess2, "/lock/")
	tctx, tcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = mu2.Lock(tctx)
	tcancel()
	expect(err != nil, "second mutex acquired a held lock")
	must(mu.Unlock(ctx()))
	must(mu2.Lock(ctx()))
	must(mu2.Unlock(ctx()))
	must(sess.Close())
	must(sess2.Close())

	fmt.Printf("OK %d steps\n", steps)
}
