package multivalue

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// TestNoValueFitsOverUDP: when not even one value fits in a 512-byte UDP
// answer, every selector answers with no RR and TC set (the client asks
// again over TCP), and over TCP the value comes whole.
func TestNoValueFitsOverUDP(t *testing.T) {
	long := strings.Repeat("x", 250)
	for _, opts := range []string{"", "sticky", "slow_start 1m"} {
		block := "multivalue {\n " + opts + "\n records txt TXT {\n \"" + long + "\" \"" + long + "\"\n \"" + long + "\" \"y\"\n }\n}"
		m := newTestHandler(t, block, nil)
		if opts == "" {
			set := m.nodes["txt.example.org."].set(dns.TypeTXT)
			set.values[0].weight, set.values[1].weight = 1, 3 // weighted
			set.refresh()
		}
		req := new(dns.Msg)
		req.SetQuestion("txt.example.org.", dns.TypeTXT)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := m.ServeDNS(t.Context(), rec, req); err != nil {
			t.Fatalf("%q over UDP: %v", opts, err)
		}
		if rec.Msg == nil || len(rec.Msg.Answer) != 0 || !rec.Msg.Truncated {
			t.Fatalf("%q over UDP: %v, want no answer and TC", opts, rec.Msg)
		}
		rec = dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
		if _, err := m.ServeDNS(t.Context(), rec, req); err != nil || rec.Msg == nil || len(rec.Msg.Answer) != 2 || rec.Msg.Truncated {
			t.Fatalf("%q over TCP: %v (err %v), want both values", opts, rec.Msg, err)
		}
	}
}
