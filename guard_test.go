package multivalue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

// errNotLoopback is what a probe gets when a test would reach beyond loopback.
var errNotLoopback = errors.New("test guard: only loopback may be probed")

// loopbackOnly refuses to connect to any address outside 127.0.0.0/8 and ::1.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %s", errNotLoopback, address)
	}
	return nil
}

// noSystemResolver makes host-name targets fail instead of asking the
// machine's resolvers; tests that resolve names point probeResolver at a DNS
// server of their own on loopback.
var noSystemResolver = &net.Resolver{
	PreferGo: true,
	Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, fmt.Errorf("%w: resolver %s", errNotLoopback, address)
	},
}

// guardNetwork installs both guards for the whole test binary.
func guardNetwork() {
	defaultEngine.dialer.Control = loopbackOnly
	defaultEngine.dialer.Resolver = noSystemResolver
}

func TestGuardRefusesNonLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:80", true},
		{"127.9.9.9:80", true},
		{"[::1]:80", true},
		{"192.0.2.1:80", false},
		{"198.51.100.1:80", false},
		{"[2001:db8::1]:80", false},
	} {
		if err := loopbackOnly("tcp", tc.addr, nil); (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want allowed=%v", tc.addr, err, tc.ok)
		}
	}
}
