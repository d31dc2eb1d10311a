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
	"github.com/coredns/coredns/plugin/whoami"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures one A query answered by multivalue, and by the
// hosts plugin on the same data as the baseline: allocs/op of multivalue must
// not exceed hosts' for the same answer. whoami, the dnsperf baseline, is
// there for scale. The handlers are built from a Corefile, as setup does;
// nothing is started: before its first result a checked value counts as
// healthy and reads the same snapshot as with live checks, so the "checked"
// cases measure the live-check path.
//
// Each case runs twice: X calls ServeDNS alone; X/served does what the server
// does around it for a UDP query: a new goroutine (miekg/dns starts one per
// query, with a small stack that grows, and is copied, when the handler needs
// more), CoreDNS's ScrubWriter (truncation to the client's buffer) and
// packing the reply.
//
//	go test -run '^$' -bench BenchmarkServeDNS -benchmem .
func BenchmarkServeDNS(b *testing.B) {
	cases := []struct {
		name    string
		handler func(b *testing.B) plugin.Handler
		answers int // -1: whoami, whose answer is in the additional section
	}{
		{"whoami", func(*testing.B) plugin.Handler { return whoami.Whoami{} }, -1},
		{"multivalue-3", mvHandler(3, false), 3},
		{"multivalue-12", mvHandler(12, false), 8},
		{"multivalue-12-checked", mvHandler(12, true), 8},
		{"multivalue-1000", mvHandler(1000, false), 8},
		{"multivalue-1000-checked", mvHandler(1000, true), 8},
		// max_answers 255: what fits in 512 bytes goes out (29 A records,
		// compressed), with TC.
		{"multivalue-1000-max255", mvHandlerMax(1000, 255), 29},
		// Version 2's selectors over 1,000 values: weights 1 to 4, and
		// sticky (rendezvous hashing of the client /24 with every value).
		{"multivalue-1000-weighted", mvHandlerOpts(1000, "", true), 8},
		{"multivalue-1000-sticky", mvHandlerOpts(1000, "sticky", false), 8},
		{"multivalue-1000-sticky-weighted", mvHandlerOpts(1000, "sticky", true), 8},
		{"hosts-8", hostsHandler(8), 8},
		{"hosts-100", hostsHandler(100), 100},
	}
	ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://127.0.0.1:53"})
	req := new(dns.Msg)
	req.SetQuestion("www.example.org.", dns.TypeA)
	for _, tc := range cases {
		h := tc.handler(b)
		w := &benchWriter{buf: make([]byte, 0, dns.MaxMsgSize)}
		if _, err := h.ServeDNS(ctx, w, req); err != nil || w.msg == nil ||
			(tc.answers >= 0 && len(w.msg.Answer) != tc.answers) || (tc.answers < 0 && len(w.msg.Extra) == 0) {
			b.Fatalf("%s: want %d answers, got %v (err %v)", tc.name, tc.answers, w.msg, err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(ctx, w, req)
			}
		})
		b.Run(tc.name+"/served", func(b *testing.B) {
			w.pack = true
			done := make(chan struct{})
			b.ReportAllocs()
			for b.Loop() {
				go func() {
					h.ServeDNS(ctx, request.NewScrubWriter(req, w), req)
					done <- struct{}{}
				}()
				<-done
			}
		})
	}
}

// benchWriter keeps the last reply and, with pack, packs it as the server
// would before sending it. It sends nothing.
type benchWriter struct {
	test.ResponseWriter
	msg  *dns.Msg
	pack bool
	buf  []byte
}

func (w *benchWriter) WriteMsg(m *dns.Msg) error {
	w.msg = m
	if w.pack {
		_, err := m.PackBuffer(w.buf)
		return err
	}
	return nil
}

// benchIP is the i-th of many distinct loopback addresses.
func benchIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250) }

// mvHandler builds multivalue with n A values for www.example.org
// (max_answers 8), each with a TCP health check when checked.
func mvHandler(n int, checked bool) func(b *testing.B) plugin.Handler {
	return mvHandlerWith(n, checked, 8, "", false)
}

// mvHandlerMax is mvHandler without checks and with max_answers max.
func mvHandlerMax(n, max int) func(b *testing.B) plugin.Handler {
	return mvHandlerWith(n, false, max, "", false)
}

// mvHandlerOpts is mvHandler without checks, with options for the block and,
// when weighted, weights 1 to 4.
func mvHandlerOpts(n int, opts string, weighted bool) func(b *testing.B) plugin.Handler {
	return mvHandlerWith(n, false, 8, opts, weighted)
}

func mvHandlerWith(n int, checked bool, max int, opts string, weighted bool) func(b *testing.B) plugin.Handler {
	return func(b *testing.B) plugin.Handler {
		var sb strings.Builder
		fmt.Fprintf(&sb, "multivalue {\nmax_answers %d\n%s\n", max, opts)
		if checked {
			sb.WriteString("health_check tcp { protocol tcp\nport 80\n}\n")
		}
		sb.WriteString("records www A {\n")
		if checked {
			sb.WriteString("health_check tcp\n")
		}
		for i := range n {
			if weighted {
				fmt.Fprintf(&sb, "%s { weight %d }\n", benchIP(i), 1+i%4)
			} else {
				fmt.Fprintf(&sb, "%s\n", benchIP(i))
			}
		}
		sb.WriteString("}\n}\n")
		c := caddy.NewTestController("dns", sb.String())
		c.ServerBlockKeys = []string{"example.org."}
		cfg, err := parse(c)
		if err != nil {
			b.Fatal(err)
		}
		m := newMultivalue(cfg, defaultEngine)
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
