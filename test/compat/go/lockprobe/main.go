// lockprobe: Go clientv3 (etcd 3.4) leases, concurrency.Mutex and concurrency.Election against
// a Tidemark (or etcd) server, for test/compat/test_go_lock.py. Built offline in GOPATH mode
// like compatprobe.
//
// usage: lockprobe -endpoint 127.0.0.1:PORT -prefix /unique/prefix/
//
// Every wait has a deadline (context timeouts); nothing sleeps through a TTL. Each step is
// logged; the first failure prints "FAIL <step>: <why>" and exits 1; success prints "OK <n> steps".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
)

var (
	endpoint = flag.String("endpoint", "127.0.0.1:2379", "server endpoint host:port")
	prefix   = flag.String("prefix", "/lockprobe/", "unused key prefix")
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

func begin(s string) {
	step = s
	steps++
	fmt.Printf("step %d: %s\n", steps, s)
}

func ctxFor(d time.Duration) context.Context {
	c, _ := context.WithTimeout(context.Background(), d) //nolint:govet // process is short-lived
	return c
}

func ctx() context.Context { return ctxFor(15 * time.Second) }

// waitCount polls until exactly n keys exist under prefix (10 s deadline).
func waitCount(cli *clientv3.Client, prefix string, n int64, what string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		gr, err := cli.Get(ctx(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		must(err)
		if gr.Count == n {
			return
		}
		expect(time.Now().Before(deadline), "%s", what)
		time.Sleep(50 * time.Millisecond)
	}
}

func main() {
	flag.Parse()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*endpoint}, DialTimeout: 5 * time.Second})
	must(err)
	defer cli.Close()

	begin("KeepAlive channel keeps a 2 s lease alive")
	lg, err := cli.Grant(ctx(), 2)
	must(err)
	expect(lg.TTL == 2, "granted TTL %d", lg.TTL)
	_, err = cli.Put(ctx(), *prefix+"ka", "v", clientv3.WithLease(lg.ID))
	must(err)
	kctx, kcancel := context.WithCancel(context.Background())
	ch, err := cli.KeepAlive(kctx, lg.ID)
	must(err)
	// Go renews every TTL/3: five replies span more than the 2 s TTL.
	for i := 0; i < 5; i++ {
		select {
		case r, ok := <-ch:
			expect(ok, "keep-alive channel closed early")
			expect(r.TTL == 2, "keep-alive TTL %d", r.TTL)
		case <-time.After(10 * time.Second):
			fail("no keep-alive reply within 10 s")
		}
	}
	gr, err := cli.Get(ctx(), *prefix+"ka")
	must(err)
	expect(gr.Count == 1, "key lost while kept alive")
	kcancel()

	begin("expiry deletes the key and TimeToLive reports -1")
	deadline := time.Now().Add(15 * time.Second)
	for {
		gr, err = cli.Get(ctx(), *prefix+"ka")
		must(err)
		if gr.Count == 0 {
			break
		}
		expect(time.Now().Before(deadline), "lease never expired")
		time.Sleep(100 * time.Millisecond)
	}
	ttl, err := cli.TimeToLive(ctx(), lg.ID)
	must(err)
	expect(ttl.TTL == -1 && ttl.GrantedTTL == 0, "TimeToLive of expired lease: %d/%d", ttl.TTL, ttl.GrantedTTL)
	_, err = cli.KeepAliveOnce(ctx(), lg.ID)
	expect(err == rpctypes.ErrLeaseNotFound, "KeepAliveOnce of expired lease: %v", err)

	begin("concurrency.Mutex: waiter acquires after Unlock")
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	must(err)
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	must(err)
	m1 := concurrency.NewMutex(s1, *prefix+"mutex")
	m2 := concurrency.NewMutex(s2, *prefix+"mutex")
	must(m1.Lock(ctx()))
	got := make(chan error, 1)
	go func() { got <- m2.Lock(ctx()) }()
	// m2 is queued once its key exists; it must still be waiting.
	waitCount(cli, *prefix+"mutex/", 2, "second waiter never queued")
	select {
	case err = <-got:
		fail("second mutex acquired a held lock (err=%v)", err)
	default:
	}
	must(m1.Unlock(ctx()))
	select {
	case err = <-got:
		must(err)
	case <-time.After(15 * time.Second):
		fail("waiter not woken by Unlock")
	}

	begin("concurrency.Mutex: waiter acquires after the holder's session expires")
	s3, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
	must(err)
	m3 := concurrency.NewMutex(s3, *prefix+"mutex")
	go func() { got <- m3.Lock(ctx()) }()
	waitCount(cli, *prefix+"mutex/", 2, "third waiter never queued")
	s2.Orphan() // stop keep-alives without revoking: the server must expire the lease
	select {
	case err = <-got:
		must(err)
	case <-time.After(20 * time.Second):
		fail("waiter not woken by lease expiry")
	}
	must(m3.Unlock(ctx()))
	must(s1.Close())
	must(s3.Close())

	begin("concurrency.Election: campaign, observe, resign hand-over")
	e1s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	must(err)
	e2s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	must(err)
	e1 := concurrency.NewElection(e1s, *prefix+"election")
	e2 := concurrency.NewElection(e2s, *prefix+"election")
	must(e1.Campaign(ctx(), "alpha"))
	octx, ocancel := context.WithCancel(context.Background())
	defer ocancel()
	obs := e1.Observe(octx)
	expectLeader := func(want string) {
		for {
			select {
			case r, ok := <-obs:
				expect(ok, "observe channel closed")
				if len(r.Kvs) > 0 && string(r.Kvs[0].Value) == want {
					return
				}
			case <-time.After(15 * time.Second):
				fail("observer never saw leader %q", want)
			}
		}
	}
	expectLeader("alpha")
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx(), "beta") }()
	waitCount(cli, *prefix+"election/", 2, "second candidate never campaigned")
	select {
	case err = <-won:
		fail("second candidate won a held election (err=%v)", err)
	default:
	}
	must(e1.Proclaim(ctx(), "alpha2"))
	expectLeader("alpha2")
	must(e1.Resign(ctx()))
	select {
	case err = <-won:
		must(err)
	case <-time.After(15 * time.Second):
		fail("second candidate not elected after resign")
	}
	expectLeader("beta")
	lr, err := e2.Leader(ctx())
	must(err)
	expect(string(lr.Kvs[0].Value) == "beta", "leader %q", lr.Kvs[0].Value)

	begin("concurrency.Election: leadership passes on when the leader's lease expires")
	won = make(chan error, 1)
	go func() { won <- e1.Campaign(ctx(), "gamma") }()
	waitCount(cli, *prefix+"election/", 2, "candidate never campaigned again")
	e2s.Orphan()
	select {
	case err = <-won:
		must(err)
	case <-time.After(20 * time.Second):
		fail("candidate not elected after the leader's lease expired")
	}
	expectLeader("gamma")
	must(e1.Resign(ctx()))
	must(e1s.Close())

	fmt.Printf("OK %d steps\n", steps)
}
