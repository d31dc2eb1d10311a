package multivalue

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestStressFlappingHealth hammers one handler from several goroutines while
// another flips the health of its values every millisecond through the real
// status machine (check.record), and checks every single reply. Run it under
// -race: the snapshot a query reads must never be one a transition is
// building, and no query may change what another can see.
//
// What can be asserted despite the concurrency: each flapping value has a
// generation counter, odd while it is down. The flipper makes it odd only
// after record() has published a snapshot without the value, and even again
// before record() starts bringing it back. A query that saw the same odd
// generation before and after ServeDNS ran entirely while the value was out
// of every snapshot, so the value must not be in its answer.
func TestStressFlappingHealth(t *testing.T) {
	slow(t)
	const (
		workers    = 8
		queries    = 10000
		maxAnswers = 6
		ttl        = 30
		nValues    = 12
		stable     = 4 // www's first 4 values never fail
	)
	var corefile strings.Builder
	corefile.WriteString(fmt.Sprintf(`multivalue stress.example {
    ttl %d
    max_answers %d
    health_check web {
        interval 1h
        timeout 1s
        failure_threshold 2
        success_threshold 2
    }
`, ttl, maxAnswers))
	// www: 4 values always healthy, 8 flapping; the snapshot always holds a
	// healthy value, so only healthy values may be served.
	// all: every value flaps, so the set is often all unhealthy and the
	// all_unhealthy serve policy answers from every value.
	sets := []struct {
		name  string
		ips   []string
		flaps []bool
	}{{name: "www.stress.example."}, {name: "all.stress.example."}}
	for i := 1; i <= nValues; i++ {
		sets[0].ips = append(sets[0].ips, fmt.Sprintf("127.0.0.%d", i))
		sets[0].flaps = append(sets[0].flaps, i > stable)
		sets[1].ips = append(sets[1].ips, fmt.Sprintf("127.0.1.%d", i))
		sets[1].flaps = append(sets[1].flaps, true)
	}
	for _, s := range sets {
		fmt.Fprintf(&corefile, "    records %s A {\n        health_check web\n", s.name)
		for _, ip := range s.ips {
			fmt.Fprintf(&corefile, "        %s\n", ip)
		}
		corefile.WriteString("    }\n")
	}
	corefile.WriteString("}\n")

	c := caddy.NewTestController("dns", corefile.String())
	cfg, err := parse(c)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	m := newMultivalue(cfg, defaultEngine)
	if len(m.sets) != len(sets) {
		t.Fatalf("got %d record sets, want %d", len(m.sets), len(sets))
	}

	// Bind every value to a real check, without the registry's scheduler:
	// this test is the only source of results.
	type flapper struct {
		set int
		c   *check
		gen *atomic.Uint64 // odd while out of every snapshot
	}
	gens := make([][]atomic.Uint64, len(sets)) // [set][value index in canonical order]
	index := make([]map[string]int, len(sets)) // [set] IP -> value index
	var flappers []flapper
	for si, s := range m.sets {
		if s.name != sets[si].name {
			t.Fatalf("set %d is %s, want %s", si, s.name, sets[si].name)
		}
		gens[si] = make([]atomic.Uint64, len(s.values))
		index[si] = map[string]int{}
		for vi, v := range s.values {
			ip := v.rr.(*dns.A).A.String()
			index[si][ip] = vi
			ck := newTestCheck(t, v.specs[0])
			s.bind(v, ck, []*check{ck}, nil)
			t.Cleanup(func() { s.unbind(v) })
			ck.record(true, "first result")
			for k, want := range sets[si].ips {
				if want == ip && sets[si].flaps[k] {
					flappers = append(flappers, flapper{si, ck, &gens[si][vi]})
				}
			}
		}
		s.refresh()
		if got := len(s.healthyRRs()); got != nValues {
			t.Fatalf("%s: %d healthy values after first results, want %d", s.name, got, nValues)
		}
	}
	if want := nValues - stable + nValues; len(flappers) != want {
		t.Fatalf("%d flapping values, want %d", len(flappers), want)
	}
	t.Cleanup(func() {
		for _, s := range m.sets {
			defaultEngine.metrics.transitions.DeletePartialMatch(prometheus.Labels{"name": s.name})
		}
	})

	// The flipper: one step a millisecond on average (it catches up after
	// the scheduler kept it waiting). Even steps toggle a random flapping
	// www value; odd steps walk the all set through a cycle that takes its
	// values down one by one, holds it with none healthy, brings them back
	// and holds it healthy.
	var www, all []flapper
	for _, f := range flappers {
		if f.set == 0 {
			www = append(www, f)
		} else {
			all = append(all, f)
		}
	}
	const hold = 4
	cycle := 2 * (len(all) + hold)
	toggle := func(f flapper) {
		if f.c.isHealthy() {
			f.c.record(false, "connection refused")
			f.c.record(false, "connection refused")
			f.gen.Add(1) // odd: gone from the snapshot
		} else {
			f.gen.Add(1) // even: may be back at any moment
			f.c.record(true, "status 200")
			f.c.record(true, "status 200")
		}
	}
	stop := make(chan struct{})
	var flips atomic.Int64
	var flipWG sync.WaitGroup
	flipWG.Add(1)
	go func() {
		defer flipWG.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start, step := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for due := int(time.Since(start) / time.Millisecond); step < due; step++ {
				if step%2 == 0 {
					toggle(www[rand.IntN(len(www))])
				} else if pos := (step / 2) % cycle; pos < len(all) {
					toggle(all[pos]) // down
				} else if pos := pos - len(all) - hold; pos >= 0 && pos < len(all) {
					toggle(all[pos]) // up
				}
				flips.Add(1)
			}
		}
	}()

	var (
		failures   atomic.Int64
		excluded   atomic.Int64 // answers from which a value down throughout was (rightly) absent
		allServed  atomic.Int64 // all_unhealthy answers that served a value down throughout
		firstError sync.Once
		errMsg     string
	)
	fail := func(format string, args ...any) {
		failures.Add(1)
		firstError.Do(func() { errMsg = fmt.Sprintf(format, args...) })
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			before := make([]uint64, nValues)
			seen := make([]bool, nValues)
			for i := range queries {
				if failures.Load() > 0 {
					return
				}
				si := (w + i) % len(sets)
				qname := randomCase(sets[si].name)
				do := i%3 == 0
				r := new(dns.Msg)
				r.SetQuestion(qname, dns.TypeA)
				if do {
					r.SetEdns0(4096, true)
				}
				for k := range before {
					before[k] = gens[si][k].Load()
				}
				rec := dnstest.NewRecorder(&test.ResponseWriter{})
				rc, err := m.ServeDNS(context.Background(), rec, r)
				if err != nil || rc != dns.RcodeSuccess || rec.Msg == nil {
					fail("%s: ServeDNS returned %d, %v, reply %v", qname, rc, err, rec.Msg)
					return
				}
				reply := rec.Msg
				switch {
				case reply.Rcode != dns.RcodeSuccess:
					fail("%s: rcode %s, want NOERROR", qname, dns.RcodeToString[reply.Rcode])
				case !reply.Authoritative:
					fail("%s: AA not set", qname)
				case len(reply.Answer) == 0 || len(reply.Answer) > maxAnswers:
					fail("%s: %d answers, want 1 to %d", qname, len(reply.Answer), maxAnswers)
				case len(reply.Question) != 1 || reply.Question[0].Name != qname:
					fail("%s: question not echoed as sent: %v", qname, reply.Question)
				}
				clear(seen)
				var prev net.IP
				servedDown := "" // a value served although down throughout the query
				for _, rr := range reply.Answer {
					a, ok := rr.(*dns.A)
					if !ok {
						fail("%s: answer %s is not an A record", qname, rr)
						break
					}
					if a.Hdr.Name != qname || a.Hdr.Ttl != ttl || a.Hdr.Class != dns.ClassINET {
						fail("%s: answer header %q, want owner %s, TTL %d, class IN", qname, a.Hdr.String(), qname, ttl)
					}
					k, ok := index[si][a.A.String()]
					if !ok {
						fail("%s: answer %s is not a configured value", qname, a.A)
						break
					}
					if seen[k] {
						fail("%s: value %s twice in one answer", qname, a.A)
					}
					seen[k] = true
					if do && prev != nil && bytes.Compare(prev.To4(), a.A.To4()) >= 0 {
						fail("%s: DO answer not in canonical order: %s before %s", qname, prev, a.A)
					}
					prev = a.A
					if before[k]%2 == 1 && gens[si][k].Load() == before[k] {
						servedDown = a.A.String()
					}
				}
				switch {
				case servedDown != "" && si == 0:
					// www always has four healthy values.
					fail("%s: %s served although unhealthy since before the query", qname, servedDown)
				case servedDown != "" && len(reply.Answer) != maxAnswers:
					// A value down throughout can only come from the
					// all_unhealthy serve policy, which picks max_answers of
					// all twelve values: the snapshot the query read was
					// empty.
					fail("%s: %s served although unhealthy since before the query, in an answer of %d values (not all_unhealthy)", qname, servedDown, len(reply.Answer))
				case servedDown != "":
					allServed.Add(1)
				}
				for k := range before {
					if before[k]%2 == 1 && gens[si][k].Load() == before[k] && !seen[k] {
						excluded.Add(1)
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flipWG.Wait()

	if n := failures.Load(); n > 0 {
		t.Fatalf("%d bad replies; first: %s", n, errMsg)
	}
	// The test must have exercised what it claims: flips happened during the
	// queries, and down values were actually kept out of answers.
	if flips.Load() < 10 {
		t.Fatalf("only %d flips during the queries: the test did not flap anything", flips.Load())
	}
	if allServed.Load() == 0 {
		t.Fatalf("the all set never answered with no healthy value: the all_unhealthy path was not exercised")
	}
	if excluded.Load() == 0 {
		t.Fatalf("no query ever ran while a value was down: the flapping was not observed")
	}
	t.Logf("%d queries, %d flips, %d answers with a down value left out, %d all_unhealthy answers serving down values",
		workers*queries, flips.Load(), excluded.Load(), allServed.Load())
}

// randomCase flips the case of each letter at random, as resolvers using 0x20
// do.
func randomCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rand.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
