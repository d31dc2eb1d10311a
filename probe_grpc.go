package multivalue

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcMaxMessage bounds what a probe accepts from the target: a health
// response is a few bytes.
const grpcMaxMessage = 4 << 10

// grpcProber passes when the target answers the gRPC health checking
// protocol's Check (grpc.health.v1.Health/Check) for service with SERVING,
// over plain HTTP/2 (grpc) or TLS (grpcs).
//
// Each probe builds its own client connection and closes it when done, as
// the http prober opens a new connection for every probe: a channel kept
// between probes would reconnect in the background on its own schedule and
// hide that the target no longer accepts connections.
type grpcProber struct {
	target  string // passthrough:///host:port: the engine's dialer resolves the host at each probe
	dialer  *net.Dialer
	opts    []grpc.DialOption
	service string
	timeout time.Duration // for the reason only: ctx enforces it
}

func newGRPCProber(s *checkSpec, dialer *net.Dialer) *grpcProber {
	creds := insecure.NewCredentials()
	if s.protocol == protoGRPCS {
		creds = credentials.NewTLS(&tls.Config{
			// As https: without tls_verify the certificate is not checked.
			InsecureSkipVerify: !s.tlsVerify,
			RootCAs:            s.caPool, // nil: the system roots
			// SNI and the name verified: host if set; else gRPC takes the
			// target's host (no SNI for an IP, whose certificate must then
			// name the IP).
			ServerName: s.hostHeader,
		})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("coredns-multivalue/1 (health check)"),
		grpc.WithNoProxy(), // never send probes through an environment proxy
		grpc.WithDisableRetry(),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableHealthCheck(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: s.timeout}),
		grpc.WithMaxHeaderListSize(maxHeaderBytes),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcMaxMessage)),
	}
	if s.hostHeader != "" {
		opts = append(opts, grpc.WithAuthority(s.hostHeader))
	}
	return &grpcProber{
		target:  "passthrough:///" + s.target(),
		dialer:  dialer,
		opts:    opts,
		service: s.service,
		timeout: s.timeout,
	}
}

func (p *grpcProber) probe(ctx context.Context) (bool, string) {
	// What went wrong below gRPC, for a reason an operator can read
	// ("connection refused" rather than a transport's status message).
	var errs netErrors
	cc, err := grpc.NewClient(p.target, append(p.opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := p.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			errs.set(err)
			return nil, err
		}
		return &watchedConn{Conn: conn, errs: &errs}, nil
	}))...)
	if err != nil {
		return false, err.Error()
	}
	// Closing ends the connection and every goroutine of the channel, a
	// dial or TLS handshake still going on included.
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: p.service})
	if err == nil {
		st := resp.GetStatus()
		return st == healthpb.HealthCheckResponse_SERVING, st.String()
	}
	s := status.Convert(err)
	switch {
	case ctx.Err() != nil, s.Code() == codes.DeadlineExceeded:
		return false, describeErr(context.DeadlineExceeded, p.timeout)
	case s.Code() == codes.Unavailable:
		if err := errs.get(); err != nil {
			return false, describeErr(err, p.timeout)
		}
		// gRPC's own words: a TLS complaint, an HTTP/2 protocol error.
		msg := strings.TrimPrefix(s.Message(), `connection error: desc = "`)
		return false, strings.TrimPrefix(strings.TrimSuffix(msg, `"`), "transport: ")
	}
	return false, "rpc " + s.Code().String() + ": " + s.Message()
}

// netErrors keeps the first error a probe's dial or connection met.
type netErrors struct {
	mu  sync.Mutex
	err error
}

func (n *netErrors) set(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		n.err = err
	}
}

func (n *netErrors) get() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// watchedConn records the first error reading or writing met, but for the
// probe's own closing of the connection.
type watchedConn struct {
	net.Conn
	errs *netErrors
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.note(err)
	return n, err
}

func (c *watchedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.note(err)
	return n, err
}

func (c *watchedConn) note(err error) {
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.errs.set(err)
	}
}
