package multivalue

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// grpcTarget is a real gRPC server on 127.0.0.1, with the standard health
// service (unless started without), over TLS when given a certificate. It
// records what the last request said and counts connections.
type grpcTarget struct {
	addr   string
	health *health.Server
	ln     *countingListener

	mu        sync.Mutex
	authority string
	userAgent string
	sni       string
}

func newGRPCTarget(t *testing.T, cert *tls.Certificate, withHealth bool) *grpcTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcTarget{addr: ln.Addr().String(), ln: &countingListener{Listener: ln}}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		g.mu.Lock()
		g.authority, g.userAgent = strings.Join(md[":authority"], ","), strings.Join(md["user-agent"], ",")
		g.mu.Unlock()
		return h(ctx, req)
	})}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{*cert},
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				g.mu.Lock()
				g.sni = hello.ServerName
				g.mu.Unlock()
				return nil, nil
			},
		})))
	}
	srv := grpc.NewServer(opts...)
	if withHealth {
		g.health = health.NewServer()
		g.health.SetServingStatus("my.pkg.Down", healthpb.HealthCheckResponse_NOT_SERVING)
		g.health.SetServingStatus("my.pkg.Up", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(srv, g.health)
	}
	go srv.Serve(g.ln)
	t.Cleanup(srv.Stop)
	return g
}

// seen returns the :authority, user agent and TLS SNI of the last request.
func (g *grpcTarget) seen() (authority, userAgent, sni string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.authority, g.userAgent, g.sni
}

func withService(s string) func(*checkTemplate) { return func(t *checkTemplate) { t.service = s } }

// TestGRPCProbe: the health checking protocol's answer decides; what the
// target sees (authority, SNI, user agent); reasons for what goes wrong.
func TestGRPCProbe(t *testing.T) {
	ca := hcNewCA(t, "Test CA")
	caFile := writeCertPEM(t, ca.cert.Raw)
	now := time.Now()
	named := ca.leaf(t, now.Add(-time.Hour), now.Add(time.Hour), "api.example.org")
	withIP := ca.leaf(t, now.Add(-time.Hour), now.Add(time.Hour), "api.example.org", "127.0.0.1")
	plain := newGRPCTarget(t, nil, true)
	noHealth := newGRPCTarget(t, nil, false)
	tlsNamed := newGRPCTarget(t, &named, true)
	tlsIP := newGRPCTarget(t, &withIP, true)
	grpcs := withProtocol(protoGRPCS)
	verify := withTLSVerify(t, caFile)
	tests := []struct {
		name      string
		target    *grpcTarget // nil: a dead port
		opts      []func(*checkTemplate)
		ok        bool
		reason    string // a substring when it starts with "~"
		authority string // "%s": the target's address; "" not checked
		sni       string
	}{
		{name: "SERVING, the server's overall health", target: plain, ok: true, reason: "SERVING", authority: "%s"},
		{name: "a service that is SERVING", target: plain, opts: []func(*checkTemplate){withService("my.pkg.Up")}, ok: true, reason: "SERVING"},
		{name: "a service that is NOT_SERVING", target: plain, opts: []func(*checkTemplate){withService("my.pkg.Down")}, reason: "NOT_SERVING"},
		{name: "a service the server does not know", target: plain, opts: []func(*checkTemplate){withService("my.pkg.Other")}, reason: "rpc NotFound: unknown service"},
		{name: "no health service", target: noHealth, reason: "rpc Unimplemented: unknown service grpc.health.v1.Health"},
		{name: "host sets the authority", target: plain, opts: []func(*checkTemplate){withHost("api.example.org")}, ok: true, reason: "SERVING", authority: "api.example.org"},
		{name: "nothing listens", reason: "connection refused"},
		{name: "grpcs without tls_verify: any certificate", target: tlsNamed, opts: []func(*checkTemplate){grpcs}, ok: true, reason: "SERVING", authority: "%s", sni: ""},
		{name: "grpcs, tls_verify, host: authority, SNI and the name verified", target: tlsNamed,
			opts: []func(*checkTemplate){grpcs, verify, withHost("api.example.org")}, ok: true, reason: "SERVING", authority: "api.example.org", sni: "api.example.org"},
		{name: "grpcs, tls_verify, IP target in the certificate", target: tlsIP, opts: []func(*checkTemplate){grpcs, verify}, ok: true, reason: "SERVING", sni: ""},
		{name: "grpcs, tls_verify, IP target not in the certificate", target: tlsNamed, opts: []func(*checkTemplate){grpcs, verify},
			reason: "~doesn't contain any IP SANs"},
		{name: "grpcs, tls_verify against the system roots", target: tlsNamed, opts: []func(*checkTemplate){grpcs, withTLSVerify(t, ""), withHost("api.example.org")},
			reason: "~certificate signed by unknown authority"},
		{name: "grpcs against a plaintext server", target: plain, opts: []func(*checkTemplate){grpcs}, reason: "~tls: first record does not look like a TLS handshake"},
		{name: "grpc against a TLS server", target: tlsNamed, reason: "~"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := deadAddr(t)
			if tc.target != nil {
				addr = tc.target.addr
			}
			host, port := hostPort(t, addr)
			spec := hcSpec(host, port, append([]func(*checkTemplate){withProtocol(protoGRPC)}, tc.opts...)...)
			ok, reason, took := hcProbe(spec)
			t.Logf("%v %q after %v", ok, reason, took.Round(time.Millisecond))
			if sub, partial := strings.CutPrefix(tc.reason, "~"); ok != tc.ok || partial && !strings.Contains(reason, sub) || !partial && reason != tc.reason {
				t.Errorf("probe = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
			if tc.target == nil || !tc.ok {
				return
			}
			authority, ua, sni := tc.target.seen()
			if want := strings.ReplaceAll(tc.authority, "%s", addr); tc.authority != "" && authority != want {
				t.Errorf(":authority %q, want %q", authority, want)
			}
			if spec.protocol == protoGRPCS && sni != tc.sni {
				t.Errorf("SNI %q, want %q", sni, tc.sni)
			}
			if !strings.HasPrefix(ua, "coredns-multivalue/1 (health check)") {
				t.Errorf("user agent %q, want coredns-multivalue/1 (health check) first", ua)
			}
		})
	}
}

// TestGRPCProbeNewConnectionEachTime: each probe opens its own connection
// and leaves nothing running once it has returned.
func TestGRPCProbeNewConnectionEachTime(t *testing.T) {
	g := newGRPCTarget(t, nil, true)
	host, port := hostPort(t, g.addr)
	spec := hcSpec(host, port, withProtocol(protoGRPC))
	p := newProber(spec, defaultEngine.dialer)
	base := runtime.NumGoroutine()
	const n = 5
	for i := range n {
		if ok, reason, _ := hcProbeWith(p, spec); !ok {
			t.Fatalf("probe %d failed: %s", i, reason)
		}
	}
	if got := g.ln.accepts.Load(); got != n {
		t.Errorf("%d probes opened %d connections, want %d", n, got, n)
	}
	if settled, stacks := hcGoroutinesSettle(base, 3*time.Second); !settled {
		t.Errorf("goroutines still running after %d probes returned (%d before):\n%s", n, base, stacks)
	}
}

// hcCloseWriteAfterRequest reads a request's header (an HTTP/2 client's
// preface), then closes its side without a word and drains what follows: a
// plain close with the client's frames unread would turn into a reset.
func hcCloseWriteAfterRequest(c net.Conn) {
	if hcReadRequest(c) {
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}
}

// hostileGRPCCases are hostile targets of grpc and grpcs checks, for
// TestHostileTargets.
func hostileGRPCCases(t *testing.T) []hostileCase {
	raw := func(h func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return hcRawServer(t, h) }
	}
	grpcOpts := []func(*checkTemplate){withProtocol(protoGRPC)}
	grpcsOpts := []func(*checkTemplate){withProtocol(protoGRPCS)}
	return []hostileCase{
		{name: "grpc: accepts and never answers", target: raw(hcDiscard), opts: grpcOpts, reason: "timeout after 300ms"},
		{name: "grpcs: TLS handshake stall", target: raw(hcDiscard), opts: grpcsOpts, reason: "timeout after 300ms"},
		{name: "grpc: reset when accepted", target: raw(hcReset), opts: grpcOpts, reason: "connection reset"},
		{name: "grpc: reset after the preface", target: raw(hcResetAfterRequest), opts: grpcOpts, reason: "connection reset"},
		{name: "grpc: closed after the preface", target: raw(hcCloseWriteAfterRequest), opts: grpcOpts, reason: "connection closed"},
		{name: "grpc: not HTTP/2", target: raw(hcGarbage), opts: grpcOpts, reason: "error reading server preface"},
		{name: "grpc: an HTTP/1 server", target: raw(hcPlainHTTP), opts: grpcOpts, reason: "error reading server preface"},
		{name: "grpcs: closed after the TLS client hello", target: raw(hcCloseAfterHello), opts: grpcsOpts, reason: "connection closed"},
		{name: "grpcs: plain HTTP", target: raw(hcPlainHTTP), opts: grpcsOpts, reason: "tls: first record does not look like a TLS handshake"},
		{name: "grpc: endless garbage", target: raw(hcWriteForever("", strings.Repeat("\xff", 4096), 0)), opts: grpcOpts, reason: "error reading server preface"},
	}
}

// TestProbersDialThroughTheEngine: every prober connects through the
// engine's dialer, whose Control (the test guard here) vets every address:
// a target beyond loopback is refused before a packet leaves.
func TestProbersDialThroughTheEngine(t *testing.T) {
	for _, opts := range [][]func(*checkTemplate){
		{withProtocol(protoHTTP)},
		{withProtocol(protoHTTPS)},
		{withProtocol(protoTCP)},
		{withProtocol(protoGRPC)},
		{withProtocol(protoGRPCS)},
		{withQuery("www.example.org.", 1)},
	} {
		spec := hcSpec("192.0.2.1", 9999, opts...)
		ok, reason, _ := hcProbe(spec)
		if ok || !strings.Contains(reason, errNotLoopback.Error()) {
			t.Errorf("%s probe of 192.0.2.1 = %v %q, want refused by the dial guard", spec.protocol, ok, reason)
		}
	}
}
