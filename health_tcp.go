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
	conn.Close()
	return true, "connected"
}
