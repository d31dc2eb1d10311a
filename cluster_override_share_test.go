package multivalue

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// sharedCorefile is a block with a cluster on endpoint, the admin API on
// adminAddr and www A 127.0.0.1 and 127.0.0.2 (unchecked: healthy).
func sharedCorefile(endpoint, adminAddr string) string {
	return fmt.Sprintf(`multivalue {
    admin %s
    cluster etcd %s {
        replica %%[1]s
        lease %s
    }
    records www A {
        127.0.0.1
        127.0.0.2
    }
}
`, adminAddr, endpoint, testLease)
}

// answers are the addresses the replica answers www A with.
func (r *replica) answers() []string {
	var out []string
	for _, rr := range r.set("www").healthyRRs() {
		out = append(out, rr.(*dns.A).A.String())
	}
	slices.Sort(out)
	return out
}

// TestClusterSharedOverrides: an override set or removed through one
// replica's admin API, or put in etcd by hand, applies on every replica.
func TestClusterSharedOverrides(t *testing.T) {
	etcd := startEtcd(t)
	var rs []*replica
	var admins []*adminClient
	for _, id := range []string{"r1", "r2", "r3"} {
		addr := "127.0.0.1:" + freeTCPPort(t)
		rs = append(rs, startReplica(t, id, sharedCorefile(etcd.url, addr)))
		admins = append(admins, newAdminClient(t, addr))
	}
	if !eventually(20*time.Second, func() bool {
		for _, r := range rs {
			if !r.up() {
				return false
			}
		}
		return true
	}) {
		t.Fatal("replicas not connected to etcd after 20s")
	}
	prefix := rs[0].member().conn.prefix
	cli := etcd.client()

	// within waits up to a second for every replica to answer with want.
	within := func(what string, start time.Time, want ...string) time.Duration {
		t.Helper()
		if !eventually(time.Second, func() bool {
			for _, r := range rs {
				if !slices.Equal(r.answers(), want) {
					return false
				}
			}
			return true
		}) {
			for _, r := range rs {
				t.Logf("%s answers %v", r.id, r.answers())
			}
			t.Fatalf("%s: not every replica answers %v within 1s", what, want)
		}
		return time.Since(start)
	}
	both := []string{"127.0.0.1", "127.0.0.2"}
	within("at start", time.Now(), both...)
	logs := captureLog(t)

	// Drain through r1's admin API: stored in etcd, out of every answer.
	drain := map[string]string{"name": "www.example.org", "type": "A", "value": "127.0.0.2", "state": "drain", "reason": "maintenance", "ttl": "1h"}
	start := time.Now()
	admins[0].must(200, "POST", "/v1/overrides", drain, nil)
	d := within("drained through r1", start, "127.0.0.1")
	t.Logf("drain through r1's admin API -> out of the answers of all three: %v", d)
	key := prefix + "override/value/www.example.org./A/127.0.0.2"
	if _, ok := etcd.keys(cli, prefix+"override/")[key]; !ok {
		t.Fatalf("etcd holds %v, want %s", etcd.keys(cli, prefix+"override/"), key)
	}
	var listed struct {
		Overrides []overrideListed `json:"overrides"`
	}
	admins[2].must(200, "GET", "/v1/overrides", nil, &listed)
	if len(listed.Overrides) != 1 || listed.Overrides[0].State != "drain" || listed.Overrides[0].Reason != "maintenance" || listed.Overrides[0].Expires == nil {
		t.Fatalf("r3 lists %+v, want the drain with its reason and expiry", listed.Overrides)
	}
	// The absolute expiry is kept: the same on every replica.
	if e := rs[0].e.ops.overrides.list(time.Now())[0].expires; !rs[1].e.ops.overrides.list(time.Now())[0].expires.Equal(e) {
		t.Errorf("r2's expiry %v differs from r1's %v", rs[1].e.ops.overrides.list(time.Now())[0].expires, e)
	}

	// Removed through r1's admin API: back everywhere, gone from etcd.
	start = time.Now()
	admins[0].must(200, "DELETE", "/v1/overrides", map[string]string{"name": "www.example.org", "type": "A", "value": "127.0.0.2"}, nil)
	d = within("removed through r1", start, both...)
	t.Logf("delete through r1's admin API -> back in the answers of all three: %v", d)
	if ks := etcd.keys(cli, prefix+"override/"); len(ks) != 0 {
		t.Fatalf("etcd still holds %v", ks)
	}

	// Put by hand, as etcdctl would, under a key of the operator's choosing.
	manual := prefix + "override/manual/www-1"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start = time.Now()
	if _, err := cli.Put(ctx, manual, `{"name": "www.example.org", "type": "A", "value": "127.0.0.1", "state": "drain"}`); err != nil {
		t.Fatal(err)
	}
	d = within("put in etcd", start, "127.0.0.2")
	t.Logf("put in etcd -> out of the answers of all three: %v", d)
	// Removed through r3's admin API: deleted under the operator's key.
	admins[2].must(200, "DELETE", "/v1/overrides", map[string]string{"name": "www.example.org", "type": "A", "value": "127.0.0.1"}, nil)
	within("removed through r3", time.Now(), both...)
	if ks := etcd.keys(cli, prefix+"override/"); len(ks) != 0 {
		t.Fatalf("etcd still holds %v", ks)
	}

	// Put by hand again, then deleted by hand.
	if _, err := cli.Put(ctx, prefix+"override/manual/www-2", `{"name": "www.example.org.", "type": "a", "value": "127.0.0.2", "state": "drain"}`); err != nil {
		t.Fatal(err)
	}
	within("put in etcd again", time.Now(), "127.0.0.1")
	if _, err := cli.Delete(ctx, prefix+"override/manual/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	within("deleted in etcd", time.Now(), both...)
	for _, r := range rs {
		if n := len(r.e.ops.overrides.list(time.Now())); n != 0 {
			t.Errorf("%s still holds %d overrides", r.id, n)
		}
	}

	// Every replica logged the changes from etcd at INFO; r1 set it itself.
	for _, want := range []string{
		"[INFO] plugin/multivalue: override drain set from etcd on www.example.org. A 127.0.0.2, until ",
		"[INFO] plugin/multivalue: override drain removed (deleted in etcd) from www.example.org. A 127.0.0.2",
		"[INFO] plugin/multivalue: override drain set on www.example.org. A 127.0.0.2, until ",
		"[INFO] plugin/multivalue: override drain removed from www.example.org. A 127.0.0.2",
	} {
		if n, wantN := len(logs.lines(want, "maintenance")), map[bool]int{true: 2, false: 1}[strings.Contains(want, "etcd")]; n != wantN {
			t.Errorf("%d log lines %q, want %d: %q", n, want, wantN, logs.lines("override"))
		}
	}

	// A local-only override (set while no member was watched) is not
	// removed by a sync.
	local := &override{key: valueKey(rs[1].set("www"), rs[1].set("www").values[1]), value: "127.0.0.2", state: overrideDrain, created: time.Now()}
	rs[1].e.ops.set(local)
	if _, err := cli.Put(ctx, prefix+"override/manual/other", `{"target": "192.0.2.1", "state": "down"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, prefix+"override/manual/other"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := rs[1].answers(); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("r2 answers %v after a sync: its local drain was removed", got)
	}
}

// TestClusterStatusVotes: in a cluster, the status API lists each check's
// votes: every live replica's verdict, this replica's included; and when one
// replica's own verdict differs, its vote says so while the value's status
// is the consensus.
func TestClusterStatusVotes(t *testing.T) {
	etcd := startEtcd(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	var rs []*replica
	var admins []*adminClient
	for _, id := range []string{"r1", "r2", "r3"} {
		addr := "127.0.0.1:" + freeTCPPort(t)
		rs = append(rs, startReplica(t, id, fmt.Sprintf(`multivalue {
    admin %s
    cluster etcd %s {
        replica %%[1]s
        lease %s
    }
    health_check web {
        protocol tcp
        port %s
        interval 1h
        timeout 500ms
        failure_threshold 1
    }
    records www A {
        health_check web
        127.0.0.1
    }
}
`, addr, etcd.url, testLease, port)))
		admins = append(admins, newAdminClient(t, addr))
	}
	votesOf := func(a *adminClient) []voteStatus {
		st := a.status("")
		if len(st.Sets) != 1 || len(st.Sets[0].Values) != 1 || len(st.Sets[0].Values[0].Checks) != 1 {
			return nil
		}
		return st.Sets[0].Values[0].Checks[0].Votes
	}
	if !eventually(20*time.Second, func() bool { return len(votesOf(admins[0])) == 3 }) {
		t.Fatalf("r1's status lists votes %+v, want the three replicas'", votesOf(admins[0]))
	}
	for i, v := range votesOf(admins[0]) {
		if want := fmt.Sprintf("r%d", i+1); v.Replica != want || v.Status != "healthy" {
			t.Errorf("vote %d: %+v, want %s healthy", i, v, want)
		}
	}
	// r3 alone sees the check fail: its vote says unhealthy on r1's status,
	// and the value stays healthy (2 of 3 say healthy).
	rs[2].check("www").record(false, "connection refused")
	if !eventually(5*time.Second, func() bool {
		vs := votesOf(admins[0])
		return len(vs) == 3 && vs[2].Status == "unhealthy"
	}) {
		t.Fatalf("r1's status lists votes %+v, want r3 unhealthy", votesOf(admins[0]))
	}
	if st := admins[0].status(""); st.Sets[0].Values[0].Status != "healthy" {
		t.Errorf("value status %q on r1, want healthy: the consensus", st.Sets[0].Values[0].Status)
	}
}
