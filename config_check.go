package multivalue

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Health-check protocols.
const (
	protoHTTP  = "http"
	protoHTTPS = "https"
	protoTCP   = "tcp"
)

// maxBodyMatch is how much of a response body `match` looks at (as Route 53).
const maxBodyMatch = 5120

// statusRange is an inclusive range of HTTP status codes.
type statusRange struct{ lo, hi int }

// checkSettings is what a check does and how it judges, every setting in one
// comparable struct: the template and the spec embed it, and the key that
// tells checks apart is derived from it, so that a setting added here is in
// the key too. What cannot be compared (the parsed status ranges, the CA pool)
// lives outside it, next to the setting it is derived from.
type checkSettings struct {
	protocol         string
	port             int // in a template, 0: not set explicitly
	path             string
	hostHeader       string // Host header and TLS SNI override; "" for none
	status           string // canonical text of the status ranges
	match            string
	interval         time.Duration
	timeout          time.Duration
	failureThreshold int
	successThreshold int // in a template, 0: same as failureThreshold
	invert           bool
	tlsVerify        bool
	caFile           string // the CA file's path and a hash of its contents
}

// checkTemplate is a named `health_check` block: the settings shared by every
// value that refers to it. Its zero value is not usable; see newCheckTemplate.
type checkTemplate struct {
	checkSettings // hostHeader and status empty: spec derives them from host and status

	name   string
	line   int            // where it was defined, for error messages
	host   string         // the `host` option: the spec's hostHeader
	status []statusRange  // the `status` option: the spec's status and statusRanges
	caPool *x509.CertPool // loaded from caFile
}

func newCheckTemplate(name string, line int) *checkTemplate {
	return &checkTemplate{
		checkSettings: checkSettings{
			protocol:         protoHTTP,
			path:             "/",
			interval:         10 * time.Second,
			timeout:          4 * time.Second,
			failureThreshold: 3,
		},
		name:   name,
		line:   line,
		status: []statusRange{{200, 399}},
	}
}

// checkSpec is one concrete health check: a template applied to a target.
// Two values whose specs have equal keys share one check (and one probe loop).
type checkSpec struct {
	checkSettings
	host string // host name or IP to connect to, resolved at probe time

	// Derived from the settings, for the prober.
	statusRanges []statusRange  // status, parsed
	caPool       *x509.CertPool // caFile, loaded
}

// checkKey identifies a check: its settings and its target host.
type checkKey struct {
	checkSettings
	host string
}

func (s *checkSpec) key() checkKey { return checkKey{s.checkSettings, s.host} }

// target is host:port, as the metrics label it.
func (s *checkSpec) target() string { return joinHostPort(s.host, s.port) }

// defaultPort is the protocol's well-known port, 0 for tcp which has none.
func defaultPort(protocol string) int {
	switch protocol {
	case protoHTTP:
		return 80
	case protoHTTPS:
		return 443
	}
	return 0
}

// spec applies the template to a target. port is the first of the target's own
// :PORT, the template's port, the record's port (SRV) and the protocol default;
// 0 means none could be found, which the caller reports.
func (t *checkTemplate) spec(host string, targetPort, recordPort int) *checkSpec {
	s := &checkSpec{checkSettings: t.checkSettings, host: host}
	for _, p := range []int{targetPort, t.port, recordPort, defaultPort(t.protocol)} {
		if p != 0 {
			s.port = p
			break
		}
	}
	if s.successThreshold == 0 {
		s.successThreshold = s.failureThreshold
	}
	if t.protocol == protoTCP {
		// A connection is all there is to it: the http settings (their
		// defaults included) must not tell equal tcp checks apart.
		s.path, s.hostHeader, s.status, s.match = "", "", "", ""
		s.tlsVerify, s.caFile = false, ""
		return s
	}
	s.hostHeader = t.host
	s.status, s.statusRanges = formatStatus(t.status), t.status
	s.caPool = t.caPool
	return s
}

// httpOnly are the health_check options that do not apply to protocol tcp.
var httpOnly = []string{"path", "host", "status", "match", "tls_verify"}

// parseCheckTemplate reads `health_check NAME { ... }`, its arguments having
// been read; templates are those defined before it.
func parseCheckTemplate(p *parser, name string, templates map[string]*checkTemplate) (*checkTemplate, error) {
	switch prev, ok := templates[name]; {
	case name == "":
		return nil, p.errf("health_check needs a non-empty NAME")
	case name == "none":
		return nil, p.errf(`health_check: "none" is reserved, pick another name`)
	case ok:
		return nil, p.errf("health_check %s already defined on line %d", name, prev.line)
	}
	if !p.openBlock() {
		return nil, p.errf("health_check %s: expected a block { ... }", name)
	}
	t := newCheckTemplate(name, p.at)
	duration := func(opt string, d *time.Duration) func([]string) error {
		return func(args []string) error {
			v, err := time.ParseDuration(args[0])
			if err != nil {
				return p.errf("health_check %s: %s %q is not a duration (like 10s or 500ms)", name, opt, args[0])
			}
			if v < 10*time.Millisecond || v > 24*time.Hour {
				return p.errf("health_check %s: %s %s out of range 10ms to 24h", name, opt, args[0])
			}
			*d = v
			return nil
		}
	}
	threshold := func(opt string, n *int) func([]string) error {
		return func(args []string) error {
			v, err := atoiDigits(args[0])
			if err != nil || v < 1 || v > 10 {
				return p.errf("health_check %s: %s %q must be a whole number from 1 to 10", name, opt, args[0])
			}
			*n = v
			return nil
		}
	}
	lines, err := p.block(options{
		prefix: "health_check " + name + ": ",
		opts: map[string]option{
			"protocol": {args: oneArg, set: func(args []string) error {
				switch proto := strings.ToLower(args[0]); proto {
				case protoHTTP, protoHTTPS, protoTCP:
					t.protocol = proto
					return nil
				}
				return p.errf("health_check %s: unknown protocol %q, want http, https or tcp", name, args[0])
			}},
			"port": {args: oneArg, set: func(args []string) error {
				port, err := parsePort(args[0])
				if err != nil {
					return p.errf("health_check %s: %v", name, err)
				}
				t.port = port
				return nil
			}},
			"path": {args: oneArg, set: func(args []string) error {
				if !strings.HasPrefix(args[0], "/") {
					return p.errf("health_check %s: path %q must start with /", name, args[0])
				}
				if strings.ContainsFunc(args[0], func(r rune) bool { return r <= ' ' || r == 0x7f }) {
					return p.errf("health_check %s: path %q must not contain spaces or control characters", name, args[0])
				}
				t.path = args[0]
				return nil
			}},
			"host": {args: oneArg, set: func(args []string) error {
				if !validHostName(args[0]) {
					return p.errf("health_check %s: host %q is not a valid host name", name, args[0])
				}
				t.host = args[0]
				return nil
			}},
			"status": {args: someArgs, set: func(args []string) error {
				rs, err := parseStatus(args)
				if err != nil {
					return p.errf("health_check %s: %v", name, err)
				}
				t.status = rs
				return nil
			}},
			"match": {args: oneArg, set: func(args []string) error {
				if args[0] == "" || len(args[0]) > maxBodyMatch {
					return p.errf("health_check %s: match must be 1 to %d bytes", name, maxBodyMatch)
				}
				t.match = args[0]
				return nil
			}},
			"interval":          {args: oneArg, set: duration("interval", &t.interval)},
			"timeout":           {args: oneArg, set: duration("timeout", &t.timeout)},
			"failure_threshold": {args: oneArg, set: threshold("failure_threshold", &t.failureThreshold)},
			"success_threshold": {args: oneArg, set: threshold("success_threshold", &t.successThreshold)},
			"invert": {args: noArgs, set: func([]string) error {
				t.invert = true
				return nil
			}},
			"tls_verify": {args: optArg, set: func(args []string) error {
				t.tlsVerify = true
				if len(args) == 1 {
					pool, id, err := loadCAFile(args[0])
					if err != nil {
						return p.errf("health_check %s: tls_verify: %v", name, err)
					}
					t.caFile, t.caPool = id, pool
				}
				return nil
			}},
		},
		other: func(opt string, _ []string) error { return p.errf("health_check %s: unknown option %q", name, opt) },
	})
	if err != nil {
		return nil, err
	}
	// These depend on more than one option: report them on the line of the
	// option that is wrong given the others, else on the health_check line.
	lineOf := func(opts ...string) int {
		for _, o := range opts {
			if l, ok := lines[o]; ok {
				return l
			}
		}
		return t.line
	}
	if t.timeout >= t.interval {
		return nil, p.errAt(lineOf("timeout", "interval"), "health_check %s: timeout %s must be less than interval %s", name, t.timeout, t.interval)
	}
	if t.protocol == protoTCP {
		// In the order they were given.
		var given []string
		for _, o := range httpOnly {
			if _, ok := lines[o]; ok {
				given = append(given, o)
			}
		}
		slices.SortStableFunc(given, func(a, b string) int { return lines[a] - lines[b] })
		if len(given) > 0 {
			return nil, p.errAt(lines[given[0]], "health_check %s: %s does not apply to protocol tcp", name, strings.Join(given, ", "))
		}
	}
	if t.protocol == protoHTTP && t.tlsVerify {
		return nil, p.errAt(lineOf("tls_verify"), "health_check %s: tls_verify applies only to protocol https", name)
	}
	return t, nil
}

func parsePort(s string) (int, error) {
	p, err := atoiDigits(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q must be a number from 1 to 65535", s)
	}
	return p, nil
}

// parseStatus reads status codes and ranges: "200", "200-299", "301 302".
func parseStatus(args []string) ([]statusRange, error) {
	var rs []statusRange
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		l, err1 := atoiDigits(lo)
		h, err2 := l, error(nil)
		if isRange {
			h, err2 = atoiDigits(hi)
		}
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("status %q is not a code or LOW-HIGH range", a)
		}
		if l < 100 || h > 599 || l > h {
			return nil, fmt.Errorf("status %q must lie within 100-599, low before high", a)
		}
		rs = append(rs, statusRange{l, h})
	}
	return rs, nil
}

// atoiDigits is strconv.Atoi for plain digits only: no sign, no spaces.
func atoiDigits(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.Atoi(s)
}

func formatStatus(rs []statusRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d-%d", r.lo, r.hi)
	}
	return b.String()
}

func statusOK(rs []statusRange, code int) bool {
	for _, r := range rs {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// maxCAFile bounds what loadCAFile reads: a CA bundle is a few hundred KiB.
const maxCAFile = 16 << 20

// loadCAFile reads a PEM bundle. id names it by path and contents, so that a
// reload after the file was replaced makes new checks with the new roots.
func loadCAFile(path string) (pool *x509.CertPool, id string, err error) {
	// Not /dev/zero, a FIFO or a directory: those would hang (opening a FIFO
	// blocks, hence Stat before Open) or fail with a less helpful message.
	if fi, err := os.Stat(path); err != nil {
		return nil, "", err
	} else if !fi.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file", path)
	} else if fi.Size() > maxCAFile {
		return nil, "", fmt.Errorf("%s is larger than %d MiB", path, maxCAFile>>20)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile))
	if err != nil {
		return nil, "", err
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, fmt.Sprintf("%s sha256:%x", path, sha256.Sum256(pem)), nil
}
