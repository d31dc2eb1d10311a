package multivalue

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hcTimeout is the timeout of probes that are meant to time out: short, so
// hostile targets cost little, yet far above what a loopback answer takes.
const hcTimeout = 300 * time.Millisecond

// hcAnswerTimeout is the timeout of probes that are meant to get an answer (a
// TLS handshake under -race on a busy machine can take a few hundred ms).
const hcAnswerTimeout = 3 * time.Second

// hcSpec builds the spec of a check on host:port from a default template
// (timeout hcAnswerTimeout) that the options change, as a Corefile would.
func hcSpec(host string, port int, opts ...func(*checkTemplate)) *checkSpec {
	tp := newCheckTemplate("test", 1)
	tp.timeout = hcAnswerTimeout
	for _, o := range opts {
		o(tp)
	}
	return tp.spec(host, port, 0)
}

func withProtocol(p string) func(*checkTemplate) { return func(t *checkTemplate) { t.protocol = p } }
func withStatus(rs ...statusRange) func(*checkTemplate) {
	return func(t *checkTemplate) { t.status = rs }
}
func withMatch(m string) func(*checkTemplate) { return func(t *checkTemplate) { t.match = m } }
func withHost(h string) func(*checkTemplate)  { return func(t *checkTemplate) { t.host = h } }
func withPath(p string) func(*checkTemplate)  { return func(t *checkTemplate) { t.path = p } }
func withInvert() func(*checkTemplate)        { return func(t *checkTemplate) { t.invert = true } }
func withTimeout(d time.Duration) func(*checkTemplate) {
	return func(t *checkTemplate) { t.timeout = d }
}

// timeoutFor gives the probe the short hcTimeout when it is meant to time out.
func timeoutFor(reason string, opts []func(*checkTemplate)) []func(*checkTemplate) {
	if strings.HasPrefix(reason, "timeout after") {
		return append(slices.Clone(opts), withTimeout(hcTimeout))
	}
	return opts
}

// withTLSVerify sets tls_verify, with the CA file caFile when not "".
func withTLSVerify(t *testing.T, caFile string) func(*checkTemplate) {
	return func(tp *checkTemplate) {
		tp.tlsVerify = true
		if caFile != "" {
			pool, id, err := loadCAFile(caFile)
			if err != nil {
				t.Fatalf("CA file: %v", err)
			}
			tp.caFile, tp.caPool = id, pool
		}
	}
}

// hcProbe runs one probe of s with a fresh prober, under the check's timeout
// as check.run does, and says how long it took.
func hcProbe(s *checkSpec) (bool, string, time.Duration) {
	return hcProbeWith(newProber(s, defaultEngine.dialer), s)
}

func hcProbeWith(p prober, s *checkSpec) (bool, string, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	ok, reason := p.probe(ctx)
	return ok, reason, time.Since(start)
}

// hostPort splits a listener or server address ("127.0.0.1:4321" or a URL).
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	port, _ := strconv.Atoi(p)
	return h, port
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeCertPEM writes DER certificates as a PEM file in a temporary directory.
func writeCertPEM(t *testing.T, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, der := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHTTPProbeVerdicts: the status and body rules of an http check.
func TestHTTPProbeVerdicts(t *testing.T) {
	dead := deadAddr(t)
	body := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(s)) }
	}
	code := func(c int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(c) }
	}
	redirect := func(c int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+dead+"/elsewhere", c)
		}
	}
	pad := strings.Repeat("x", maxBodyMatch)
	tests := []struct {
		name    string
		handler http.Handler
		opts    []func(*checkTemplate)
		ok      bool
		reason  string // exact
	}{
		{"200", body("OK"), nil, true, "status 200"},
		{"204", code(204), nil, true, "status 204"},
		{"301 to a dead address is not followed", redirect(301), nil, true, "status 301"},
		{"302 to a dead address is not followed", redirect(302), nil, true, "status 302"},
		{"301 fails status 200", redirect(301), []func(*checkTemplate){withStatus(statusRange{200, 200})}, false, "status 301"},
		{"404", code(404), nil, false, "status 404"},
		{"500", code(500), nil, false, "status 500"},
		{"503", code(503), nil, false, "status 503"},
		{"200 within list 200 204", body("OK"), []func(*checkTemplate){withStatus(statusRange{200, 200}, statusRange{204, 204})}, true, "status 200"},
		{"204 within list 200 204", code(204), []func(*checkTemplate){withStatus(statusRange{200, 200}, statusRange{204, 204})}, true, "status 204"},
		{"201 outside list 200 204", code(201), []func(*checkTemplate){withStatus(statusRange{200, 200}, statusRange{204, 204})}, false, "status 201"},
		{"503 within range 500-599", code(503), []func(*checkTemplate){withStatus(statusRange{500, 599})}, true, "status 503"},
		{"200 outside range 500-599", body("OK"), []func(*checkTemplate){withStatus(statusRange{500, 599})}, false, "status 200"},
		{"404 at the low end of 404-404 200-299", code(404), []func(*checkTemplate){withStatus(statusRange{200, 299}, statusRange{404, 404})}, true, "status 404"},
		{"match found", body("all systems GO"), []func(*checkTemplate){withMatch("GO")}, true, "status 200, body matches"},
		{"match not found", body("all systems down"), []func(*checkTemplate){withMatch("GO")}, false, "body does not match"},
		{"match on an empty body", code(200), []func(*checkTemplate){withMatch("GO")}, false, "body does not match"},
		{"match is case-sensitive", body("go"), []func(*checkTemplate){withMatch("GO")}, false, "body does not match"},
		{"match found only beyond 5120 bytes", body(pad + "GO"), []func(*checkTemplate){withMatch("GO")}, false, "body does not match"},
		{"match straddling byte 5120", body(pad[:maxBodyMatch-1] + "GO"), []func(*checkTemplate){withMatch("GO")}, false, "body does not match"},
		{"match ending at byte 5120 of a longer body", body(pad[:maxBodyMatch-2] + "GO" + pad + pad), []func(*checkTemplate){withMatch("GO")}, true, "status 200, body matches"},
		{"match at the start of a long body", body("GO" + pad + pad + pad), []func(*checkTemplate){withMatch("GO")}, true, "status 200, body matches"},
		{"match with a failing status", code(503), []func(*checkTemplate){withMatch("GO")}, false, "status 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			host, port := hostPort(t, srv.URL)
			ok, reason, _ := hcProbe(hcSpec(host, port, tc.opts...))
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("probe = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
		})
	}
}

// TestHTTPProbeRequest: what the target sees: path and query, Host header,
// no compression asked, a new connection that is closed.
func TestHTTPProbeRequest(t *testing.T) {
	type seen struct {
		host, uri, accEnc, conn string
	}
	tests := []struct {
		name     string
		opts     []func(*checkTemplate)
		wantHost string // "%s" stands for host:port of the server
		wantURI  string
	}{
		{"defaults", nil, "%s", "/"},
		{"host option", []func(*checkTemplate){withHost("www.example.org")}, "www.example.org", "/"},
		{"path with query", []func(*checkTemplate){withPath("/health?full=1&x=a%20b")}, "%s", "/health?full=1&x=a%20b"},
		{"escapes in the path kept as written", []func(*checkTemplate){withPath("/a%20b/c%2Fd")}, "%s", "/a%20b/c%2Fd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan seen, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- seen{r.Host, r.RequestURI, r.Header.Get("Accept-Encoding"), r.Header.Get("Connection")}
			}))
			defer srv.Close()
			host, port := hostPort(t, srv.URL)
			if ok, reason, _ := hcProbe(hcSpec(host, port, tc.opts...)); !ok {
				t.Fatalf("probe failed: %s", reason)
			}
			s := <-got
			if want := strings.ReplaceAll(tc.wantHost, "%s", srv.Listener.Addr().String()); s.host != want {
				t.Errorf("Host = %q, want %q", s.host, want)
			}
			if s.uri != tc.wantURI {
				t.Errorf("request URI = %q, want %q", s.uri, tc.wantURI)
			}
			if s.accEnc != "" {
				t.Errorf("Accept-Encoding = %q, want none (match must see the body as sent)", s.accEnc)
			}
			if s.conn != "close" {
				t.Errorf("Connection = %q, want close", s.conn)
			}
		})
	}
}

// TestHTTPProbeIPv6: an IPv6 target is bracketed in the Host header.
func TestHTTPProbeIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	got := make(chan string, 1)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Host
	})}}
	srv.Start()
	defer srv.Close()
	_, port := hostPort(t, ln.Addr().String())
	if ok, reason, _ := hcProbe(hcSpec("::1", port)); !ok {
		t.Fatalf("probe of [::1]:%d failed: %s", port, reason)
	}
	if h, want := <-got, net.JoinHostPort("::1", strconv.Itoa(port)); h != want {
		t.Errorf("Host = %q, want %q", h, want)
	}
}

// TestHTTPProbeDefaultHost: the Host header and URL on the protocol's default
// port, where no test can listen: no :PORT then, IPv6 in brackets.
func TestHTTPProbeDefaultHost(t *testing.T) {
	tests := []struct {
		protocol, host string
		port           int
		wantHost       string
		wantURL        string
	}{
		{"http", "127.0.0.1", 80, "127.0.0.1", "http://127.0.0.1:80/"},
		{"http", "127.0.0.1", 8080, "127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"https", "127.0.0.1", 443, "127.0.0.1", "https://127.0.0.1:443/"},
		{"https", "127.0.0.1", 80, "127.0.0.1:80", "https://127.0.0.1:80/"},
		{"http", "::1", 80, "[::1]", "http://[::1]:80/"},
		{"http", "::1", 8080, "[::1]:8080", "http://[::1]:8080/"},
		{"http", "app.example.org", 80, "app.example.org", "http://app.example.org:80/"},
		{"https", "app.example.org", 8443, "app.example.org:8443", "https://app.example.org:8443/"},
	}
	for _, tc := range tests {
		t.Run(tc.protocol+" "+tc.host+" "+strconv.Itoa(tc.port), func(t *testing.T) {
			p := newProber(hcSpec(tc.host, tc.port, withProtocol(tc.protocol)), defaultEngine.dialer).(*httpProber)
			if p.host != tc.wantHost || p.url != tc.wantURL {
				t.Errorf("Host %q URL %q, want %q %q", p.host, p.url, tc.wantHost, tc.wantURL)
			}
		})
	}
}

// TestHTTPSProbe: certificates are not checked without tls_verify, are with
// it (against the CA file when given), and SNI is the host option.
func TestHTTPSProbe(t *testing.T) {
	// Load the system roots now: the first load takes seconds under -race
	// and is no part of what a probe measures.
	x509.SystemCertPool()
	var sni atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni.Store(r.TLS.ServerName)
		w.Write([]byte("OK"))
	}))
	srv.StartTLS()
	defer srv.Close()
	ca := writeCertPEM(t, srv.Certificate().Raw) // names example.com, 127.0.0.1, ::1
	host, port := hostPort(t, srv.URL)
	https := withProtocol(protoHTTPS)
	tests := []struct {
		name    string
		opts    []func(*checkTemplate)
		ok      bool
		reason  string // substring
		wantSNI string
	}{
		{"self-signed without tls_verify", nil, true, "status 200", ""},
		{"self-signed with tls_verify", []func(*checkTemplate){withTLSVerify(t, "")}, false, "certificate signed by unknown authority", ""},
		{"tls_verify with the CA file", []func(*checkTemplate){withTLSVerify(t, ca)}, true, "status 200", ""},
		{"host sets SNI", []func(*checkTemplate){withHost("www.example.org")}, true, "status 200", "www.example.org"},
		{"tls_verify checks the name in host", []func(*checkTemplate){withHost("example.com"), withTLSVerify(t, ca)}, true, "status 200", "example.com"},
		{"tls_verify rejects a name the certificate lacks", []func(*checkTemplate){withHost("www.example.org"), withTLSVerify(t, ca)}, false, "x509: certificate is valid for example.com, *.example.com, not www.example.org", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sni.Store("unset")
			ok, reason, _ := hcProbe(hcSpec(host, port, append([]func(*checkTemplate){https}, tc.opts...)...))
			if ok != tc.ok || !strings.Contains(reason, tc.reason) {
				t.Fatalf("probe = %v %q, want %v and %q", ok, reason, tc.ok, tc.reason)
			}
			if ok && sni.Load() != tc.wantSNI {
				t.Errorf("SNI = %q, want %q", sni.Load(), tc.wantSNI)
			}
		})
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepts.Add(1)
	}
	return c, err
}

// TestHTTPProbeNewConnectionEachTime: every probe of one prober opens its
// own connection and closes it, whether or not the body was read, so no
// connection is kept alive between probes and none is left open.
func TestHTTPProbeNewConnectionEachTime(t *testing.T) {
	tests := []struct {
		name    string
		opts    []func(*checkTemplate)
		endless bool // the server writes until the client closes
	}{
		{"no match, body unread", nil, true},
		{"match early in an endless body", []func(*checkTemplate){withMatch("GO")}, true},
		{"match in a small body", []func(*checkTemplate){withMatch("GO")}, false},
		{"https, body unread", []func(*checkTemplate){withProtocol(protoHTTPS)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			states := map[http.ConnState]int{}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				chunk := []byte(strings.Repeat("GO", 16<<10))
				for {
					if _, err := w.Write(chunk); err != nil || !tc.endless {
						return
					}
				}
			}))
			ln := &countingListener{Listener: srv.Listener}
			srv.Listener = ln
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				mu.Lock()
				states[s]++
				mu.Unlock()
			}
			if isHTTPS(tc.opts) {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			host, port := hostPort(t, srv.URL)
			spec := hcSpec(host, port, tc.opts...)
			p := newProber(spec, defaultEngine.dialer)
			// One long-lived context for all probes: its end would close
			// whatever a probe left open, so it must not come first.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			const n = 5
			for i := range n {
				if ok, reason := p.probe(ctx); !ok {
					t.Fatalf("probe %d failed: %s", i, reason)
				}
			}
			if got := ln.accepts.Load(); got != n {
				t.Errorf("%d probes opened %d connections, want %d", n, got, n)
			}
			closed := eventually(5*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return states[http.StateClosed] == n
			})
			if !closed {
				mu.Lock()
				t.Errorf("after %d probes the server saw connection states %v, want %d closed", n, states, n)
				mu.Unlock()
			}
		})
	}
}

// isHTTPS reports whether opts set protocol https.
func isHTTPS(opts []func(*checkTemplate)) bool {
	tp := newCheckTemplate("x", 1)
	for _, o := range opts {
		o(tp)
	}
	return tp.protocol == protoHTTPS
}

// TestProbeInvert: invert turns a passing probe into an unhealthy value and a
// failing one into a healthy value.
func TestProbeInvert(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	dead := deadAddr(t)
	tests := []struct {
		name        string
		addr        string
		opts        []func(*checkTemplate)
		wantHealthy bool
	}{
		{"http up", up.URL, nil, true},
		{"http up, inverted", up.URL, []func(*checkTemplate){withInvert()}, false},
		{"http 503, inverted", srv.URL, []func(*checkTemplate){withInvert()}, true},
		{"tcp open, inverted", up.URL, []func(*checkTemplate){withProtocol(protoTCP), withInvert()}, false},
		{"tcp refused, inverted", dead, []func(*checkTemplate){withProtocol(protoTCP), withInvert()}, true},
		{"tcp refused", dead, []func(*checkTemplate){withProtocol(protoTCP)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, port := hostPort(t, tc.addr)
			c := newTestCheck(t, hcSpec(host, port, tc.opts...))
			c.inflight.Store(true)
			c.run()
			if !c.hasResult() || c.isHealthy() != tc.wantHealthy {
				t.Errorf("after one probe: result %v healthy %v, want healthy %v", c.hasResult(), c.isHealthy(), tc.wantHealthy)
			}
			if c.inflight.Load() {
				t.Error("run left the check marked in flight")
			}
		})
	}
}

// wrapped hides an error behind a type of its own, as net/http does.
type wrapped struct{ err error }

func (w wrapped) Error() string {
	return "net/http: HTTP/1.x transport connection broken: " + w.err.Error()
}
func (w wrapped) Unwrap() error { return w.err }

// timeoutErr is a net.Error that says it timed out (net/http's TLS
// handshake timeout is one).
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "net/http: TLS handshake timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestDescribeErr: the reasons operators read, whatever wraps the error. Some
// of these come up only now and then against a real socket (a reset before
// or after the request was written), so each is pinned here.
func TestDescribeErr(t *testing.T) {
	op := func(op string, err error) error {
		return &net.OpError{Op: op, Net: "tcp",
			Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
			Addr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, Err: &os.SyscallError{Syscall: op, Err: err}}
	}
	u := func(err error) error { return &url.Error{Op: "Get", URL: "http://127.0.0.1:8080/", Err: err} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"deadline", u(context.DeadlineExceeded), "timeout after 4s"},
		{"i/o timeout", u(op("read", os.ErrDeadlineExceeded)), "timeout after 4s"},
		{"TLS handshake timeout", u(timeoutErr{}), "timeout after 4s"},
		{"refused", u(op("dial", syscall.ECONNREFUSED)), "connection refused"},
		{"reset on read", u(wrapped{op("read", syscall.ECONNRESET)}), "connection reset"},
		{"reset before the write: broken pipe", u(wrapped{op("write", syscall.EPIPE)}), "connection reset"},
		{"unreachable", u(op("dial", syscall.EHOSTUNREACH)), "unreachable"},
		{"closed", u(io.EOF), "connection closed"},
		{"closed mid-response", u(wrapped{io.ErrUnexpectedEOF}), "connection closed mid-response"},
		{"no such host", u(op("dial", &net.DNSError{Err: "no such host", Name: "down.example.org", IsNotFound: true})), "no such host down.example.org"},
		{"DNS failure", u(op("dial", &net.DNSError{Err: "server misbehaving", Name: "x.example.org"})), "resolving x.example.org: server misbehaving"},
		{"other errors lose the wrappers only", u(wrapped{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("something odd")}}), "something odd"},
		{"net/http prefix", u(errors.New("net/http: server response headers exceeded 65536 bytes; aborted")), "server response headers exceeded 65536 bytes; aborted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeErr(tc.err, 4*time.Second); got != tc.want {
				t.Errorf("describeErr(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestHTTPProbeMethodAndHeaders: method and header reach the target; a
// header given twice sends both values; a User-Agent of the operator's
// replaces the probe's.
func TestHTTPProbeMethodAndHeaders(t *testing.T) {
	type seen struct {
		method string
		header http.Header
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.Header.Clone()}
		w.Write([]byte("OK"))
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	withMethod := func(m string) func(*checkTemplate) { return func(t *checkTemplate) { t.method = m } }
	withHeader := func(name, value string) func(*checkTemplate) {
		return func(t *checkTemplate) { t.header = append(t.header, httpHeader{name, value}) }
	}
	tests := []struct {
		name   string
		opts   []func(*checkTemplate)
		method string
		want   map[string][]string
	}{
		{"defaults", nil, "GET", map[string][]string{"User-Agent": {"coredns-multivalue/1 (health check)"}, "X-Token": nil}},
		{"HEAD", []func(*checkTemplate){withMethod("HEAD")}, "HEAD", nil},
		{"POST with headers", []func(*checkTemplate){withMethod("POST"), withHeader("X-Token", "a"), withHeader("Accept", "text/plain"), withHeader("X-Token", "b")},
			"POST", map[string][]string{"X-Token": {"a", "b"}, "Accept": {"text/plain"}, "Content-Length": {"0"}}},
		{"a User-Agent of the operator's", []func(*checkTemplate){withHeader("User-Agent", "probe/2")}, "GET", map[string][]string{"User-Agent": {"probe/2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ok, reason, _ := hcProbe(hcSpec(host, port, tc.opts...)); !ok {
				t.Fatalf("probe failed: %s", reason)
			}
			s := <-got
			if s.method != tc.method {
				t.Errorf("method %s, want %s", s.method, tc.method)
			}
			for name, want := range tc.want {
				if got := s.header.Values(name); !slices.Equal(got, want) {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
		})
	}
}
