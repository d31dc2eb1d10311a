package multivalue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// prober runs one probe against a target. It returns whether the target passed
// and, either way, why, in a few words fit for a log line ("status 503",
// "connection refused"). ctx carries the check's timeout; a prober must not
// outlive it.
type prober interface {
	probe(ctx context.Context) (ok bool, reason string)
}

// newProber builds the prober for a spec, dialing with a copy of dialer (its
// resolver and address vetting). Each probe opens a new connection: a health
// check tests that the endpoint accepts connections, and a kept-alive one
// would hide that it no longer does.
func newProber(s *checkSpec, dialer net.Dialer) prober {
	// No TCP keep-alive: the connection lives for one probe, and setting it
	// up costs system calls on every one.
	dialer.KeepAlive = -1
	switch s.protocol {
	case protoTCP:
		return &tcpProber{addr: s.target(), dialer: &dialer, timeout: s.timeout}
	case protoGRPC, protoGRPCS:
		return newGRPCProber(s, &dialer)
	case protoDNS:
		return newDNSProber(s, &dialer)
	default:
		return newHTTPProber(s, &dialer)
	}
}

// describeErr turns a dial, TLS or HTTP error into the few words an operator
// needs: "connection refused", "timeout after 4s", "no such host", the TLS
// complaint.
func describeErr(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		// net/http's own limits (the TLS handshake's) equal the timeout.
		errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// EPIPE: the reset came before the request was written.
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "no such host " + dnsErr.Name
		}
		return "resolving " + dnsErr.Name + ": " + dnsErr.Err
	case errors.Is(err, io.EOF):
		// The target closed the connection before a response (or a TLS
		// handshake) came; Go says just "EOF".
		return "connection closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed mid-response"
	}
	// Peel the wrappers that only repeat the URL or the addresses (url.Error,
	// net.OpError, even inside net/http's own), and net/http's prefixes that
	// say nothing an operator needs.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var opErr *net.OpError
	for errors.As(err, &opErr) {
		err = opErr.Err
	}
	msg := strings.TrimPrefix(err.Error(), "net/http: HTTP/1.x transport connection broken: ")
	return strings.TrimPrefix(msg, "net/http: ")
}
