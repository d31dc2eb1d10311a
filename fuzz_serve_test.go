package multivalue

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

const fuzzBlock = `multivalue {
    max_answers 3
    records www A 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5
    records www AAAA ::1 ::2
    records mail MX {
        10 mx1.example.org.
    }
    records txt TXT "a" "b c"
    records _http._tcp SRV {
        10 10 80 www.example.org.
    }
    records big TXT {
        sticky
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "y"
    }
    records w A {
        sticky 16 48
        slow_start 1m
        panic_threshold 50
        min_healthy 2
        127.0.1.1 { weight 3 }
        127.0.1.2 { weight 0 }
        127.0.1.3 { tier 2 }
        127.0.1.4 { drain }
    }
}`

// FuzzServeDNS sends arbitrary wire-format queries, with arbitrary health
// states, and checks every reply: no panic; at most max_answers answers, no
// duplicates, only healthy values whenever one is healthy; the question echoed
// byte for byte; the reply packs.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		do    bool
	}{
		{"www.example.org.", dns.TypeA, false},
		{"WWW.example.ORG.", dns.TypeAAAA, true},
		{"mail.example.org.", dns.TypeMX, false},
		{"txt.example.org.", dns.TypeANY, false},
		{"_http._tcp.example.org.", dns.TypeSRV, true},
		{"nope.example.org.", dns.TypeA, false},
		{"example.org.", dns.TypeSOA, false},
		{"example.com.", dns.TypeA, false},
		{"big.example.org.", dns.TypeTXT, false},
		{"w.example.org.", dns.TypeA, true},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.do {
			m.SetEdns0(4096, true)
		}
		wire, _ := m.Pack()
		f.Add(wire, uint8(0b10110))
	}
	// With EDNS Client Subnet, well formed and with bits beyond its prefix.
	for _, ecs := range []*dns.EDNS0_SUBNET{
		{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{127, 1, 2, 0}},
		{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 8, Address: []byte{127, 1, 2, 3}},
		{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: make([]byte, 16)},
	} {
		m := new(dns.Msg)
		m.SetQuestion("w.example.org.", dns.TypeA)
		m.SetEdns0(1232, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, ecs)
		if wire, err := m.Pack(); err == nil {
			f.Add(wire, uint8(0b1))
		}
	}
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, uint8(0xff))

	m := newTestHandler(f, fuzzBlock, &zoneHandler{})
	www := m.nodes["www.example.org."].set(dns.TypeA)
	f.Fuzz(func(t *testing.T, wire []byte, health uint8) {
		// Bit i of health: value i of www A is healthy.
		var healthy []string
		var unhealthy []string
		for i, v := range www.values {
			if health&(1<<i) != 0 {
				healthy = append(healthy, v.text)
			} else {
				unhealthy = append(unhealthy, v.text)
			}
		}
		if len(healthy) > 0 {
			setHealth(t, m, "www.example.org.", dns.TypeA, true, healthy...)
		}
		if len(unhealthy) > 0 {
			setHealth(t, m, "www.example.org.", dns.TypeA, false, unhealthy...)
		}

		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			return // CoreDNS's server drops what does not unpack
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		m.ServeDNS(context.Background(), rec, req)
		resp := rec.Msg
		if resp == nil {
			return // passed on: the next plugin or the server answers
		}
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, resp)
		}
		if len(resp.Question) != len(req.Question) || (len(req.Question) > 0 && resp.Question[0] != req.Question[0]) {
			t.Fatalf("question not echoed: %v vs %v", resp.Question, req.Question)
		}
		if len(req.Question) > 0 {
			sent, _ := (&dns.Msg{Question: req.Question}).Pack()
			got, _ := (&dns.Msg{Question: resp.Question}).Pack()
			if !bytes.Equal(sent, got) {
				t.Fatalf("question not echoed byte for byte")
			}
		}
		if len(resp.Answer) > 3 {
			t.Fatalf("%d answers, max_answers is 3", len(resp.Answer))
		}
		seen := map[string]bool{}
		for _, rr := range resp.Answer {
			v := rdataText(rr)
			if seen[v] {
				t.Fatalf("duplicate answer %s", v)
			}
			seen[v] = true
			if rr.Header().Rrtype == dns.TypeA && strings.EqualFold(rr.Header().Name, "www.example.org.") && len(healthy) > 0 && !slices.Contains(healthy, v) {
				t.Fatalf("unhealthy %s served while %v are healthy", v, healthy)
			}
			if v == "127.0.1.4" {
				t.Fatalf("drained %s served", v)
			}
		}
	})
}
