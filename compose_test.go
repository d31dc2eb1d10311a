package multivalue

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/cache"

	// The plugins the README's "Composing with other plugins" puts next to
	// multivalue, for these tests and for TestReadmeCorefiles.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/dnssec"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/view"

	"github.com/miekg/dns"
)

// cache asks the handlers of its server block for the names it must not store.
var _ cache.ZoneBypasser = (*Multivalue)(nil)

func TestBypassNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		names []string
		zones []string
		limit int
		want  []string
	}{
		{"few names, as they are", []string{"www.example.org.", "api.example.org."}, []string{"example.org.", "example.org."}, 8,
			[]string{"api.example.org.", "www.example.org."}},
		{"a name below another goes", []string{"a.b.example.org.", "b.example.org."}, []string{"example.org.", "example.org."}, 8,
			[]string{"b.example.org."}},
		{"the apex covers all", []string{"example.org.", "www.example.org."}, []string{"example.org.", "example.org."}, 8,
			[]string{"example.org."}},
		{"too many: the deepest lifted first", []string{"a.x.example.org.", "b.x.example.org.", "c.x.example.org.", "www.example.org."},
			[]string{"example.org.", "example.org.", "example.org.", "example.org."}, 2,
			[]string{"www.example.org.", "x.example.org."}},
		{"never above the zone", []string{"a.example.org.", "b.example.org.", "a.example.net.", "b.example.net."},
			[]string{"example.org.", "example.org.", "example.net.", "example.net."}, 1,
			[]string{"example.net.", "example.org."}},
		{"the root zone", []string{"a.", "b.", "c."}, []string{".", ".", "."}, 2, []string{"."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bypassNames(tc.names, tc.zones, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkCacheBypass is what cache pays per query for multivalue's names:
// one comparison per name (plugin.Zones.Contains), hence maxBypass.
func BenchmarkCacheBypass(b *testing.B) {
	names := make([]string, maxBypass)
	for i := range names {
		names[i] = fmt.Sprintf("name%d.example.org.", i)
	}
	zones := slices.Repeat([]string{"example.org."}, maxBypass)
	z := bypassNames(names, zones, maxBypass)
	for b.Loop() {
		for _, n := range z {
			dns.IsSubDomain(n, "www.other.example.org.")
		}
	}
}

// TestComposeCache: with `cache 30` in the block, as in CoreDNS's default
// Corefile, clients still get different subsets, sticky clients their own
// subsets per ECS subnet, and a dead value leaves the answers within the
// detection window, not the cache's 30 s; NXDOMAIN and NODATA for names
// multivalue does not hold are still cached. Nothing is logged at WARNING.
func TestComposeCache(t *testing.T) {
	logs := captureLog(t)
	b := newBackend(t, "127.0.0.3")
	zone := filepath.Join(t.TempDir(), "db.example.org")
	if err := os.WriteFile(zone, []byte(`$ORIGIN example.org.
@   3600 IN SOA ns.example.org. hostmaster.example.org. 1 7200 3600 1209600 300
@   3600 IN NS  ns.example.org.
ns  3600 IN A   127.0.0.53
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    cache 30
    multivalue {
        fallthrough
        max_answers 2
        health_check web {
            interval 200ms
            timeout 100ms
            failure_threshold 2
            success_threshold 2
        }
        records www A 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6
        records pool A {
            127.0.0.3 {
                health_check web
                target `+b.addr+`
            }
            127.0.0.7
        }
        records sticky A 127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4 127.0.1.5 127.0.1.6 {
            sticky
        }
    }
    file `+zone+`
}`)
	waitFirstResults(t)

	subsets := map[string]bool{}
	for range 40 {
		r := s.query(t, "udp", "www.example.org.", dns.TypeA)
		if len(r.Answer) != 2 {
			t.Fatalf("www: got %v, want 2 values", r.Answer)
		}
		if ttl := r.Answer[0].Header().Ttl; ttl != 60 {
			t.Errorf("www: TTL %d, want multivalue's 60, untouched by cache", ttl)
		}
		subsets[strings.Join(sorted(answerValues(r)), " ")] = true
	}
	if len(subsets) < 2 {
		t.Errorf("40 queries got %d subset(s) %v: the answer was cached", len(subsets), subsets)
	}

	// Sticky: each ECS subnet its own answer, the same every time, with the
	// subnet echoed at scope 24 for the resolver to cache it per subnet.
	answers := map[string]bool{}
	for i := range 16 {
		var first string
		for try := range 2 {
			m := question("sticky.example.org.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, ecsOption(fmt.Sprintf("10.%d.0.0/24", i)))
			r := s.exchange(t, "udp", m)
			got := strings.Join(answerValues(r), " ")
			if try == 0 {
				first = got
			} else if got != first {
				t.Errorf("subnet 10.%d.0.0/24: %q then %q, want the same answer", i, first, got)
			}
			if e := replyECS(r); len(e) != 1 || e[0].SourceScope != 24 {
				t.Errorf("subnet 10.%d.0.0/24: ECS %v, want scope 24", i, e)
			}
		}
		answers[first] = true
	}
	if len(answers) < 2 {
		t.Errorf("16 subnets got %d answer(s): the first subnet's answer was cached for all", len(answers))
	}

	// A value that dies leaves every answer within the detection window,
	// though the answer before held it.
	if got := answerValues(s.query(t, "udp", "pool.example.org.", dns.TypeA)); !sameSet(got, []string{"127.0.0.3", "127.0.0.7"}) {
		t.Fatalf("pool: got %v before the kill, want both values", got)
	}
	b.kill()
	killed := time.Now()
	waitValue(t, "coredns_multivalue_healthy", labels{"name": "pool.example.org.", "value": "127.0.0.3"}, 0)
	detect := time.Since(killed)
	for range 50 {
		if got := answerValues(s.query(t, "udp", "pool.example.org.", dns.TypeA)); slices.Contains(got, "127.0.0.3") {
			t.Errorf("127.0.0.3 still served (%v) after its check found it down (%v after the kill)", got, detect)
			break
		}
	}
	if detect > 5*time.Second {
		t.Errorf("detection took %v", detect)
	}

	// Denial caching goes on for what multivalue does not hold.
	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		cached bool
	}{
		{"nope.example.org.", dns.TypeA, dns.RcodeNameError, true},  // NXDOMAIN from multivalue, with file's SOA
		{"ns.example.org.", dns.TypeAAAA, dns.RcodeSuccess, true},   // NODATA from file
		{"www.example.org.", dns.TypeAAAA, dns.RcodeSuccess, false}, // a held name: never cached
	} {
		before := metricSum(t, "coredns_cache_hits_total", labels{"type": "denial", "zones": "example.org."})
		for range 3 {
			if r := s.query(t, "udp", tc.name, tc.qtype); r.Rcode != tc.rcode || len(r.Answer) != 0 || len(r.Ns) == 0 {
				t.Fatalf("%s %s: got %s %v %v, want a negative %s with SOA", tc.name, dns.TypeToString[tc.qtype],
					dns.RcodeToString[r.Rcode], r.Answer, r.Ns, dns.RcodeToString[tc.rcode])
			}
		}
		hits := metricSum(t, "coredns_cache_hits_total", labels{"type": "denial", "zones": "example.org."}) - before
		if tc.cached && hits != 2 || !tc.cached && hits != 0 {
			t.Errorf("%s %s: %v denial cache hits in 3 queries, want cached=%v", tc.name, dns.TypeToString[tc.qtype], hits, tc.cached)
		}
	}
	if w := logs.lines("[WARNING] plugin/multivalue"); len(w) > 0 {
		t.Errorf("warnings logged: %q", w)
	}
}

// TestComposeLoadbalanceWarning: loadbalance in the block of a weighted or
// sticky set is logged at startup, once per server block; uniform sets,
// types loadbalance leaves alone and blocks without it are not.
func TestComposeLoadbalanceWarning(t *testing.T) {
	for _, tc := range []struct {
		name, block string
		want        []string // in the one warning; none: no warning
	}{
		{"weighted", `loadbalance
    multivalue {
        records www A {
            127.0.0.1 { weight 3 }
            127.0.0.2
        }
        records api A 127.0.0.3 127.0.0.4
    }`, []string{readmeWarning(t, "[WARNING] plugin/multivalue: loadbalance", ":53 ", ":0 ")}},
		{"sticky and weighted MX", `loadbalance round_robin
    multivalue {
        records www A 127.0.0.1 127.0.0.2 {
            sticky
        }
        records @ MX {
            10 mx1.example.org. { weight 2 }
            10 mx2.example.org.
        }
    }`, []string{"www.example.org. A (sticky), example.org. MX (weighted)"}},
		{"uniform, standbys, other tiers, drained, TXT, one answer", `loadbalance
    multivalue {
        records www A {
            127.0.0.1
            127.0.0.2
            127.0.0.3 { weight 0 }
            127.0.0.4 {
                weight 5
                tier 2
            }
            127.0.0.5 {
                weight 7
                drain
            }
        }
        records txt TXT {
            a { weight 2 }
            b
        }
        records one A 127.0.0.9 {
            sticky
        }
    }`, nil},
		{"without loadbalance", `multivalue {
        records www A {
            127.0.0.1 { weight 3 }
            127.0.0.2
        }
    }`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := captureLog(t)
			s := startCoreDNS(t, "example.org:0 {\n    bind 127.0.0.1\n    "+tc.block+"\n}")
			s.query(t, "udp", "www.example.org.", dns.TypeA) // serving: a stop before that races in caddy
			s.query(t, "tcp", "www.example.org.", dns.TypeA)
			s.stop()
			w := logs.lines("[WARNING] plugin/multivalue")
			switch {
			case tc.want == nil && len(w) > 0:
				t.Errorf("warned: %q", w)
			case tc.want != nil && len(w) != 1:
				t.Errorf("%d warnings %q, want 1", len(w), w)
			case tc.want != nil:
				for _, sub := range append(tc.want, "fix: remove loadbalance from this server block") {
					if !strings.Contains(w[0], sub) {
						t.Errorf("warning %q lacks %q", w[0], sub)
					}
				}
			}
		})
	}
}

// readmeWarning is the README's line that starts with prefix, with old
// replaced by new: the warning as documented.
func readmeWarning(t *testing.T, prefix, old, new string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.Replace(line, old, new, 1)
		}
	}
	t.Fatalf("README has no line %q...", prefix)
	return ""
}

// TestComposeLoadbalanceReorders shows what the warning is about: a value of
// weight 255 against one of weight 1 comes first in nearly every answer,
// until loadbalance shuffles them.
func TestComposeLoadbalanceReorders(t *testing.T) {
	for _, lb := range []bool{false, true} {
		block := ""
		if lb {
			block = "loadbalance\n"
		}
		s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    `+block+`    multivalue {
        records www A {
            127.0.0.1 { weight 255 }
            127.0.0.2
        }
    }
}`)
		heavy := 0
		s.query(t, "tcp", "www.example.org.", dns.TypeA) // serving: a stop before that races in caddy
		for range 100 {
			if r := s.query(t, "udp", "www.example.org.", dns.TypeA); len(r.Answer) > 0 && rdataText(r.Answer[0]) == "127.0.0.1" {
				heavy++
			}
		}
		s.stop()
		if !lb && heavy < 95 || lb && heavy > 80 {
			t.Errorf("loadbalance=%v: weight 255 first in %d of 100 answers", lb, heavy)
		}
	}
}

// TestComposeDNSSEC: with dnssec in front and the DO bit set, the picked
// values go out in canonical order, the RRSIG verifies over them, and each
// distinct subset is signed once (dnssec's signature cache then hits).
func TestComposeDNSSEC(t *testing.T) {
	key := writeDNSSECKey(t, t.TempDir(), "Kexample.org.+013+45330")
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    dnssec {
        key file `+key.base+`
    }
    multivalue {
        max_answers 2
        records www A 127.0.0.4 127.0.0.3 127.0.0.2 127.0.0.1
    }
}`)
	misses := metricSum(t, "coredns_dnssec_cache_misses_total", nil)
	subsets := map[string]bool{}
	for range 60 {
		m := new(dns.Msg)
		m.SetQuestion("www.example.org.", dns.TypeA)
		m.SetEdns0(4096, true)
		r := s.exchange(t, "udp", m)
		var rrs []dns.RR
		var sig *dns.RRSIG
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				rrs = append(rrs, rr)
			case *dns.RRSIG:
				sig = rr
			}
		}
		values := answerValues(&dns.Msg{Answer: rrs})
		if len(rrs) != 2 || !slices.IsSorted(values) {
			t.Fatalf("got %v, want 2 values in canonical order", values)
		}
		if sig == nil || sig.TypeCovered != dns.TypeA {
			t.Fatalf("no RRSIG over the A RRset: %v", r.Answer)
		}
		if err := sig.Verify(key.DNSKEY, rrs); err != nil || !sig.ValidityPeriod(time.Now()) {
			t.Fatalf("RRSIG does not verify over %v: %v", values, err)
		}
		subsets[strings.Join(values, " ")] = true
	}
	signed := metricSum(t, "coredns_dnssec_cache_misses_total", nil) - misses
	if len(subsets) < 2 || signed != float64(len(subsets)) {
		t.Errorf("%d distinct subsets, %v signatures made; want several subsets, each signed once", len(subsets), signed)
	}
}

// TestComposeView: two server blocks for one zone, split by the client's
// address with view: each client gets its view's set, and responses_total
// counts each under its view.
func TestComposeView(t *testing.T) {
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    view inside {
        expr incidr(client_ip(), '127.0.0.2/32')
    }
    multivalue {
        records www A 127.0.1.1 127.0.1.2
    }
}
example.org:0 {
    bind 127.0.0.1
    multivalue {
        records www A 127.0.2.1 127.0.2.2
    }
}`)
	inside := labels{"zone": "example.org.", "view": "inside", "result": "healthy"}
	outside := labels{"zone": "example.org.", "view": "", "result": "healthy"}
	in0, out0 := metricSum(t, "coredns_multivalue_responses_total", inside), metricSum(t, "coredns_multivalue_responses_total", outside)
	for range 3 {
		if got := answerValues(s.exchangeFrom(t, "127.0.0.2", question("www.example.org.", dns.TypeA))); !sameSet(got, []string{"127.0.1.1", "127.0.1.2"}) {
			t.Errorf("from 127.0.0.2 (view inside): got %v", got)
		}
	}
	for range 2 {
		if got := answerValues(s.exchangeFrom(t, "127.0.0.1", question("www.example.org.", dns.TypeA))); !sameSet(got, []string{"127.0.2.1", "127.0.2.2"}) {
			t.Errorf("from 127.0.0.1 (no view): got %v", got)
		}
	}
	if in := metricSum(t, "coredns_multivalue_responses_total", inside) - in0; in != 3 {
		t.Errorf("responses_total{view=\"inside\"} went up by %v, want 3", in)
	}
	if out := metricSum(t, "coredns_multivalue_responses_total", outside) - out0; out != 2 {
		t.Errorf("responses_total{view=\"\"} went up by %v, want 2", out)
	}
}

// TestComposeACL: a client that acl blocks gets REFUSED before multivalue
// sees the query, so responses_total does not count it.
func TestComposeACL(t *testing.T) {
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    acl {
        block net 127.0.0.2/32
    }
    multivalue {
        records www A 127.0.1.1 127.0.1.2
    }
}`)
	all := labels{"zone": "example.org.", "view": ""}
	before := metricSum(t, "coredns_multivalue_responses_total", all)
	if r := s.exchangeFrom(t, "127.0.0.2", question("www.example.org.", dns.TypeA)); r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
		t.Errorf("from 127.0.0.2: got %s %v, want REFUSED", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if n := metricSum(t, "coredns_multivalue_responses_total", all) - before; n != 0 {
		t.Errorf("a refused query counted %v times in responses_total", n)
	}
	if r := s.exchangeFrom(t, "127.0.0.1", question("www.example.org.", dns.TypeA)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("from 127.0.0.1: got %s %v, want the set", dns.RcodeToString[r.Rcode], r.Answer)
	}
	if n := metricSum(t, "coredns_multivalue_responses_total", all) - before; n != 1 {
		t.Errorf("an allowed query counted %v times in responses_total, want 1", n)
	}
}

// TestComposeRewrite: a name rewritten to a held name is answered with the
// held set, under the name the client asked for.
func TestComposeRewrite(t *testing.T) {
	s := startCoreDNS(t, `example.org:0 {
    bind 127.0.0.1
    rewrite name exact shop.example.org www.example.org
    multivalue {
        records www A 127.0.1.1 127.0.1.2
    }
}`)
	r := s.query(t, "udp", "shop.example.org.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || !sameSet(answerValues(r), []string{"127.0.1.1", "127.0.1.2"}) {
		t.Fatalf("got %s %v, want www's values", dns.RcodeToString[r.Rcode], answerValues(r))
	}
	if r.Question[0].Name != "shop.example.org." {
		t.Errorf("question %q, want the name asked", r.Question[0].Name)
	}
	for _, rr := range r.Answer {
		if rr.Header().Name != "shop.example.org." {
			t.Errorf("answer owner %q, want shop.example.org.", rr.Header().Name)
		}
	}
}

// dnssecKey is a key written as dnssec's `key file BASE` reads it.
type dnssecKey struct {
	*dns.DNSKEY
	base string // path without .key / .private
}

// writeDNSSECKey generates an ECDSA P-256 key for example.org. and writes
// BASE.key and BASE.private into dir, as dnssec-keygen would.
func writeDNSSECKey(t *testing.T, dir, name string) dnssecKey {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     257,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, name)
	if err := os.WriteFile(base+".key", []byte(k.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(k.PrivateKeyString(priv)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dnssecKey{k, base}
}

// exchangeFrom sends m over UDP from the loopback address src.
func (s *coreDNS) exchangeFrom(t *testing.T, src string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second,
		Dialer: &net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	r, _, err := c.Exchange(m, s.udp)
	if err != nil {
		t.Fatalf("query %s from %s: %v", m.Question[0].Name, src, err)
	}
	return r
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// metricSum is the sum of the series of name whose labels include l (0 when
// there is none).
func metricSum(t *testing.T, name string, l labels) float64 {
	t.Helper()
	sum := 0.0
	for _, s := range scrape(t, name).match(l) {
		sum += s.value
	}
	return sum
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
