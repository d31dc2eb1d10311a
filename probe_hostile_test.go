package multivalue

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hcMargin is what a hostile probe may take beyond its timeout: scheduling on
// a loaded machine under -race, never a second attempt.
const hcMargin = time.Second

// hcRawServer listens on 127.0.0.1 and hands every connection to handle, each
// in its own goroutine. At cleanup it closes the listener and every
// connection and waits for the handlers.
func hcRawServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hcServe(t, ln, handle)
	return ln.Addr().String()
}

// hcServe is hcRawServer on a listener of the caller's.
func hcServe(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// Hostile behaviours of a raw server.

// hcDiscard accepts and never answers (nor speaks TLS).
func hcDiscard(c net.Conn) { io.Copy(io.Discard, c) }

// hcReset resets the connection as soon as it is accepted (SO_LINGER 0).
func hcReset(c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// hcReadRequest reads a request's header, so that what follows is an answer.
func hcReadRequest(c net.Conn) bool {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

// hcResetAfterRequest reads the request, then resets instead of answering.
func hcResetAfterRequest(c net.Conn) {
	if hcReadRequest(c) {
		hcReset(c)
	}
}

// hcCloseAfterRequest reads the request, then closes without a word.
func hcCloseAfterRequest(c net.Conn) {
	hcReadRequest(c)
}

// hcAnswerThenClose reads the request, writes answer and closes.
func hcAnswerThenClose(answer string) func(net.Conn) {
	return func(c net.Conn) {
		if hcReadRequest(c) {
			io.WriteString(c, answer)
		}
	}
}

// hcPlainHTTP answers in plain HTTP at once, without waiting for a request
// (or a TLS client hello).
func hcPlainHTTP(c net.Conn) {
	io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, c)
}

// hcCloseAfterHello reads a TLS client hello (all of it, lest the close
// turn into a reset), then closes without a word.
func hcCloseAfterHello(c net.Conn) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return
	}
	io.ReadFull(c, make([]byte, int(hdr[3])<<8|int(hdr[4])))
}

// hcGarbage answers with something that is not HTTP.
func hcGarbage(c net.Conn) {
	if hcReadRequest(c) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
		io.Copy(io.Discard, c)
	}
}

// hcWriteForever answers with head, then writes chunk every pause until
// the client goes away.
func hcWriteForever(head, chunk string, pause time.Duration) func(net.Conn) {
	return func(c net.Conn) {
		if !hcReadRequest(c) {
			return
		}
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		for {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
			time.Sleep(pause)
		}
	}
}

// hcHugeHeaders answers with 10 MiB of headers.
func hcHugeHeaders(c net.Conn) {
	if !hcReadRequest(c) {
		return
	}
	line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
	w := bufio.NewWriter(c)
	w.WriteString("HTTP/1.1 200 OK\r\n")
	for written := 0; written < 10<<20; written += len(line) {
		if _, err := w.WriteString(line); err != nil {
			return
		}
	}
	w.WriteString("\r\n")
	w.Flush()
}

// hcDNS is a DNS server on loopback for the probes' resolver.
type hcDNS struct {
	addr    string
	queries atomic.Int64
}

// hcStartDNS serves hosts (name. → IPv4) on 127.0.0.1 over UDP; any other name
// is NXDOMAIN. A silent server never answers.
func hcStartDNS(t *testing.T, hosts map[string]string, silent bool) *hcDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &hcDNS{addr: pc.LocalAddr().String()}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			d.queries.Add(1)
			if silent || len(r.Question) != 1 {
				return
			}
			q := r.Question[0]
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			ip, ok := hosts[strings.ToLower(q.Name)]
			switch {
			case !ok:
				m.Rcode = dns.RcodeNameError
			case q.Qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.ParseIP(ip),
				})
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

// hcUseResolver points the probes' resolver at d until the test ends. Probers
// take the resolver when built, so build them after this. At the end it
// closes the resolver's sockets and refuses new ones, so that a lookup Go's
// resolver goes on with after a probe gave up (see TestHostileHostNames)
// ends with the test.
func hcUseResolver(t *testing.T, d *hcDNS) {
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	old := defaultEngine.dialer.Resolver
	defaultEngine.dialer.Resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if closed {
				return nil, errors.New("test over")
			}
			var dl net.Dialer
			c, err := dl.DialContext(ctx, "udp", d.addr)
			if err == nil {
				conns = append(conns, c)
			}
			return c, err
		},
	}
	t.Cleanup(func() {
		defaultEngine.dialer.Resolver = old
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
}

// hcCA is a certificate authority minted for a test.
type hcCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var hcSerial atomic.Int64

func hcNewCA(t *testing.T, name string) *hcCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(hcSerial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &hcCA{cert: cert, key: key}
}

// leaf mints a server certificate for names (DNS names or IPs) valid from
// notBefore to notAfter.
func (ca *hcCA) leaf(t *testing.T, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(hcSerial.Add(1)),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// hcTLSServer serves OK over TLS with cert.
func hcTLSServer(t *testing.T, cert tls.Certificate) string {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("OK"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// hcGoroutinesSettle waits until the number of goroutines is back to at most
// base and reports whether it got there, with the stacks if not.
func hcGoroutinesSettle(base int, d time.Duration) (bool, string) {
	if eventually(d, func() bool { return runtime.NumGoroutine() <= base }) {
		return true, ""
	}
	buf := make([]byte, 1<<20)
	return false, string(buf[:runtime.Stack(buf, true)])
}

// hostileCase is a target that misbehaves and how a check must judge it.
type hostileCase struct {
	name   string
	target func(t *testing.T) string // host:port to probe
	opts   []func(*checkTemplate)
	ok     bool
	reason string // substring of the reason
}

func hostileCases(t *testing.T) []hostileCase {
	ca := hcNewCA(t, "Test CA")
	other := hcNewCA(t, "Other CA")
	caFile := writeCertPEM(t, ca.cert.Raw)
	now := time.Now()
	https := withProtocol(protoHTTPS)
	verify := withTLSVerify(t, caFile)
	raw := func(h func(net.Conn)) func(*testing.T) string {
		return func(t *testing.T) string { return hcRawServer(t, h) }
	}
	tlsWith := func(ca *hcCA, from, to time.Time, names ...string) func(*testing.T) string {
		return func(t *testing.T) string { return hcTLSServer(t, ca.leaf(t, from, to, names...)) }
	}
	redirectLoop := func(t *testing.T) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	endless := hcWriteForever("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", strings.Repeat("x", 32<<10), 0)
	return []hostileCase{
		{name: "accepts and never answers", target: raw(hcDiscard),
			reason: "timeout after 300ms"},
		{name: "headers then a trickled body, with match",
			target: raw(hcWriteForever("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", "x", 20*time.Millisecond)),
			opts:   []func(*checkTemplate){withMatch("GO")}, reason: "timeout after 300ms"},
		{name: "trickled headers",
			target: raw(hcWriteForever("HTTP/1.1 200 OK\r\n", "X-A: b\r\n", 20*time.Millisecond)),
			reason: "timeout after 300ms"},
		{name: "endless body, with match", target: raw(endless),
			opts: []func(*checkTemplate){withMatch("GO")}, reason: "body does not match"},
		{name: "endless body, without match", target: raw(endless),
			ok: true, reason: "status 200"},
		{name: "endless 1xx informational responses",
			target: raw(hcWriteForever("", "HTTP/1.1 102 Processing\r\n\r\n", time.Millisecond)),
			reason: "timeout after 300ms"}, // each 1xx counts against the 64 KiB of headers
		{name: "a flood of 1xx informational responses",
			target: raw(hcWriteForever("", strings.Repeat("HTTP/1.1 102 Processing\r\n\r\n", 1000), 0)),
			reason: "server response headers exceeded 65536 bytes; aborted"},
		{name: "10 MiB of headers", target: raw(hcHugeHeaders),
			reason: "server response headers exceeded 65536 bytes; aborted"},
		{name: "not HTTP", target: raw(hcGarbage),
			reason: `malformed HTTP response "SSH-2.0-OpenSSH_9.6"`},
		{name: "reset when accepted", target: raw(hcReset),
			reason: "connection reset"},
		{name: "reset after the request", target: raw(hcResetAfterRequest),
			reason: "connection reset"},
		{name: "closed after the request", target: raw(hcCloseAfterRequest),
			reason: "connection closed"},
		{name: "closed amid the headers",
			target: raw(hcAnswerThenClose("HTTP/1.1 200 OK\r\nContent-Type: te")),
			reason: "connection closed mid-response"},
		{name: "body cut short, with match",
			target: raw(hcAnswerThenClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nnot yet")),
			opts:   []func(*checkTemplate){withMatch("GO")}, reason: "connection closed mid-response"},
		{name: "body cut short after the match",
			target: raw(hcAnswerThenClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nGO")),
			opts:   []func(*checkTemplate){withMatch("GO")}, ok: true, reason: "status 200, body matches"},
		{name: "closed after the TLS client hello", target: raw(hcCloseAfterHello),
			opts: []func(*checkTemplate){https}, reason: "connection closed"},
		{name: "TLS handshake stall", target: raw(hcDiscard),
			opts: []func(*checkTemplate){https}, reason: "timeout after 300ms"},
		{name: "TLS handshake stall, tls_verify", target: raw(hcDiscard),
			opts: []func(*checkTemplate){https, verify}, reason: "timeout after 300ms"},
		{name: "plain HTTP on an https check", target: raw(hcPlainHTTP),
			opts: []func(*checkTemplate){https}, reason: "http: server gave HTTP response to HTTPS client"},
		{name: "expired certificate, tls_verify",
			target: tlsWith(ca, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "www.example.org"),
			opts:   []func(*checkTemplate){https, verify, withHost("www.example.org")},
			reason: "certificate has expired"},
		{name: "expired certificate, no tls_verify",
			target: tlsWith(ca, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "www.example.org"),
			opts:   []func(*checkTemplate){https, withHost("www.example.org")},
			ok:     true, reason: "status 200"},
		{name: "unknown CA, tls_verify",
			target: tlsWith(other, now.Add(-time.Hour), now.Add(time.Hour), "www.example.org"),
			opts:   []func(*checkTemplate){https, verify, withHost("www.example.org")},
			reason: "certificate signed by unknown authority"},
		{name: "wrong name, tls_verify",
			target: tlsWith(ca, now.Add(-time.Hour), now.Add(time.Hour), "other.example.net"),
			opts:   []func(*checkTemplate){https, verify, withHost("www.example.org")},
			reason: "certificate is valid for other.example.net, not www.example.org"},
		{name: "IP target not in the certificate, tls_verify",
			target: tlsWith(ca, now.Add(-time.Hour), now.Add(time.Hour), "www.example.org"),
			opts:   []func(*checkTemplate){https, verify},
			reason: "doesn't contain any IP SANs"},
		{name: "valid certificate for the IP target, tls_verify",
			target: tlsWith(ca, now.Add(-time.Hour), now.Add(time.Hour), "127.0.0.1"),
			opts:   []func(*checkTemplate){https, verify},
			ok:     true, reason: "status 200"},
		{name: "redirect loop, default status", target: redirectLoop,
			ok: true, reason: "status 302"},
		{name: "redirect loop, status 200", target: redirectLoop,
			opts: []func(*checkTemplate){withStatus(statusRange{200, 200})}, reason: "status 302"},
	}
}

// TestHostileTargets: every hostile target is judged within its timeout, for
// the reason an operator should read, and leaves no goroutine behind once the
// probe has returned (the target still up and hostile).
func TestHostileTargets(t *testing.T) {
	slow(t)
	for _, tc := range slices.Concat(hostileCases(t), hostileGRPCCases(t), hostileDNSCases(t)) {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.target(t)
			host, port := hostPort(t, addr)
			spec := hcSpec(host, port, timeoutFor(tc.reason, tc.opts)...)
			base := runtime.NumGoroutine()
			ok, reason, took := hcProbe(spec)
			t.Logf("%v %q after %v", ok, reason, took.Round(time.Millisecond))
			if ok != tc.ok || !strings.Contains(reason, tc.reason) {
				t.Errorf("probe = %v %q, want %v and %q", ok, reason, tc.ok, tc.reason)
			}
			if took > spec.timeout+hcMargin {
				t.Errorf("probe took %v, timeout %v", took, spec.timeout)
			}
			if settled, stacks := hcGoroutinesSettle(base, 3*time.Second); !settled {
				t.Errorf("goroutines still running after the probe returned (%d before it):\n%s", base, stacks)
			}
		})
	}
}

// TestHostileHostNames: host names are resolved at probe time through the
// probes' resolver, here a loopback DNS server; a name that does not exist,
// or a DNS server that does not answer, fail the check in time.
//
// When the DNS server does not answer, the probe returns at its timeout but
// Go's resolver carries on with the lookup in the background: it shares
// lookups between callers and cannot interrupt a UDP read on cancellation,
// only at its own deadline (resolv.conf's timeout and attempts). Identical
// lookups in flight are shared, so that costs at most one lookup per name;
// the goroutine check is skipped for those cases (lingers).
func TestHostileHostNames(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("host " + r.Host))
	}))
	defer web.Close()
	_, port := hostPort(t, web.URL)
	ca := hcNewCA(t, "Test CA")
	caFile := writeCertPEM(t, ca.cert.Raw)
	tlsWeb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("SNI " + r.TLS.ServerName))
	}))
	tlsWeb.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "up.example.org")}}
	tlsWeb.StartTLS()
	defer tlsWeb.Close()
	_, tlsPort := hostPort(t, tlsWeb.URL)
	answering := hcStartDNS(t, map[string]string{"up.example.org.": "127.0.0.1"}, false)
	silent := hcStartDNS(t, nil, true)
	tests := []struct {
		name    string
		dns     *hcDNS
		host    string
		opts    []func(*checkTemplate)
		ok      bool
		reason  string
		lingers bool
	}{
		{"resolves, http", answering, "up.example.org", []func(*checkTemplate){withMatch(fmt.Sprintf("host up.example.org:%d", port))}, true, "status 200, body matches", false},
		{"resolves, tcp", answering, "up.example.org", []func(*checkTemplate){withProtocol(protoTCP)}, true, "connected", false},
		{"resolves, https, tls_verify: SNI and the certificate name the host", answering, "up.example.org", []func(*checkTemplate){withProtocol(protoHTTPS), withTLSVerify(t, caFile), withMatch("SNI up.example.org")}, true, "status 200, body matches", false},
		{"NXDOMAIN, http", answering, "down.example.org", nil, false, "no such host down.example.org", false},
		{"NXDOMAIN, tcp", answering, "down.example.org", []func(*checkTemplate){withProtocol(protoTCP)}, false, "no such host down.example.org", false},
		{"DNS server silent, http", silent, "up.example.org", nil, false, "timeout after 300ms", true},
		{"DNS server silent, tcp", silent, "up.example.org", []func(*checkTemplate){withProtocol(protoTCP)}, false, "timeout after 300ms", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hcUseResolver(t, tc.dns)
			before := tc.dns.queries.Load()
			spec := hcSpec(tc.host, port, timeoutFor(tc.reason, tc.opts)...)
			if spec.protocol == protoHTTPS {
				spec = hcSpec(tc.host, tlsPort, timeoutFor(tc.reason, tc.opts)...)
			}
			base := runtime.NumGoroutine()
			ok, reason, took := hcProbe(spec)
			t.Logf("%v %q after %v", ok, reason, took.Round(time.Millisecond))
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("probe = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
			if tc.dns.queries.Load() == before {
				t.Error("the loopback DNS server got no query")
			}
			if took > spec.timeout+hcMargin {
				t.Errorf("probe took %v, timeout %v", took, spec.timeout)
			}
			if tc.lingers {
				return
			}
			if settled, stacks := hcGoroutinesSettle(base, 3*time.Second); !settled {
				t.Errorf("goroutines still running after the probe returned (%d before it):\n%s", base, stacks)
			}
		})
	}
}

// TestHostileManyAtOnce: 500 hanging targets probed at once all fail within
// their timeout, and leave no goroutine behind.
func TestHostileManyAtOnce(t *testing.T) {
	slow(t)
	silent := hcRawServer(t, hcDiscard)
	trickle := hcRawServer(t, hcWriteForever("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", "x", 50*time.Millisecond))
	host, silentPort := hostPort(t, silent)
	_, tricklePort := hostPort(t, trickle)
	short := withTimeout(hcTimeout)
	_, silentUDPPort := hostPort(t, hcDNSRaw(t, hcUDPSilent, nil))
	kinds := []*checkSpec{
		hcSpec(host, silentPort, short),                                              // no answer
		hcSpec(host, silentPort, short, withProtocol(protoHTTPS)),                    // no TLS handshake
		hcSpec(host, tricklePort, short, withMatch("GO")),                            // trickled body
		hcSpec(host, silentPort, short, withProtocol(protoGRPC)),                     // no HTTP/2 settings
		hcSpec(host, silentPort, short, withProtocol(protoGRPCS)),                    // no TLS handshake
		hcSpec(host, silentUDPPort, short, withQuery("www.example.org.", dns.TypeA)), // no DNS answer
	}
	const n = 500
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	took := make([]time.Duration, n)
	reasons := make([]string, n)
	oks := make([]bool, n)
	for i := range n {
		s := kinds[i%len(kinds)]
		wg.Go(func() { oks[i], reasons[i], took[i] = hcProbe(s) })
	}
	wg.Wait()
	slices.Sort(took)
	t.Logf("%d probes: median %v, p99 %v, max %v", n, took[n/2], took[n*99/100], took[n-1])
	for i := range n {
		if oks[i] || reasons[i] != "timeout after 300ms" {
			t.Errorf("probe %d = %v %q, want a timeout", i, oks[i], reasons[i])
			break
		}
	}
	// 500 probes at once on 2 busy cores under -race: allow more than one
	// probe's margin, yet far less than any hang.
	if took[n-1] > hcTimeout+3*time.Second {
		t.Errorf("slowest of %d probes took %v, timeout %v", n, took[n-1], hcTimeout)
	}
	if settled, stacks := hcGoroutinesSettle(base, 10*time.Second); !settled {
		t.Errorf("goroutines still running 10s after %d probes returned (%d before):\n%.20000s", n, base, stacks)
	}
}
