package multivalue

import (
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"go.uber.org/goleak"

	"github.com/multivalue-dns/coredns-multivalue/internal/directives"
)

// TestMain sets the plugin order of cmd/coredns and fails the package if any
// goroutine outlives the tests: every check, probe and scheduler must stop.
func TestMain(m *testing.M) {
	if err := dnsserver.SetDirectives(directives.Order); err != nil {
		panic(err)
	}
	caddy.Quiet = true
	dnsserver.Quiet = true
	clog.Discard()
	guardNetwork()
	goleak.VerifyTestMain(m,
		// The server's TCP/UDP read loops and caddy's signal trap may
		// still be unwinding the instant the last test returns.
		goleak.IgnoreTopFunction("github.com/miekg/dns.(*Server).serveUDP"),
		goleak.IgnoreTopFunction("github.com/miekg/dns.(*Server).serveTCP"),
		goleak.IgnoreAnyFunction("github.com/coredns/caddy.TrapSignals.func1"),
	)
}
