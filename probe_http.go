package multivalue

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// maxHeaderBytes bounds the response headers a probe reads: a target that
// floods headers fails instead of costing memory.
const maxHeaderBytes = 64 << 10

// httpProber passes when an HTTP(S) response with an accepted status arrives
// and, with match, the first 5120 bytes of its body contain the string.
type httpProber struct {
	transport *http.Transport
	client    *http.Client
	method    string
	url       string
	host      string // Host header
	header    http.Header
	status    []statusRange
	match     []byte
	timeout   time.Duration // for the reason only: ctx enforces it
}

func newHTTPProber(s *checkSpec, dialer *net.Dialer) *httpProber {
	tlsConf := &tls.Config{
		// Without tls_verify, as Route 53, a certificate is not checked: the
		// check asks whether the server is up, not whether it is trusted.
		InsecureSkipVerify: !s.tlsVerify,
		RootCAs:            s.caPool, // nil: the system roots
		// SNI and the name verified: the host option if set; else net/http
		// takes the target from the URL (and sends no SNI for an IP, whose
		// certificate must then name the IP).
		ServerName: s.hostHeader,
	}
	// The transport dials under a context detached from the request's
	// cancellation (so that a later request could use the connection), and
	// for a custom Transport a TLS handshake has no time limit: a target that
	// accepts and never speaks TLS would hold the dial, a goroutine and a
	// socket long after the probe gave up. probe cancels such a dial when it
	// returns (CloseIdleConnections); the dial and handshake timeouts below
	// bound it even so.
	d := *dialer
	d.Timeout = s.timeout
	transport := &http.Transport{
		Proxy:                  nil, // never send probes through an environment proxy
		DialContext:            d.DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    s.timeout,
		DisableKeepAlives:      true, // a new connection for every probe
		DisableCompression:     true, // match looks at the body as sent
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	host := s.hostHeader
	if host == "" {
		host = s.host
		if s.port != defaultPort(s.protocol) {
			host = net.JoinHostPort(s.host, strconv.Itoa(s.port))
		} else if net.ParseIP(s.host) != nil && net.ParseIP(s.host).To4() == nil {
			host = "[" + s.host + "]"
		}
	}
	header := http.Header{"User-Agent": {"coredns-multivalue/1 (health check)"}}
	for _, h := range s.header {
		if h.name == "User-Agent" && header.Get("User-Agent") == "coredns-multivalue/1 (health check)" {
			header.Del("User-Agent") // the operator's replaces ours
		}
		header.Add(h.name, h.value) // a name given twice sends both
	}
	return &httpProber{
		transport: transport,
		client: &http.Client{
			Transport: transport,
			// A redirect is an answer in itself (3xx counts as healthy by
			// default), never a reason to probe another address.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		// The path goes out as written (the parser refused blanks and
		// control characters): %-escapes and a ?query stay as they are.
		method:  s.method,
		url:     s.protocol + "://" + s.target() + s.path,
		host:    host,
		header:  header,
		status:  s.statusRanges,
		match:   []byte(s.match),
		timeout: s.timeout,
	}
}

func (p *httpProber) probe(ctx context.Context) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, p.method, p.url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Host = p.host
	req.Header = p.header.Clone()
	// Cancel a dial or TLS handshake still going on behind a failed
	// request; with keep-alives off there is no idle connection to close.
	defer p.transport.CloseIdleConnections()
	resp, err := p.client.Do(req)
	if err != nil {
		return false, describeErr(err, p.timeout)
	}
	defer resp.Body.Close() // unread: with keep-alives off this closes the connection
	if !statusOK(p.status, resp.StatusCode) {
		return false, fmt.Sprintf("status %d", resp.StatusCode)
	}
	if len(p.match) == 0 {
		return true, fmt.Sprintf("status %d", resp.StatusCode) // the body is not waited for
	}
	found, err := bodyContains(resp.Body, p.match)
	switch {
	case found:
		return true, fmt.Sprintf("status %d, body matches", resp.StatusCode)
	case err != nil:
		return false, describeErr(err, p.timeout)
	}
	return false, "body does not match"
}

// bodyContains reads at most the first maxBodyMatch bytes of body and reports
// whether they contain match, stopping as soon as they do: a body that
// trickles on after the match does not fail the check.
func bodyContains(body io.Reader, match []byte) (bool, error) {
	buf := make([]byte, 0, maxBodyMatch)
	for len(buf) < maxBodyMatch {
		n, err := body.Read(buf[len(buf):maxBodyMatch])
		buf = buf[:len(buf)+n]
		if bytes.Contains(buf, match) {
			return true, nil
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}
