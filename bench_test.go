package multivalue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/coredns/coredns/plugin/hosts" // the baseline
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures one A query answered by multivalue, and by the
// hosts plugin on the same data as the baseline: allocs/op of multivalue must
// not exceed hosts' for the same answer. The handlers are built from a
// Corefile, as setup does; nothing is started: before its first result a
// checked value counts as healthy and reads the same snapshot as with live
// checks, so the "checked" cases measure the live-check path.
//
//	go test -run '^$' -bench BenchmarkServeDNS -benchmem .
func BenchmarkServeDNS(b *testing.B) {
	cases := []struct {
		name    string
		handler func(b *testing.B) plugin.Handler
		answers int
	}{
		{"multivalue-3", mvHandler(3, false), 3},
		{"multivalue-12", mvHandler(12, false), 8},
		{"multivalue-12-checked", mvHandler(12, true), 8},
		{"multivalue-1000", mvHandler(1000, false), 8},
		{"multivalue-1000-checked", mvHandler(1000, true), 8},
		{"hosts-8", hostsHandler(8), 8},
		{"hosts-100", hostsHandler(100), 100},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.handler(b)
			ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://127.0.0.1:53"})
			req := new(dns.Msg)
			req.SetQuestion("www.example.org.", dns.TypeA)
			w := &lastWriter{}
			if _, err := h.ServeDNS(ctx, w, req); err != nil || w.msg == nil || len(w.msg.Answer) != tc.answers {
				b.Fatalf("want %d answers, got %v (err %v)", tc.answers, w.msg, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.ServeDNS(ctx, w, req)
			}
		})
		// As miekg/dns serves a UDP query: on a new goroutine, whose
		// small stack grows (and is copied) if the handler needs more.
		b.Run(tc.name+"/goroutine", func(b *testing.B) {
			h := tc.handler(b)
			ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://127.0.0.1:53"})
			req := new(dns.Msg)
			req.SetQuestion("www.example.org.", dns.TypeA)
			w := &lastWriter{}
			done := make(chan struct{})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				go func() {
					h.ServeDNS(ctx, w, req)
					done <- struct{}{}
				}()
				<-done
			}
		})
	}
}

// lastWriter keeps the last reply and sends nothing.
type lastWriter struct {
	test.ResponseWriter
	msg *dns.Msg
}

func (w *lastWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }

// benchIP is the i-th of many distinct loopback addresses.
func benchIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250) }

// mvHandler builds multivalue with n A values for www.example.org
// (max_answers 8), each with a TCP health check when checked.
func mvHandler(n int, checked bool) func(b *testing.B) plugin.Handler {
	return func(b *testing.B) plugin.Handler {
		var sb strings.Builder
		sb.WriteString("multivalue {\n")
		if checked {
			sb.WriteString("health_check tcp { protocol tcp\nport 80\n}\n")
		}
		sb.WriteString("records www A {\n")
		if checked {
			sb.WriteString("health_check tcp\n")
		}
		for i := range n {
			fmt.Fprintf(&sb, "%s\n", benchIP(i))
		}
		sb.WriteString("}\n}\n")
		c := caddy.NewTestController("dns", sb.String())
		c.ServerBlockKeys = []string{"example.org."}
		cfg, err := parse(c)
		if err != nil {
			b.Fatal(err)
		}
		m := newMultivalue(cfg)
		m.Next = test.ErrorHandler()
		return m
	}
}

// hostsHandler builds the hosts plugin with n inline A entries for
// www.example.org, without its reload goroutine.
func hostsHandler(n int) func(b *testing.B) plugin.Handler {
	return func(b *testing.B) plugin.Handler {
		empty := filepath.Join(b.TempDir(), "hosts")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "hosts %s example.org {\nreload 0\n", empty)
		for i := range n {
			fmt.Fprintf(&sb, "%s www.example.org\n", benchIP(i))
		}
		sb.WriteString("}\n")
		c := caddy.NewTestController("dns", sb.String())
		c.ServerBlockKeys = []string{"example.org."}
		setupHosts, err := caddy.DirectiveAction("dns", "hosts")
		if err != nil {
			b.Fatal(err)
		}
		if err := setupHosts(c); err != nil {
			b.Fatal(err)
		}
		plugins := dnsserver.GetConfig(c).Plugin
		return plugins[len(plugins)-1](test.ErrorHandler())
	}
}

// TestInZone holds the allocation-free zone match of the hot path to
// dns.IsSubDomain, escaped dots included.
func TestInZone(t *testing.T) {
	tests := []struct {
		name, zone string
	}{
		{"example.org.", "example.org."},
		{"www.example.org.", "example.org."},
		{"a.b.example.org.", "b.example.org."},
		{"wwwexample.org.", "example.org."},
		{"example.org.", "www.example.org."},
		{"org.", "example.org."},
		{"www.example.org.", "."},
		{".", "."},
		{`a\.example.org.`, "example.org."},
		{`a\\.example.org.`, "example.org."},
		{`a\\\.example.org.`, "example.org."},
		{`a.b\.example.org.`, "example.org."},
		{"www.example.org.", "org."},
		{"www.example.com.", "example.org."},
	}
	for _, tc := range tests {
		want := dns.IsSubDomain(tc.zone, tc.name)
		if got := inZone(tc.name, tc.zone); got != want {
			t.Errorf("inZone(%q, %q) = %v, dns.IsSubDomain says %v", tc.name, tc.zone, got, want)
		}
	}
}
