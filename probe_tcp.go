package multivalue

import (
	"context"
	"net"
	"time"
)

// tcpProber passes when a TCP connection to the target opens in time.
type tcpProber struct {
	addr    string
	dialer  *net.Dialer
	timeout time.Duration // for the reason only: ctx enforces it
}

func (p *tcpProber) probe(ctx context.Context) (bool, string) {
	conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return false, describeErr(err, p.timeout)
	}
	// Close with a reset rather than a FIN exchange, as HAProxy's checks
	// do: the probe has its answer, and at thousands of probes a second
	// the orderly close would leave as many sockets in TIME_WAIT here and
	// cost a second round trip in the kernel on both ends.
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
	return true, "connected"
}
