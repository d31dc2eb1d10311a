package multivalue

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// unknownSource is a fixedSource before its first result: healthy, not known.
func unknownSource() *fixedSource { return &fixedSource{v: verdict{healthy: true}} }

// setReason changes a fixedSource's verdict with a reason of the test's.
func (f *fixedSource) setReason(healthy bool, reason string) {
	f.mu.Lock()
	changed := f.v.healthy != healthy || !f.v.known
	f.v = verdict{healthy: healthy, known: true, since: time.Now(), reason: reason}
	f.mu.Unlock()
	if changed {
		f.w.notify()
	}
}

// watching is how many watchers a fixedSource has.
func (f *fixedSource) watching() int {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	return len(f.w.fns)
}

func calcSpec(name string, need int, invert bool) *checkSpec {
	tp := newCheckTemplate(name, 1)
	tp.protocol, tp.children, tp.healthyThreshold, tp.invert = protoCalculated, "a b c", need, invert
	return tp.spec("", 0, 0)
}

// TestCalculatedVerdict: how many children must be healthy, before and after
// their first results, with invert; the reason says how many and which.
func TestCalculatedVerdict(t *testing.T) {
	const H, U, N = 1, 0, -1 // a child healthy, unhealthy, without a result
	tests := []struct {
		name     string
		need     int
		invert   bool
		children []int
		healthy  bool
		known    bool
		reason   string
	}{
		{"all healthy, all needed", 3, false, []int{H, H, H}, true, true, "3 of 3 children healthy, 3 needed (calculated check all3)"},
		{"one down, all needed", 3, false, []int{H, U, H}, false, true,
			"2 of 3 children healthy, 3 needed (calculated check all3); unhealthy: child 1 down"},
		{"one down, two needed", 2, false, []int{U, H, H}, true, true,
			"2 of 3 children healthy, 2 needed (calculated check all3); unhealthy: child 0 down"},
		{"two down, two needed", 2, false, []int{U, H, U}, false, true,
			"1 of 3 children healthy, 2 needed (calculated check all3); unhealthy: child 0 down; child 2 down"},
		{"before any result: children count as healthy", 3, false, []int{N, N, N}, true, false, "3 of 3 children healthy, 3 needed (calculated check all3)"},
		{"one result in", 3, false, []int{N, U, N}, false, false, "2 of 3 children healthy, 3 needed (calculated check all3); unhealthy: child 1 down"},
		{"threshold 0: always healthy", 0, false, []int{U, U, U}, true, true, "0 of 3 children healthy, 0 needed (calculated check all3); unhealthy: child 0 down; child 1 down; child 2 down"},
		{"threshold 0 before any result: known", 0, false, []int{N, N, N}, true, true, "3 of 3 children healthy, 0 needed (calculated check all3)"},
		{"threshold above the children: unhealthy from the start", 4, false, []int{N, N, N}, false, true, "3 of 3 children healthy, 4 needed (calculated check all3)"},
		{"invert", 3, true, []int{H, H, H}, false, true, "inverted: 3 of 3 children healthy, 3 needed (calculated check all3)"},
		{"invert, one down", 3, true, []int{H, H, U}, true, true, "inverted: 2 of 3 children healthy, 3 needed (calculated check all3); unhealthy: child 2 down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var kids []source
			for i, st := range tc.children {
				f := unknownSource()
				if st != N {
					f.setReason(st == H, fmt.Sprintf("child %d %s", i, map[int]string{H: "up", U: "down"}[st]))
				}
				kids = append(kids, f)
			}
			v := newCalculated(calcSpec("all3", tc.need, tc.invert), kids).verdict()
			if v.healthy != tc.healthy || v.known != tc.known || v.reason != tc.reason {
				t.Errorf("verdict healthy %v known %v %q, want %v %v %q", v.healthy, v.known, v.reason, tc.healthy, tc.known, tc.reason)
			}
		})
	}
}

// TestCombinedFollowsMembers: watched, a combined source changes as soon as
// its members do, tells its watchers only when its own verdict changes, keeps
// the time of that change, and stops watching its members with its last
// watcher.
func TestCombinedFollowsMembers(t *testing.T) {
	a, b := unknownSource(), unknownSource()
	all := newAllOf([]source{a, b})
	var notified atomic.Int64
	unwatch := all.watch(func() { notified.Add(1) })
	if a.watching() != 1 || b.watching() != 1 {
		t.Fatalf("members watched %d and %d times, want once each", a.watching(), b.watching())
	}
	if v := all.verdict(); !v.healthy || v.known || !v.since.IsZero() {
		t.Fatalf("before results: %+v, want healthy, not known, no since", v)
	}

	a.setReason(true, "a up") // a first result that agrees: nothing changes
	if v := all.verdict(); !v.healthy || v.known || notified.Load() != 0 {
		t.Errorf("after a's first result: %+v, notified %d; want healthy, not known, no notification", v, notified.Load())
	}
	b.setReason(false, "b down")
	v := all.verdict()
	if v.healthy || !v.known || v.reason != "b down" || v.since.IsZero() || notified.Load() != 1 {
		t.Errorf("after b failed: %+v, notified %d; want unhealthy for b's reason, since set, one notification", v, notified.Load())
	}
	down := v.since
	a.setReason(false, "a down") // still unhealthy: no notification, since kept
	if v := all.verdict(); v.healthy || v.reason != "a down" || !v.since.Equal(down) || notified.Load() != 1 {
		t.Errorf("after a failed too: %+v, notified %d; want unhealthy for the first member's reason, since %v, still one notification", v, notified.Load(), down)
	}
	b.setReason(true, "b up") // a still down
	if v := all.verdict(); v.healthy || !v.since.Equal(down) || notified.Load() != 1 {
		t.Errorf("after b recovered: %+v, notified %d; want unhealthy since %v", v, notified.Load(), down)
	}
	time.Sleep(time.Millisecond)
	a.setReason(true, "a up again")
	if v := all.verdict(); !v.healthy || v.reason != "a up again" || !v.since.After(down) || notified.Load() != 2 {
		t.Errorf("after both recovered: %+v, notified %d; want healthy for the last member's reason, since after %v, two notifications", v, notified.Load(), down)
	}

	unwatch()
	unwatch() // twice is harmless
	if a.watching() != 0 || b.watching() != 0 {
		t.Errorf("members still watched %d and %d times after the last watcher left", a.watching(), b.watching())
	}
	b.setReason(false, "b down again")
	if v := all.verdict(); v.healthy || notified.Load() != 2 {
		t.Errorf("unwatched: %+v, notified %d; want the verdict computed from the members, no notification", v, notified.Load())
	}
}

// TestNestedSources: a value with a calculated check and another check (an
// all-of over a k-of-n) follows a child's change through both.
func TestNestedSources(t *testing.T) {
	k1, k2, other := unknownSource(), unknownSource(), unknownSource()
	calc := newCalculated(calcSpec("any", 1, false), []source{k1, k2})
	all := newAllOf([]source{calc, other})
	var notified atomic.Int64
	defer all.watch(func() { notified.Add(1) })()
	k1.setReason(false, "k1 down")
	if !all.verdict().healthy || notified.Load() != 0 {
		t.Fatal("one of two children down, one needed: the value must stay healthy")
	}
	k2.setReason(false, "k2 down")
	v := all.verdict()
	if v.healthy || notified.Load() != 1 || !strings.HasPrefix(v.reason, "0 of 2 children healthy, 1 needed (calculated check any); unhealthy: k1 down; k2 down") {
		t.Errorf("both children down: %+v, notified %d", v, notified.Load())
	}
	k1.setReason(true, "k1 up")
	if !all.verdict().healthy || notified.Load() != 2 {
		t.Errorf("a child back: healthy %v, notified %d; want healthy, two notifications", all.verdict().healthy, notified.Load())
	}
}

// TestCalculatedTransitionLogged: a value whose calculated check turns logs
// its transition once, with the calculated check's reason, and counts it.
func TestCalculatedTransitionLogged(t *testing.T) {
	logs := captureLog(t)
	kids := []*fixedSource{unknownSource(), unknownSource(), unknownSource()}
	calc := newCalculated(calcSpec("all3", 3, false), []source{kids[0], kids[1], kids[2]})
	name, ip := "calc.example.org.", "127.0.5.1"
	t.Cleanup(func() { defaultEngine.metrics.transitions.DeletePartialMatch(prometheus.Labels{"name": name}) })
	rr, _ := dns.NewRR(name + " 60 IN A " + ip)
	s := &recordSet{name: name, zone: "example.org.", qtype: dns.TypeA, typeName: "A"}
	v := &value{rr: rr, text: ip}
	s.values, s.all = []*value{v}, []dns.RR{rr}
	st := defaultEngine.metrics.acquireValue(s.label(v), calc.verdict())
	s.bind(v, calc, nil, st)
	s.refresh()
	t.Cleanup(func() {
		s.unbind(v)
		defaultEngine.metrics.releaseValue(st)
	})
	for i, k := range kids {
		k.setReason(true, fmt.Sprintf("status 200 (http check c%d of 127.0.0.1:80)", i))
	}
	if len(s.healthyRRs()) != 1 {
		t.Fatal("every child healthy: the value must be served")
	}
	kids[1].setReason(false, "connection refused (tcp check c1 of 127.0.0.1:5432)")
	if len(s.healthyRRs()) != 0 {
		t.Fatal("a child down, all needed: the value must be out")
	}
	want := "calc.example.org. A 127.0.5.1 is now unhealthy: 2 of 3 children healthy, 3 needed (calculated check all3); unhealthy: connection refused (tcp check c1 of 127.0.0.1:5432)"
	if got := logs.lines(" is now "); len(got) != 1 || !strings.HasSuffix(got[0], want) {
		t.Errorf("logged %q, want one line ending %q", got, want)
	}
	if n, _ := counterValue(t, "coredns_multivalue_transitions_total", map[string]string{"name": name, "to": "unhealthy"}); n != 1 {
		t.Errorf("transitions_total{to=unhealthy} = %v, want 1", n)
	}
}

// TestValueHoldsEveryCheck: a value with several checks, one of them
// calculated, holds each probing check it uses (children included) while
// its instance runs, and releases them all.
func TestValueHoldsEveryCheck(t *testing.T) {
	e := newEngine(prometheus.NewRegistry())
	e.dialer = defaultEngine.dialer
	web := newCheckTemplate("web", 1)
	db := newCheckTemplate("db", 2)
	db.protocol, db.port = protoTCP, 5432
	calc := calcSpec("both", -1, false)
	calc.kids = []*checkSpec{web.spec("127.0.0.1", 0, 0), db.spec("127.0.0.1", 0, 0)}
	calc.healthyThreshold = 2
	specs := []*checkSpec{web.spec("127.0.0.1", 0, 0), calc}

	if src := e.lookupSource(specs, checkItself); !src.verdict().healthy {
		t.Error("nothing running yet: the value counts as healthy")
	}
	src, held := e.acquireSource(specs, checkItself)
	if len(held) != 3 || e.table.len() != 2 {
		t.Errorf("holds %d checks, %d running; want 3 held (web twice, db) on 2 running checks", len(held), e.table.len())
	}
	if _, ok := src.(*combined); !ok {
		t.Errorf("source %T, want all of the value's checks", src)
	}
	for _, c := range held {
		e.release(c)
	}
	if e.table.len() != 0 || !e.sched.idle() {
		t.Errorf("%d checks still running after the value released them", e.table.len())
	}
}
