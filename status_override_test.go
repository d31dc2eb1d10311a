package multivalue

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestOverrideApply: up and down decide healthy (since: when the override
// was set, if that changed the status), drain keeps the checks' status and
// marks the value drained.
func TestOverrideApply(t *testing.T) {
	checked := time.Unix(1000, 0)
	set := time.Unix(2000, 0)
	healthy := verdict{healthy: true, known: true, since: checked, reason: "status 200"}
	unhealthy := verdict{healthy: false, known: true, since: checked, reason: "status 503"}
	for _, tc := range []struct {
		state  string
		reason string
		in     verdict
		want   verdict
	}{
		{overrideUp, "checker broken", unhealthy, verdict{healthy: true, known: true, since: set, reason: "override up: checker broken"}},
		{overrideUp, "", healthy, verdict{healthy: true, known: true, since: checked, reason: "override up"}},
		{overrideDown, "maintenance", healthy, verdict{healthy: false, known: true, since: set, reason: "override down: maintenance"}},
		{overrideDown, "", unhealthy, verdict{healthy: false, known: true, since: checked, reason: "override down"}},
		{overrideDrain, "x", healthy, verdict{healthy: true, known: true, since: checked, reason: "status 200", drained: true}},
		{overrideDrain, "x", unhealthy, verdict{healthy: false, known: true, since: checked, reason: "status 503", drained: true}},
	} {
		ov := &override{state: tc.state, reason: tc.reason, created: set}
		if got := ov.apply(tc.in); got != tc.want {
			t.Errorf("%s over %+v: %+v, want %+v", tc.state, tc.in, got, tc.want)
		}
	}
}

// TestOverrideEffective: a value's own override wins over a target's; of two
// target overrides of its hosts, the later set wins; an expired one does not
// count even before the timer removes it.
func TestOverrideEffective(t *testing.T) {
	st := newOverrideStore()
	now := time.Now()
	k := overrideKey{name: "www.example.org.", qtype: dns.TypeA, rdata: "\x7f\x00\x00\x01"}
	hosts := []string{"127.0.0.1", "db.example.org"}
	if ov := st.effective(k, hosts, now); ov != nil {
		t.Fatalf("no override: %+v", ov)
	}
	byDB := &override{key: overrideKey{host: "db.example.org"}, state: overrideDown, created: now.Add(-time.Minute)}
	byIP := &override{key: overrideKey{host: "127.0.0.1"}, state: overrideDrain, created: now}
	st.put(byDB)
	if ov := st.effective(k, hosts, now); ov != byDB {
		t.Errorf("one target override: %+v", ov)
	}
	st.put(byIP)
	if ov := st.effective(k, hosts, now); ov != byIP {
		t.Errorf("two target overrides: %+v, want the later", ov)
	}
	own := &override{key: k, state: overrideUp, created: now.Add(-time.Hour), expires: now.Add(time.Second)}
	st.put(own)
	if ov := st.effective(k, hosts, now); ov != own {
		t.Errorf("own and target overrides: %+v, want its own", ov)
	}
	if ov := st.effective(k, hosts, now.Add(2*time.Second)); ov != byIP {
		t.Errorf("own override expired: %+v, want the target's", ov)
	}
	other := overrideKey{name: "www.example.org.", qtype: dns.TypeA, rdata: "\x7f\x00\x00\x02"}
	if ov := st.effective(other, []string{"127.0.0.2"}, now); ov != nil {
		t.Errorf("another value: %+v", ov)
	}
	if removed := st.remove(byIP.key); removed != byIP {
		t.Errorf("remove: %+v", removed)
	}
	if st.remove(byIP.key) != nil {
		t.Error("removed twice")
	}
}

// TestOverrideExpiryTimer: one timer for the earliest expiry; at each, the
// expired overrides go, their values' watchers are told, and the timer is
// set for the next.
func TestOverrideExpiryTimer(t *testing.T) {
	st := newOverrideStore()
	var expired atomic.Int32
	st.expired = func(gone []*override) {
		expired.Add(int32(len(gone)))
		for _, ov := range gone {
			st.notify(ov.key)
		}
	}
	k1 := overrideKey{name: "a.example.org.", qtype: dns.TypeA, rdata: "1"}
	k2 := overrideKey{name: "b.example.org.", qtype: dns.TypeA, rdata: "2"}
	var told1, told2 atomic.Int32
	defer st.watch(k1, nil, func() { told1.Add(1) })()
	defer st.watch(k2, []string{"h"}, func() { told2.Add(1) })()
	now := time.Now()
	st.put(&override{key: k1, state: overrideDown, created: now, expires: now.Add(100 * time.Millisecond)})
	st.put(&override{key: overrideKey{host: "h"}, state: overrideDown, created: now, expires: now.Add(300 * time.Millisecond)})
	st.put(&override{key: overrideKey{host: "never"}, state: overrideDown, created: now})
	st.mu.Lock()
	at := st.timerAt
	st.mu.Unlock()
	if !at.Equal(now.Add(100 * time.Millisecond)) {
		t.Errorf("timer set for %v, want the earliest expiry", at.Sub(now))
	}
	if !eventually(2*time.Second, func() bool { return told1.Load() == 1 }) || told2.Load() != 0 {
		t.Fatalf("after the first expiry: told %d and %d, want 1 and 0", told1.Load(), told2.Load())
	}
	if !eventually(2*time.Second, func() bool { return told2.Load() == 1 }) {
		t.Fatal("the target override's value was not told of its expiry")
	}
	if got := len(st.list(time.Now())); got != 1 || expired.Load() != 2 {
		t.Errorf("%d overrides left (want the one without expiry), %d expired (want 2)", got, expired.Load())
	}
	st.mu.Lock()
	at = st.timerAt
	st.mu.Unlock()
	if !at.IsZero() {
		t.Errorf("timer still set for %v with nothing to expire", at)
	}
}

// TestOverrideDrainInSnapshot: an override drain takes a value out of the
// candidates and of all_unhealthy serve's fallback, and out of the panic
// threshold's count; a set whose values are all drained is NODATA.
func TestOverrideDrainInSnapshot(t *testing.T) {
	mk := func(text string, healthy, drained bool) *value {
		rr, _ := dns.NewRR("www.example.org. 60 IN A " + text)
		src := &fixedSource{v: verdict{healthy: healthy, known: true, drained: drained}}
		return &value{rr: rr, text: text, weight: 1, tier: 1, src: src}
	}
	texts := func(cs []candidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, rdataText(c.rr))
		}
		return out
	}
	vals := []*value{mk("127.0.0.1", true, true), mk("127.0.0.2", true, false), mk("127.0.0.3", false, false)}
	snap := buildSnapshot(vals, &selection{}, time.Now())
	if got := texts(snap.cands); !slices.Equal(got, []string{"127.0.0.2"}) {
		t.Errorf("candidates %v, want [127.0.0.2]", got)
	}
	if got := texts(snap.fallback); !slices.Equal(got, []string{"127.0.0.2", "127.0.0.3"}) {
		t.Errorf("fallback %v, want the undrained values", got)
	}
	// Panic threshold 60%: 1 healthy of 2 undrained is 50%, panic; counting
	// the drained one would make it 2 of 3.
	snap = buildSnapshot(vals, &selection{panicThreshold: 60}, time.Now())
	if !snap.panic {
		t.Error("panic_threshold counted a drained value")
	}
	all := []*value{mk("127.0.0.1", true, true), mk("127.0.0.2", false, true)}
	if snap := buildSnapshot(all, &selection{}, time.Now()); !snap.drained || len(snap.fallback) != 0 {
		t.Errorf("every value drained: %+v", snap)
	}
}

// TestOverrideRequest: what a request's selector and fields become.
func TestOverrideRequest(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		req     overrideRequest
		key     overrideKey
		value   string
		expires time.Duration
		err     string
	}{
		{req: overrideRequest{Name: "WWW.Example.org", Type: "a", Value: "127.0.0.1", State: "up"},
			key: overrideKey{name: "www.example.org.", qtype: dns.TypeA, rdata: "\x7f\x00\x00\x01"}, value: "127.0.0.1"},
		{req: overrideRequest{Name: "example.org.", Type: "MX", Value: "10 MAIL.example.org", State: "drain", TTL: "90m"},
			key: overrideKey{name: "example.org.", qtype: dns.TypeMX, rdata: "\x00\x0a\x04mail\x07example\x03org\x00"}, value: "10 MAIL.example.org.", expires: 90 * time.Minute},
		{req: overrideRequest{Name: "txt.example.org.", Type: "TXT", Value: `"v=spf1 -all"`, State: "down"},
			key: overrideKey{name: "txt.example.org.", qtype: dns.TypeTXT, rdata: "\x0bv=spf1 -all"}, value: `"v=spf1 -all"`},
		{req: overrideRequest{Name: "v6.example.org.", Type: "AAAA", Value: "0:0::1", State: "up"},
			key: overrideKey{name: "v6.example.org.", qtype: dns.TypeAAAA, rdata: "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"}, value: "::1"},
		{req: overrideRequest{Target: "DB.Example.ORG.", State: "down"}, key: overrideKey{host: "db.example.org"}},
		{req: overrideRequest{Target: "[::1]", State: "down"}, key: overrideKey{host: "::1"}},
		{req: overrideRequest{Target: "0::1", State: "down"}, key: overrideKey{host: "::1"}},
		{req: overrideRequest{Target: "127.0.0.1:80", State: "down"}, err: "without a port"},
		{req: overrideRequest{Target: "[::1]:80", State: "down"}, err: "without a port"},
		{req: overrideRequest{Name: "www.example.org.", Type: "A", Value: "127.0.0.1 127.0.0.2", State: "up"}, err: "not a A value"},
		{req: overrideRequest{Name: "www.example.org.", Type: "A", Value: "127.0.0.1\n", State: "up"}, err: "control character"},
		{req: overrideRequest{Name: "www.example.org.", Type: "CNAME", Value: "x.", State: "up"}, err: "cannot be a multivalue record set"},
		{req: overrideRequest{Name: "www.example.org.", Type: "A", Value: "127.0.0.1", State: "UP"}, err: `state "UP"`},
	} {
		ov, err := tc.req.override(now)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.req, err, tc.err)
			}
		case err != nil:
			t.Errorf("%+v: %v", tc.req, err)
		case ov.key != tc.key || ov.value != tc.value || (tc.expires == 0) != ov.expires.IsZero() || tc.expires != 0 && ov.expires.Sub(now) != tc.expires:
			t.Errorf("%+v: %+v, want key %+v value %q expiring in %v", tc.req, ov, tc.key, tc.value, tc.expires)
		}
	}
}
