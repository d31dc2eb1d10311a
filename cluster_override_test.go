package multivalue

import (
	"context"
	"sort"
	"sync/atomic"
	"testing"
	"time"
)

func TestOverrideKeyAndParse(t *testing.T) {
	for _, tc := range []struct {
		o   clusterOverride
		key string
	}{
		{clusterOverride{Name: "WWW.example.org", Type: "a", Value: "192.0.2.1"}, "override/value/www.example.org./A/192.0.2.1"},
		{clusterOverride{Name: "_sip._tcp.example.org.", Type: "SRV", Value: "10 5 5060 sip/1.example.org."}, "override/value/_sip._tcp.example.org./SRV/10%205%205060%20sip%2F1.example.org."},
		{clusterOverride{Target: "DB.example.org"}, "override/target/db.example.org"},
	} {
		if got := etcdOverrideKey(&tc.o); got != tc.key {
			t.Errorf("%+v: key %q, want %q", tc.o, got, tc.key)
		}
	}
	for _, tc := range []struct {
		json string
		ok   bool
	}{
		{`{"name":"www.example.org.","type":"A","value":"192.0.2.1","state":"drain","reason":"upgrade"}`, true},
		{`{"target":"192.0.2.1","state":"down","expires":"2030-01-01T00:00:00Z"}`, true},
		{`{"target":"192.0.2.1","state":"off"}`, false},                          // no such state
		{`{"name":"www.example.org.","type":"A","state":"up"}`, false},           // no value
		{`{"target":"192.0.2.1","name":"www.example.org.","state":"up"}`, false}, // both selectors
		{`{"target":"192.0.2.1","state":"up","expires":"tomorrow"}`, false},
		{`not json`, false},
	} {
		if _, ok := parseOverride("override/x", []byte(tc.json)); ok != tc.ok {
			t.Errorf("%s: parsed %v, want %v", tc.json, ok, tc.ok)
		}
	}
	o, _ := parseOverride("override/x", []byte(`{"target":"h","state":"up","expires":"2030-01-01T00:00:00Z"}`))
	if o.expired(time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)) || !o.expired(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("expiry: want in force before, expired from the given time on")
	}
}

// TestClusterOverrides: overrides stored in etcd, by a replica or with
// etcdctl, reach every replica's mirror, and their watchers; malformed and
// expired ones do not count.
func TestClusterOverrides(t *testing.T) {
	slow(t)
	etcd := startEtcd(t)
	cli := etcd.client()
	b := newBackend(t, "127.0.0.1")
	corefile := clusterCorefile(etcd.url, b.port(), probeOnce, "", "www")
	rs := []*replica{startReplica(t, "r1", corefile), startReplica(t, "r2", corefile)}
	var told atomic.Int32
	unwatch := rs[1].member().watchOverrides(func() { told.Add(1) })
	defer unwatch()
	if !eventually(5*time.Second, func() bool { return rs[0].up() && rs[1].up() }) {
		t.Fatal("replicas not connected")
	}
	keys := func(r *replica) []string {
		var out []string
		for _, o := range r.member().overrides() {
			out = append(out, o.key+" "+o.State)
		}
		sort.Strings(out)
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// etcdctl put, as the README shows; a malformed and an expired one.
	for k, v := range map[string]string{
		"/multivalue/override/value/www.example.org./A/127.0.0.1": `{"name":"www.example.org.","type":"A","value":"127.0.0.1","state":"drain","reason":"kernel upgrade"}`,
		"/multivalue/override/value/typo":                         `{"name":"www.example.org.","state":"drain"}`,
		"/multivalue/override/target/old":                         `{"target":"old","state":"down","expires":"2001-01-01T00:00:00Z"}`,
	} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	want := "override/value/www.example.org./A/127.0.0.1 drain"
	for _, r := range rs {
		if !eventually(5*time.Second, func() bool { k := keys(r); return len(k) == 1 && k[0] == want }) {
			t.Errorf("%s's overrides %v, want [%s]", r.id, keys(r), want)
		}
	}
	if told.Load() == 0 {
		t.Error("the override watcher was not told")
	}

	// Set and removed through a replica, seen by the other.
	o := &clusterOverride{Target: "127.0.0.1", State: "down", Reason: "test"}
	if err := rs[0].member().storeOverride(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return len(keys(rs[1])) == 2 }) {
		t.Fatalf("r2's overrides %v: want r1's too", keys(rs[1]))
	}
	if err := rs[0].member().deleteOverride(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return len(keys(rs[1])) == 1 }) {
		t.Fatalf("r2's overrides %v after r1 removed its own", keys(rs[1]))
	}

	// etcd gone: the last known overrides still hold; storing fails at once.
	etcd.stop()
	if !eventually(4*testLease, func() bool { return !rs[1].up() }) {
		t.Fatal("r2 still up with etcd stopped")
	}
	if k := keys(rs[1]); len(k) != 1 {
		t.Errorf("overrides %v with etcd gone, want the last known", k)
	}
	if err := rs[1].member().storeOverride(ctx, o); err == nil {
		t.Error("storing an override with etcd gone: no error")
	}
}
