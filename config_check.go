package multivalue

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Health-check protocols.
const (
	protoHTTP       = "http"
	protoHTTPS      = "https"
	protoTCP        = "tcp"
	protoGRPC       = "grpc"
	protoGRPCS      = "grpcs"
	protoDNS        = "dns"
	protoCalculated = "calculated"
)

// probing are the protocols that probe a target: every one but calculated,
// which combines other checks.
var probing = []string{protoHTTP, protoHTTPS, protoTCP, protoGRPC, protoGRPCS, protoDNS}

// optionProtocols are the protocols each health_check option applies to; one
// not listed here (protocol, invert) applies to all. The parser refuses an
// option given for another protocol, and spec clears the settings of the
// options that do not apply, so that their defaults cannot tell two checks
// that probe alike apart.
var optionProtocols = map[string][]string{
	"port": probing, "target": probing, "interval": probing, "timeout": probing,
	"failure_threshold": probing, "success_threshold": probing, "fast_interval": probing,
	"path":              {protoHTTP, protoHTTPS},
	"status":            {protoHTTP, protoHTTPS},
	"method":            {protoHTTP, protoHTTPS},
	"header":            {protoHTTP, protoHTTPS},
	"host":              {protoHTTP, protoHTTPS, protoGRPC, protoGRPCS},
	"match":             {protoHTTP, protoHTTPS, protoDNS},
	"tls_verify":        {protoHTTPS, protoGRPCS},
	"service":           {protoGRPC, protoGRPCS},
	"query":             {protoDNS},
	"children":          {protoCalculated},
	"healthy_threshold": {protoCalculated},
}

// applies reports whether a health_check option applies to a protocol.
func applies(opt, protocol string) bool {
	ps, ok := optionProtocols[opt]
	return !ok || slices.Contains(ps, protocol)
}

// maxBodyMatch is how much of a response body `match` looks at (as Route 53).
const maxBodyMatch = 5120

// maxHealthyThreshold bounds a calculated check's healthy_threshold (as Route 53).
const maxHealthyThreshold = 255

// statusRange is an inclusive range of HTTP status codes.
type statusRange struct{ lo, hi int }

// httpHeader is one `header NAME VALUE` of an http check, NAME canonical.
type httpHeader struct{ name, value string }

// checkSettings is what a check does and how it judges, every setting in one
// comparable struct: the template and the spec embed it, and the key that
// tells checks apart is derived from it, so that a setting added here is in
// the key too. What cannot be compared (the parsed status ranges, the
// headers, the CA pool) lives outside it, next to the setting it is derived
// from.
type checkSettings struct {
	protocol         string
	port             int // in a template, 0: not set explicitly
	path             string
	hostHeader       string // Host header, gRPC authority and TLS SNI override; "" for none
	status           string // canonical text of the status ranges
	match            string
	method           string // http, https: the request method
	headers          string // http, https: canonical text of the extra request headers
	service          string // grpc, grpcs: the grpc.health.v1 service asked about
	query            string // dns: the question's name, fully qualified, lower case
	queryType        uint16 // dns: the question's type
	children         string // calculated: the children's template names, space-separated
	healthyThreshold int    // calculated: how many children must be healthy; in a template, -1: all
	interval         time.Duration
	fastInterval     time.Duration // while a transition is pending; 0: none
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
	checkSettings // hostHeader, status and headers empty: spec derives them from host, status and header

	name         string
	line         int            // where it was defined, for error messages
	host         string         // the `host` option: the spec's hostHeader
	status       []statusRange  // the `status` option: the spec's status and statusRanges
	header       []httpHeader   // the `header` options in the order given: the spec's headers and header
	caPool       *x509.CertPool // loaded from caFile
	targetHost   string         // the `target` option's host, one spelling per host (the spec's host); "" for none
	targetPort   int            // and its :PORT, 0 for none (the spec's port)
	childrenLine int            // where `children` was given, for the errors found once every template is read
}

func newCheckTemplate(name string, line int) *checkTemplate {
	return &checkTemplate{
		checkSettings: checkSettings{
			protocol:         protoHTTP,
			path:             "/",
			method:           "GET",
			queryType:        dns.TypeA,
			healthyThreshold: -1,
			interval:         10 * time.Second,
			timeout:          4 * time.Second,
			failureThreshold: 3,
		},
		name:   name,
		line:   line,
		status: []statusRange{{200, 399}},
	}
}

// childNames are the templates a calculated template combines.
func (t *checkTemplate) childNames() []string { return strings.Fields(t.children) }

// checkSpec is one concrete health check: a template applied to a target.
// Two values whose specs have equal keys share one check (and one probe loop).
// A calculated spec has no target and probes nothing: its kids, instantiated
// for the same value, are the checks that run.
type checkSpec struct {
	checkSettings
	host string // host name or IP to connect to, resolved at probe time

	// Derived from the settings, for the prober.
	template     string         // the template's name, for reasons; not a setting: templates alike share a check
	statusRanges []statusRange  // status, parsed
	header       []httpHeader   // headers, parsed
	caPool       *x509.CertPool // caFile, loaded
	kids         []*checkSpec   // children, instantiated for the value
}

// checkKey identifies a check: its settings and its target host.
type checkKey struct {
	checkSettings
	host string
}

func (s *checkSpec) key() checkKey { return checkKey{s.checkSettings, s.host} }

// target is host:port, as the metrics label it.
func (s *checkSpec) target() string { return joinHostPort(s.host, s.port) }

// describe names the check in reasons: "http check web of 127.0.0.1:80".
func (s *checkSpec) describe() string {
	if s.protocol == protoCalculated {
		return "calculated check " + s.template
	}
	return s.protocol + " check " + s.template + " of " + s.target()
}

// defaultPort is the protocol's well-known port, 0 for those that have none
// (tcp, grpc, grpcs).
func defaultPort(protocol string) int {
	switch protocol {
	case protoHTTP:
		return 80
	case protoHTTPS:
		return 443
	case protoDNS:
		return 53
	}
	return 0
}

// spec applies the template to a target: the template's own target if it has
// one, else host. port is the first of the target's own :PORT, the
// template's port, the record's port (SRV) and the protocol default; 0 means
// none could be found, which the caller reports. A calculated template's
// spec has no target and no kids yet: see checkFor.
func (t *checkTemplate) spec(host string, targetPort, recordPort int) *checkSpec {
	if t.targetHost != "" {
		host, targetPort = t.targetHost, t.targetPort
	}
	s := &checkSpec{checkSettings: t.checkSettings, host: host, template: t.name}
	s.hostHeader = t.host
	s.status, s.statusRanges = formatStatus(t.status), t.status
	s.headers, s.header = formatHeaders(t.header), t.header
	s.caPool = t.caPool
	for _, p := range []int{targetPort, t.port, recordPort, defaultPort(t.protocol)} {
		if p != 0 {
			s.port = p
			break
		}
	}
	if s.successThreshold == 0 {
		s.successThreshold = s.failureThreshold
	}
	if s.healthyThreshold < 0 {
		s.healthyThreshold = len(t.childNames())
	}
	// What does not apply to the protocol (its defaults included) must not
	// tell equal checks apart.
	unset := map[string]func(){
		"path":              func() { s.path = "" },
		"status":            func() { s.status, s.statusRanges = "", nil },
		"host":              func() { s.hostHeader = "" },
		"match":             func() { s.match = "" },
		"method":            func() { s.method = "" },
		"header":            func() { s.headers, s.header = "", nil },
		"service":           func() { s.service = "" },
		"query":             func() { s.query, s.queryType = "", 0 },
		"tls_verify":        func() { s.tlsVerify, s.caFile, s.caPool = false, "", nil },
		"children":          func() { s.children = "" },
		"healthy_threshold": func() { s.healthyThreshold = 0 },
		"target":            func() { s.host, s.port = "", 0 },
		"interval":          func() { s.interval = 0 },
		"fast_interval":     func() { s.fastInterval = 0 },
		"timeout":           func() { s.timeout = 0 },
		"failure_threshold": func() { s.failureThreshold = 0 },
		"success_threshold": func() { s.successThreshold = 0 },
	}
	for opt, fn := range unset {
		if !applies(opt, t.protocol) {
			fn()
		}
	}
	return s
}

// parseCheckTemplate reads `health_check NAME { ... }`, its arguments having
// been read; templates are those defined before it. What depends on other
// templates (a calculated check's children) is checked by checkChildren once
// all are read.
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
	errf := func(format string, args ...any) error {
		return p.errf("health_check %s: %s", name, fmt.Sprintf(format, args...))
	}
	duration := func(opt string, d *time.Duration) func([]string) error {
		return func(args []string) error {
			v, err := time.ParseDuration(args[0])
			if err != nil {
				return errf("%s %q is not a duration (like 10s or 500ms)", opt, args[0])
			}
			if v < 10*time.Millisecond || v > 24*time.Hour {
				return errf("%s %s out of range 10ms to 24h", opt, args[0])
			}
			*d = v
			return nil
		}
	}
	threshold := func(opt string, n *int) func([]string) error {
		return func(args []string) error {
			v, err := atoiDigits(args[0])
			if err != nil || v < 1 || v > 10 {
				return errf("%s %q must be a whole number from 1 to 10", opt, args[0])
			}
			*n = v
			return nil
		}
	}
	lines, err := p.block(options{
		prefix: "health_check " + name + ": ",
		opts: map[string]option{
			"protocol": {args: oneArg, set: func(args []string) error {
				proto := strings.ToLower(args[0])
				if proto != protoCalculated && !slices.Contains(probing, proto) {
					return errf("unknown protocol %q, want http, https, tcp, grpc, grpcs, dns or calculated", args[0])
				}
				t.protocol = proto
				return nil
			}},
			"port": {args: oneArg, set: func(args []string) error {
				port, err := parsePort(args[0])
				if err != nil {
					return errf("%v", err)
				}
				t.port = port
				return nil
			}},
			"target": {args: oneArg, set: func(args []string) error {
				host, port, err := splitTarget(args[0])
				if err != nil {
					return errf("target %q: %v", args[0], err)
				}
				t.targetHost, t.targetPort = canonicalHost(host), port
				return nil
			}},
			"path": {args: oneArg, set: func(args []string) error {
				if !strings.HasPrefix(args[0], "/") {
					return errf("path %q must start with /", args[0])
				}
				if strings.ContainsFunc(args[0], func(r rune) bool { return r <= ' ' || r == 0x7f }) {
					return errf("path %q must not contain spaces or control characters", args[0])
				}
				t.path = args[0]
				return nil
			}},
			"host": {args: oneArg, set: func(args []string) error {
				if !validHostName(args[0]) {
					return errf("host %q is not a valid host name", args[0])
				}
				t.host = args[0]
				return nil
			}},
			"status": {args: someArgs, set: func(args []string) error {
				rs, err := parseStatus(args)
				if err != nil {
					return errf("%v", err)
				}
				t.status = rs
				return nil
			}},
			"match": {args: oneArg, set: func(args []string) error {
				if args[0] == "" || len(args[0]) > maxBodyMatch {
					return errf("match must be 1 to %d bytes", maxBodyMatch)
				}
				t.match = args[0]
				return nil
			}},
			"method": {args: oneArg, set: func(args []string) error {
				if !isToken(args[0]) {
					return errf("method %q is not an HTTP method (letters, digits and !#$%%&'*+-.^_`|~)", args[0])
				}
				t.method = args[0]
				return nil
			}},
			"header": {args: arity{2, 2}, repeat: true, set: func(args []string) error {
				h, err := parseHeader(args[0], args[1])
				if err != nil {
					return errf("%v", err)
				}
				t.header = append(t.header, h)
				return nil
			}},
			"service": {args: oneArg, set: func(args []string) error {
				if strings.ContainsFunc(args[0], func(r rune) bool { return r <= ' ' || r == 0x7f }) || len(args[0]) > 1024 {
					return errf("service %q must be at most 1024 bytes, without spaces or control characters", args[0])
				}
				t.service = args[0]
				return nil
			}},
			"query": {args: arity{1, 2}, set: func(args []string) error {
				qname, ok := canonicalName(args[0])
				if _, isName := dns.IsDomainName(args[0]); !ok || !isName || hasZoneFileSyntax(args[0]) {
					return errf("query %q is not a domain name", args[0])
				}
				qtype := dns.TypeA
				if len(args) == 2 {
					var err error
					if qtype, err = parseQueryType(args[1]); err != nil {
						return errf("query %s: %v", args[0], err)
					}
				}
				t.query, t.queryType = qname, qtype
				return nil
			}},
			"children": {args: arity{1, -1}, set: func(args []string) error {
				for i, c := range args {
					if c == "" || c == "none" || strings.ContainsFunc(c, func(r rune) bool { return r <= ' ' }) {
						return errf("children: %q is not a health_check name", c)
					}
					if c == name {
						return errf("children: a calculated check cannot be its own child")
					}
					if slices.Contains(args[:i], c) {
						return errf("children: %s given twice", c)
					}
				}
				t.children, t.childrenLine = strings.Join(args, " "), p.at
				return nil
			}},
			"healthy_threshold": {args: oneArg, set: func(args []string) error {
				n, err := wholeNumber(args[0], 0, maxHealthyThreshold)
				if err != nil {
					return errf("healthy_threshold %v", err)
				}
				t.healthyThreshold = n
				return nil
			}},
			"interval":          {args: oneArg, set: duration("interval", &t.interval)},
			"fast_interval":     {args: oneArg, set: duration("fast_interval", &t.fastInterval)},
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
						return errf("tls_verify: %v", err)
					}
					t.caFile, t.caPool = id, pool
				}
				return nil
			}},
		},
		other: func(opt string, _ []string) error { return errf("unknown option %q", opt) },
	})
	if err != nil {
		return nil, err
	}
	if err := t.validate(p, lines); err != nil {
		return nil, err
	}
	return t, nil
}

// validate checks what depends on more than one option of the template: it
// reports an error on the line of the option that is wrong given the others,
// else on the health_check line. lines are where each option was given.
func (t *checkTemplate) validate(p *parser, lines map[string]int) error {
	lineOf := func(opts ...string) int {
		for _, o := range opts {
			if l, ok := lines[o]; ok {
				return l
			}
		}
		return t.line
	}
	errAt := func(line int, format string, args ...any) error {
		return p.errAt(line, "health_check %s: %s", t.name, fmt.Sprintf(format, args...))
	}
	// Options of another protocol, in the order they were given.
	var given []string
	for o := range lines {
		if !applies(o, t.protocol) {
			given = append(given, o)
		}
	}
	slices.SortFunc(given, func(a, b string) int {
		if d := lines[a] - lines[b]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	if len(given) > 0 {
		hint := ""
		if t.protocol == protoCalculated {
			hint = " (a calculated check takes only children, healthy_threshold and invert)"
		}
		return errAt(lines[given[0]], "%s does not apply to protocol %s%s", strings.Join(given, ", "), t.protocol, hint)
	}
	if t.timeout >= t.interval {
		return errAt(lineOf("timeout", "interval"), "timeout %s must be less than interval %s", t.timeout, t.interval)
	}
	if t.fastInterval != 0 {
		if t.fastInterval >= t.interval {
			return errAt(lineOf("fast_interval"), "fast_interval %s must be less than interval %s", t.fastInterval, t.interval)
		}
		if t.fastInterval <= t.timeout {
			return errAt(lineOf("fast_interval"), "fast_interval %s must be more than timeout %s", t.fastInterval, t.timeout)
		}
	}
	switch {
	case t.protocol == protoDNS && t.query == "":
		return errAt(t.line, "protocol dns needs `query NAME [TYPE]`")
	case t.protocol == protoCalculated && t.children == "":
		return errAt(t.line, "protocol calculated needs `children NAME...`")
	case t.method == http.MethodHead && t.match != "":
		return errAt(lineOf("match"), "match needs a response body, which method HEAD does not get")
	}
	return nil
}

// checkChildren checks the children of every calculated template, once all
// templates are read (a child may be defined after its parent): each must be
// defined and must probe.
func checkChildren(p *parser, templates map[string]*checkTemplate) error {
	// In the order they were defined, so that the first mistake is reported.
	byLine := slices.SortedFunc(maps.Values(templates), func(a, b *checkTemplate) int { return a.line - b.line })
	for _, t := range byLine {
		for _, c := range t.childNames() {
			child, ok := templates[c]
			switch {
			case !ok:
				return p.errAt(t.childrenLine, "health_check %s: child %s is not defined (defined: %s)",
					t.name, c, strings.Join(slices.Sorted(maps.Keys(templates)), ", "))
			case child.protocol == protoCalculated:
				return p.errAt(t.childrenLine, "health_check %s: child %s is a calculated check: the children of a calculated check must probe", t.name, c)
			}
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2): what
// a method or a header name is made of.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// probeHeaders are request headers the http prober writes itself: a
// `header` for them is refused, not silently dropped or doubled.
var probeHeaders = map[string]string{
	"Host":              "use the host option",
	"Content-Length":    "the probe sends no body",
	"Transfer-Encoding": "the probe sends no body",
	"Trailer":           "the probe sends no body",
}

// parseHeader reads `header NAME VALUE`.
func parseHeader(name, value string) (httpHeader, error) {
	if !isToken(name) {
		return httpHeader{}, fmt.Errorf("header %q is not a header name", name)
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if why, ok := probeHeaders[name]; ok {
		return httpHeader{}, fmt.Errorf("header %s: %s", name, why)
	}
	if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return httpHeader{}, fmt.Errorf("header %s: the value must not contain control characters", name)
	}
	return httpHeader{name, value}, nil
}

// formatHeaders is the canonical text of headers: one "Name: value" line each,
// by name (the values of one name in the order given, as they are sent).
func formatHeaders(hs []httpHeader) string {
	hs = slices.Clone(hs)
	slices.SortStableFunc(hs, func(a, b httpHeader) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.name + ": " + h.value + "\n")
	}
	return b.String()
}

// parseQueryType reads the TYPE of a dns check's query: any type but those
// that cannot be asked over UDP (zone transfers, OPT, TSIG, TKEY).
func parseQueryType(s string) (uint16, error) {
	t, u, err := lookupType(s)
	if err != nil {
		return 0, err
	}
	switch t {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeNone, dns.TypeReserved:
		return 0, fmt.Errorf("type %s cannot be a health check's query", u)
	}
	return t, nil
}

// canonicalHost is one spelling per target host, so that equal targets share
// one check: no trailing dot, an IP as Go prints it, a name in lower case.
func canonicalHost(host string) string {
	host = strings.TrimSuffix(host, ".")
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return strings.ToLower(host)
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
