package multivalue

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

const testSOA = "example.org. 3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 300"

// negSOA is the SOA a negative answer carries: TTL min(3600, MINIMUM 300).
var negSOA = test.SOA("example.org. 300 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 300")

const answersBlock = `multivalue {
    ttl 30
    records www A 127.0.0.1 127.0.0.2 127.0.0.3
    records www AAAA ::1
    records a.b.deep A 127.0.0.4
    records mail MX {
        ttl 120
        10 mx1.example.org.
        20 mx2.example.org.
    }
    records txt TXT "v=spf1 -all"
}`

func TestServeDNSAnswers(t *testing.T) {
	m := newTestHandler(t, answersBlock, &zoneHandler{})
	cases := []test.Case{
		{Qname: "www.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{
			test.A("www.example.org. 30 IN A 127.0.0.1"),
			test.A("www.example.org. 30 IN A 127.0.0.2"),
			test.A("www.example.org. 30 IN A 127.0.0.3"),
		}},
		{Qname: "www.example.org.", Qtype: dns.TypeAAAA, Authoritative: true, Answer: []dns.RR{
			test.AAAA("www.example.org. 30 IN AAAA ::1"),
		}},
		// Set TTL overrides the plugin's.
		{Qname: "mail.example.org.", Qtype: dns.TypeMX, Authoritative: true, Answer: []dns.RR{
			test.MX("mail.example.org. 120 IN MX 10 mx1.example.org."),
			test.MX("mail.example.org. 120 IN MX 20 mx2.example.org."),
		}},
		{Qname: "txt.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Answer: []dns.RR{
			test.TXT(`txt.example.org. 30 IN TXT "v=spf1 -all"`),
		}},
		// Held name, type not held: NODATA with the zone's SOA.
		{Qname: "www.example.org.", Qtype: dns.TypeTXT, Authoritative: true, Ns: []dns.RR{negSOA}},
		// The apex and an empty non-terminal exist: NODATA, not NXDOMAIN.
		{Qname: "example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{negSOA}},
		{Qname: "b.deep.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{negSOA}},
		{Qname: "deep.example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{negSOA}},
		// A name that does not exist: NXDOMAIN with the SOA.
		{Qname: "nope.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{negSOA}},
		{Qname: "x.www.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{negSOA}},
		// ANY: one record set (RFC 8482), the first one in the Corefile.
		{Qname: "www.example.org.", Qtype: dns.TypeANY, Authoritative: true, Answer: []dns.RR{
			test.A("www.example.org. 30 IN A 127.0.0.1"),
			test.A("www.example.org. 30 IN A 127.0.0.2"),
			test.A("www.example.org. 30 IN A 127.0.0.3"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.Qname+"/"+dns.TypeToString[tc.Qtype], func(t *testing.T) {
			resp, _ := serve(t, m, tc.Msg())
			if !resp.Authoritative {
				t.Errorf("AA not set")
			}
			if err := test.SortAndCheck(resp, tc); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestServeDNSCaseInsensitive: resolvers randomise the case of the query
// (0x20); the name matches, and the question comes back exactly as sent.
func TestServeDNSCaseInsensitive(t *testing.T) {
	m := newTestHandler(t, answersBlock, &zoneHandler{})
	req := new(dns.Msg)
	req.SetQuestion("wWw.ExAmPlE.oRg.", dns.TypeA)
	resp, _ := serve(t, m, req)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 3 {
		t.Fatalf("got rcode %s with %d answers, want NOERROR with 3", dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}
	if resp.Question[0].Name != "wWw.ExAmPlE.oRg." {
		t.Errorf("question %q, want it echoed as sent", resp.Question[0].Name)
	}
	for _, rr := range resp.Answer {
		if !strings.EqualFold(rr.Header().Name, "www.example.org.") {
			t.Errorf("answer owner %q", rr.Header().Name)
		}
	}
}

// TestServeDNSPassesOn: what the plugin does not answer goes to the next
// plugin untouched: other zones and classes, zone transfers.
func TestServeDNSPassesOn(t *testing.T) {
	m := newTestHandler(t, answersBlock, test.NextHandler(dns.RcodeRefused, nil))
	for _, q := range []struct {
		name  string
		qtype uint16
		class uint16
	}{
		{"www.example.com.", dns.TypeA, dns.ClassINET},
		{"org.", dns.TypeA, dns.ClassINET},
		{"www.example.org.", dns.TypeA, dns.ClassCHAOS},
		{"example.org.", dns.TypeAXFR, dns.ClassINET},
	} {
		req := new(dns.Msg)
		req.SetQuestion(q.name, q.qtype)
		req.Question[0].Qclass = q.class
		resp, rc := serve(t, m, req)
		if rc != dns.RcodeRefused || resp != nil {
			t.Errorf("%s %s class %d: rc %d, written %v; want it passed to the next plugin", q.name, dns.TypeToString[q.qtype], q.class, rc, resp != nil)
		}
	}
}

func TestServeDNSNoSOAWithoutNextZone(t *testing.T) {
	for name, next := range map[string]plugin.Handler{
		"no next plugin":     nil,
		"next does not know": test.NextHandler(dns.RcodeRefused, nil),
	} {
		t.Run(name, func(t *testing.T) {
			m := newTestHandler(t, answersBlock, next)
			req := new(dns.Msg)
			req.SetQuestion("nope.example.org.", dns.TypeA)
			resp, rc := serve(t, m, req)
			if rc != dns.RcodeNameError || resp.Rcode != dns.RcodeNameError || !resp.Authoritative || len(resp.Ns) != 0 {
				t.Errorf("got rc %d, %v; want NXDOMAIN, AA, no authority", rc, resp)
			}
		})
	}
}

// TestSOAFetchedOnce: the SOA comes from the next plugin once, not per query.
func TestSOAFetchedOnce(t *testing.T) {
	z := &zoneHandler{}
	m := newTestHandler(t, answersBlock, z)
	for i := 0; i < 100; i++ {
		req := new(dns.Msg)
		req.SetQuestion("nope.example.org.", dns.TypeA)
		resp, _ := serve(t, m, req)
		if len(resp.Ns) != 1 || resp.Ns[0].Header().Ttl != 300 {
			t.Fatalf("query %d: authority %v, want the SOA with TTL 300", i, resp.Ns)
		}
		resp.Ns[0].Header().Ttl = 1 // answers are the client's: must not leak into the cache
	}
	if n := z.soaQueries.Load(); n != 1 {
		t.Errorf("next plugin asked for the SOA %d times, want 1", n)
	}
}

func TestFallthrough(t *testing.T) {
	block := `multivalue {
    fallthrough
    records www A 127.0.0.1
}`
	m := newTestHandler(t, block, &zoneHandler{})
	cases := []test.Case{
		// Not held here: the next plugin answers.
		{Qname: "other.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{
			test.A("other.example.org. 300 IN A 127.0.0.99"),
		}},
		{Qname: "nope.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{test.SOA(testSOA)}},
		// Held name, other type: the next plugin's NXDOMAIN becomes NODATA
		// (the name exists here), authority kept.
		{Qname: "www.example.org.", Qtype: dns.TypeAAAA, Authoritative: true, Ns: []dns.RR{test.SOA(testSOA)}},
		{Qname: "example.org.", Qtype: dns.TypeA, Authoritative: true, Ns: []dns.RR{test.SOA(testSOA)}},
		// Held: answered here.
		{Qname: "www.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{
			test.A("www.example.org. 60 IN A 127.0.0.1"),
		}},
	}
	for _, tc := range cases {
		resp, rc := serve(t, m, tc.Msg())
		if err := test.SortAndCheck(resp, tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
		if rc != tc.Rcode {
			t.Errorf("%s %s: returned rcode %d, want %d", tc.Qname, dns.TypeToString[tc.Qtype], rc, tc.Rcode)
		}
	}

	// fallthrough limited to a sub-zone.
	m = newTestHandler(t, `multivalue {
    fallthrough sub.example.org.
    records www A 127.0.0.1
}`, &zoneHandler{})
	req := new(dns.Msg)
	req.SetQuestion("other.example.org.", dns.TypeA)
	if resp, _ := serve(t, m, req); resp.Rcode != dns.RcodeNameError || len(resp.Answer) != 0 {
		t.Errorf("fallthrough sub.example.org. must not cover other.example.org.: %v", resp)
	}
}

func TestUnhealthyValuesAreDropped(t *testing.T) {
	m := newTestHandler(t, answersBlock, &zoneHandler{})
	setHealth(t, m, "www.example.org.", dns.TypeA, false, "127.0.0.2")
	for i := 0; i < 50; i++ {
		req := new(dns.Msg)
		req.SetQuestion("www.example.org.", dns.TypeA)
		resp, _ := serve(t, m, req)
		if got := answerValues(resp); !sameSet(got, []string{"127.0.0.1", "127.0.0.3"}) {
			t.Fatalf("got %v, want 127.0.0.1 and 127.0.0.3", got)
		}
	}
	setHealth(t, m, "www.example.org.", dns.TypeA, true, "127.0.0.2")
	req := new(dns.Msg)
	req.SetQuestion("www.example.org.", dns.TypeA)
	if resp, _ := serve(t, m, req); len(resp.Answer) != 3 {
		t.Errorf("after recovery got %v, want all three", answerValues(resp))
	}
}

func TestAllUnhealthyPolicies(t *testing.T) {
	all := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	for _, tc := range []struct {
		policy   string
		rcode    int
		answers  int  // -1: the next plugin's answer
		soa      bool // authority holds the SOA
		nextSeen bool
	}{
		{policy: "serve", answers: 2},
		{policy: "nodata", answers: 0, soa: true},
		{policy: "fallthrough", nextSeen: true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			block := "multivalue {\n max_answers 2\n all_unhealthy " + tc.policy + "\n records www A 127.0.0.1 127.0.0.2 127.0.0.3\n}"
			m := newTestHandler(t, block, &zoneHandler{})
			setHealth(t, m, "www.example.org.", dns.TypeA, false, all...)
			req := new(dns.Msg)
			req.SetQuestion("www.example.org.", dns.TypeA)
			resp, _ := serve(t, m, req)
			if resp.Rcode != dns.RcodeSuccess {
				t.Fatalf("rcode %s, want NOERROR", dns.RcodeToString[resp.Rcode])
			}
			if tc.nextSeen {
				// zoneHandler answers NXDOMAIN for www: the name exists
				// here, so it must come back as NODATA.
				if len(resp.Answer) != 0 || len(resp.Ns) != 1 {
					t.Errorf("fallthrough: got %v, want the next plugin's NODATA with SOA", resp)
				}
				return
			}
			if !resp.Authoritative || len(resp.Answer) != tc.answers || (len(resp.Ns) == 1) != tc.soa {
				t.Errorf("got AA=%v %d answers %d authority, want AA, %d answers, soa %v", resp.Authoritative, len(resp.Answer), len(resp.Ns), tc.answers, tc.soa)
			}
			for _, v := range answerValues(resp) {
				if !slices.Contains(all, v) {
					t.Errorf("served %s, not a value of the set", v)
				}
			}
		})
	}
}

// TestMaxAnswers: a set larger than max_answers gets exactly max_answers
// distinct values of the healthy ones.
func TestMaxAnswers(t *testing.T) {
	var vals []string
	var b strings.Builder
	b.WriteString("multivalue {\n records www A {\n")
	for i := 1; i <= 20; i++ {
		v := "127.0.1." + strconv.Itoa(i)
		vals = append(vals, v)
		b.WriteString(v + "\n")
	}
	b.WriteString("}\n}")
	m := newTestHandler(t, b.String(), nil)
	setHealth(t, m, "www.example.org.", dns.TypeA, false, vals[:5]...)
	for i := 0; i < 200; i++ {
		req := new(dns.Msg)
		req.SetQuestion("www.example.org.", dns.TypeA)
		resp, _ := serve(t, m, req)
		got := answerValues(resp)
		if len(got) != 8 {
			t.Fatalf("%d answers, want 8", len(got))
		}
		seen := map[string]bool{}
		for _, v := range got {
			if seen[v] {
				t.Fatalf("duplicate %s in %v", v, got)
			}
			seen[v] = true
			if slices.Contains(vals[:5], v) || !slices.Contains(vals, v) {
				t.Fatalf("served %s: unhealthy or unknown", v)
			}
		}
	}
}

// TestDNSSECOKCanonicalOrder: with DO, the picked subset goes out in
// canonical order so that dnssec signs each subset once; without it the order
// is random.
func TestDNSSECOKCanonicalOrder(t *testing.T) {
	m := newTestHandler(t, "multivalue {\n max_answers 4\n records www A 127.0.0.10 127.0.0.9 127.0.0.1 127.0.0.200 127.0.0.3 127.0.0.2\n}", nil)
	subsets := map[string]bool{}
	orders := map[string]bool{}
	for i := 0; i < 300; i++ {
		tc := test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Do: true}
		resp, _ := serve(t, m, tc.Msg())
		var wire [][]byte
		for _, rr := range resp.Answer {
			wire = append(wire, canonicalRdata(rr))
		}
		if !slices.IsSortedFunc(wire, func(a, b []byte) int { return strings.Compare(string(a), string(b)) }) {
			t.Fatalf("DO answer not in canonical order: %v", answerValues(resp))
		}
		subsets[strings.Join(answerValues(resp), ",")] = true

		tc.Do = false
		resp, _ = serve(t, m, tc.Msg())
		orders[strings.Join(answerValues(resp), ",")] = true
	}
	if len(subsets) < 5 {
		t.Errorf("DO answers: only %d distinct subsets in 300 queries; the subset must stay random", len(subsets))
	}
	if len(orders) < 50 {
		t.Errorf("plain answers: only %d distinct orders in 300 queries", len(orders))
	}
}

// TestAnswersDoNotShareState: an answer is the client's to change; it must not
// alter the snapshot or later answers.
func TestAnswersDoNotShareState(t *testing.T) {
	m := newTestHandler(t, answersBlock, nil)
	for _, qtype := range []uint16{dns.TypeA, dns.TypeMX} {
		name := "www.example.org."
		if qtype == dns.TypeMX {
			name = "mail.example.org."
		}
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		first, _ := serve(t, m, req)
		want := answerValues(first)
		for _, rr := range first.Answer {
			rr.Header().Name = "evil.example."
			rr.Header().Ttl = 1
			switch r := rr.(type) {
			case *dns.A:
				r.A[0] = 10 // in place: the IP's bytes must be the answer's own
			case *dns.MX:
				r.Mx = "evil.example."
			}
		}
		first.Answer[0] = nil
		second, _ := serve(t, m, req)
		if !sameSet(answerValues(second), want) {
			t.Errorf("%s: after changing an answer, the next is %v, want %v", name, answerValues(second), want)
		}
		for _, rr := range second.Answer {
			if rr.Header().Name != name || rr.Header().Ttl == 1 {
				t.Errorf("%s: header leaked between answers: %v", name, rr)
			}
		}
	}
}

// TestRootZone: a multivalue block for the root zone (`.`) builds and answers;
// walking a name up to its zone must end at the root.
func TestRootZone(t *testing.T) {
	c := caddy.NewTestController("dns", "multivalue {\n records www.example. A 127.0.0.1\n records tld. A 127.0.0.2\n}")
	c.ServerBlockKeys = []string{"."}
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	m := newMultivalue(cfg, defaultEngine)
	for _, tc := range []test.Case{
		{Qname: "www.example.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{test.A("www.example. 60 IN A 127.0.0.1")}},
		{Qname: "tld.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{test.A("tld. 60 IN A 127.0.0.2")}},
		{Qname: "example.", Qtype: dns.TypeA, Authoritative: true}, // empty non-terminal
		{Qname: "nope.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true},
	} {
		resp, _ := serve(t, m, tc.Msg())
		if err := test.SortAndCheck(resp, tc); err != nil {
			t.Errorf("%s: %v", tc.Qname, err)
		}
	}
}

// TestAllUnhealthyWarnsOncePerEpisode: when the last value of a set goes
// down, one WARNING says all_unhealthy applies; queries log nothing; one INFO
// line when a value is back.
func TestAllUnhealthyWarnsOncePerEpisode(t *testing.T) {
	logs := captureLog(t)
	m := newTestHandler(t, "multivalue {\n all_unhealthy nodata\n records www A 127.0.0.1 127.0.0.2\n}", nil)
	setHealth(t, m, "www.example.org.", dns.TypeA, false, "127.0.0.1")
	if got := logs.lines("has no healthy value"); len(got) != 0 {
		t.Fatalf("warned with one value still healthy: %v", got)
	}
	setHealth(t, m, "www.example.org.", dns.TypeA, false, "127.0.0.2")
	for i := 0; i < 20; i++ {
		req := new(dns.Msg)
		req.SetQuestion("www.example.org.", dns.TypeA)
		serve(t, m, req)
	}
	setHealth(t, m, "www.example.org.", dns.TypeA, false, "127.0.0.1") // still down: same episode
	warn := logs.lines("[WARNING]", "www.example.org. A has no healthy value: all_unhealthy nodata applies")
	if len(warn) != 1 {
		t.Errorf("got %d warnings, want exactly 1 per episode: %v", len(warn), logs.lines("www.example.org."))
	}
	setHealth(t, m, "www.example.org.", dns.TypeA, true, "127.0.0.2")
	if back := logs.lines("[INFO]", "www.example.org. A has a healthy value again"); len(back) != 1 {
		t.Errorf("got %d recovery lines, want 1", len(back))
	}
}

// TestRefreshBatchesConcurrentTransitions: many transitions of one set at
// once end with a snapshot that reflects all of them, in fewer rebuilds than
// transitions.
func TestRefreshBatchesConcurrentTransitions(t *testing.T) {
	m := newTestHandler(t, setBlock(400, 8), nil)
	set := m.nodes["www.example.org."].set(dns.TypeA)
	set.mu.Lock()
	for _, v := range set.values {
		v.src = &fixedSource{v: verdict{healthy: true, known: true}}
	}
	set.mu.Unlock()
	set.refresh()
	before, rebuilds := set.built, set.rebuilds
	// Hold the set as a rebuild in progress would, so the transitions queue.
	set.mu.Lock()
	var wg sync.WaitGroup
	for i, v := range set.values {
		if i%4 == 0 {
			continue // a quarter stays healthy
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.src.(*fixedSource).set(false)
			set.refresh()
		}()
	}
	for set.requested.Load() < before+300 {
		time.Sleep(time.Millisecond)
	}
	set.mu.Unlock()
	wg.Wait()
	if got := len(set.healthyRRs()); got != 100 {
		t.Fatalf("snapshot holds %d healthy values, want 100", got)
	}
	if n := set.rebuilds - rebuilds; n != 1 {
		t.Errorf("%d rebuilds for 300 queued transitions, want 1", n)
	}
}

// TestNestedZonesEmptyNonTerminal: with zones example.org. and
// a.b.example.org., the name between them exists (NODATA, not NXDOMAIN).
func TestNestedZonesEmptyNonTerminal(t *testing.T) {
	c := caddy.NewTestController("dns", "multivalue example.org. a.b.example.org. {\n records x.a.b.example.org. A 127.0.0.1\n}")
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	m := newMultivalue(cfg, defaultEngine)
	for _, tc := range []test.Case{
		{Qname: "x.a.b.example.org.", Qtype: dns.TypeA, Authoritative: true, Answer: []dns.RR{test.A("x.a.b.example.org. 60 IN A 127.0.0.1")}},
		{Qname: "a.b.example.org.", Qtype: dns.TypeA, Authoritative: true},
		{Qname: "b.example.org.", Qtype: dns.TypeA, Authoritative: true},
		{Qname: "c.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Authoritative: true},
	} {
		resp, _ := serve(t, m, tc.Msg())
		if err := test.SortAndCheck(resp, tc); err != nil {
			t.Errorf("%s: %v", tc.Qname, err)
		}
	}
}

// TestResponsesPerServer: one handler serving two listeners counts each
// query under its own server label.
func TestResponsesPerServer(t *testing.T) {
	m := newTestHandler(t, answersBlock, nil)
	req := new(dns.Msg)
	req.SetQuestion("www.example.org.", dns.TypeA)
	for i := 0; i < 6; i++ {
		server := []string{"dns://:1053", "tls://:1853"}[i%2]
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: server})
		m.ServeDNS(ctx, dnstest.NewRecorder(&test.ResponseWriter{}), req)
	}
	for _, server := range []string{"dns://:1053", "tls://:1853"} {
		v, ok := counterValue(t, "coredns_multivalue_responses_total", map[string]string{"server": server, "zone": "example.org.", "result": "healthy"})
		if !ok || v != 3 {
			t.Errorf("%s: healthy responses %v (present %v), want 3", server, v, ok)
		}
		defaultEngine.metrics.responses.DeletePartialMatch(map[string]string{"server": server})
	}
}

// TestSOAFetchFailureRetried: a failed SOA fetch (the next plugin's SERVFAIL)
// is tried again soon, not cached as "no SOA" for a minute.
func TestSOAFetchFailureRetried(t *testing.T) {
	defer func(d time.Duration) { soaRetry = d }(soaRetry)
	soaRetry = 50 * time.Millisecond
	z := &zoneHandler{}
	var fail atomic.Bool
	fail.Store(true)
	next := test.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if fail.Load() {
			return dns.RcodeServerFailure, nil
		}
		return z.ServeDNS(ctx, w, r)
	})
	m := newTestHandler(t, answersBlock, next)
	req := new(dns.Msg)
	req.SetQuestion("nope.example.org.", dns.TypeA)
	if resp, _ := serve(t, m, req); len(resp.Ns) != 0 {
		t.Fatalf("SOA %v from a failing next plugin", resp.Ns)
	}
	fail.Store(false)
	time.Sleep(100 * time.Millisecond)
	if resp, _ := serve(t, m, req); len(resp.Ns) != 1 {
		t.Errorf("after the next plugin recovered: authority %v, want its SOA", resp.Ns)
	}
}
