package multivalue

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"

	"github.com/miekg/dns"
)

// fallback is what a record set with no healthy value answers (all_unhealthy).
type fallback uint8

const (
	fallbackServe fallback = iota
	fallbackNodata
	fallbackFallthrough
)

var fallbackNames = [...]string{fallbackServe: "serve", fallbackNodata: "nodata", fallbackFallthrough: "fallthrough"}

const (
	defaultTTL        = 60
	defaultMaxAnswers = 8
	maxMaxAnswers     = 255
	maxTTL            = 1<<31 - 1 // RFC 2181 section 8
)

// config is one `multivalue` block, parsed and validated.
type config struct {
	zones        []string
	ttl          uint32
	maxAnswers   int
	allUnhealthy fallback
	fall         fall.F
	sets         []*recordSet // in Corefile order
}

// checkRef is a `health_check NAME|none` inside a records block, resolved once
// the whole block is read (a reference may precede its definition).
type checkRef struct {
	name string // "" when not given, "none" to remove an inherited check
	line int
}

// rawValue is a value as written, turned into an RR once all options are known.
type rawValue struct {
	tokens     []string
	line       int
	check      checkRef
	target     string
	targetLine int
}

// rawSet is a records block as written.
type rawSet struct {
	name   string // fully qualified, lower case
	qtype  uint16
	ttl    int64 // -1: inherit
	line   int
	check  checkRef
	values []*rawValue
}

// parse reads the `multivalue` block of a server block. Every error names the
// line.
func parse(cc *caddy.Controller) (*config, error) {
	c := &parser{Controller: cc}
	var cfg *config
	for c.Next() {
		if cfg != nil {
			// A second block would silently shadow the first in the chain.
			return nil, c.Err("multivalue can be used only once per server block")
		}
		var err error
		if cfg, err = parseConfig(c); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

func parseConfig(c *parser) (*config, error) {
	cfg := &config{ttl: defaultTTL, maxAnswers: defaultMaxAnswers}
	line := c.Line()
	args := c.args()
	if len(args) > 0 {
		zones, err := normalizeZones(args)
		if err != nil {
			return nil, c.Err(err.Error())
		}
		cfg.zones = zones
	} else {
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)
	}
	if len(cfg.zones) == 0 {
		return nil, c.Err("no zones: give them as arguments or as the server block's keys")
	}

	templates := map[string]*checkTemplate{}
	var sets []*rawSet
	seen := map[string]bool{}
	if !c.openBlock() {
		return nil, c.Err("multivalue needs a block { ... } with at least one records line")
	}
	err := c.block(func(opt string) error {
		if opt != "records" && opt != "health_check" {
			if seen[opt] {
				return c.Errf("%s given twice", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "ttl":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			ttl, err := parseTTL(args[0])
			if err != nil {
				return c.Err(err.Error())
			}
			cfg.ttl = ttl
		case "max_answers":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			n, err := atoiDigits(args[0])
			if err != nil || n < 1 || n > maxMaxAnswers {
				return c.Errf("max_answers %q must be a whole number from 1 to %d", args[0], maxMaxAnswers)
			}
			cfg.maxAnswers = n
		case "all_unhealthy":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			switch args[0] {
			case "serve":
				cfg.allUnhealthy = fallbackServe
			case "nodata":
				cfg.allUnhealthy = fallbackNodata
			case "fallthrough":
				cfg.allUnhealthy = fallbackFallthrough
			default:
				return c.Errf("all_unhealthy %q: want serve, nodata or fallthrough", args[0])
			}
		case "fallthrough":
			args := c.args()
			if len(args) == 0 {
				cfg.fall.SetZonesFromArgs(nil) // the root: everything
				return nil
			}
			zones, err := normalizeZones(args)
			if err != nil {
				return c.Errf("fallthrough: %v", err)
			}
			cfg.fall.Zones = zones
		case "health_check":
			args := c.args()
			if len(args) != 1 {
				return c.Err("health_check needs exactly one NAME before its block")
			}
			name := args[0]
			if name == "" {
				return c.Err("health_check needs a non-empty NAME")
			}
			if name == "none" {
				return c.Err(`health_check: "none" is reserved, pick another name`)
			}
			if prev, ok := templates[name]; ok {
				return c.Errf("health_check %s already defined on line %d", name, prev.line)
			}
			if !c.openBlock() {
				return c.Errf("health_check %s: expected a block { ... }", name)
			}
			t, err := parseCheckTemplate(c, name)
			if err != nil {
				return err
			}
			templates[name] = t
		case "records":
			rs, err := parseRecords(c, cfg.zones)
			if err != nil {
				return err
			}
			sets = append(sets, rs)
		default:
			return c.Errf("unknown option %q", opt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, errAt(c, line, "multivalue needs at least one records line")
	}

	if err := cfg.buildSets(c, sets, templates); err != nil {
		return nil, err
	}
	return cfg, nil
}

func parseTTL(s string) (uint32, error) {
	n, err := atoiDigits(s)
	if err != nil || n < 0 || n > maxTTL {
		return 0, fmt.Errorf("ttl %q must be a whole number of seconds from 0 to %d", s, maxTTL)
	}
	return uint32(n), nil
}

// parseRecords reads `records NAME TYPE [VALUE...] [{ ... }]`.
func parseRecords(c *parser, zones []string) (*rawSet, error) {
	line := c.Line()
	args := c.args()
	if len(args) < 2 {
		return nil, c.Err("records needs a NAME and a TYPE")
	}
	// On the records line, even when a quoted NAME spans lines.
	name, err := qualify(args[0], zones)
	if err != nil {
		return nil, errAt(c, line, "records %s: %v", args[0], err)
	}
	qtype, err := parseType(args[1])
	if err != nil {
		return nil, errAt(c, line, "records %s: %v", args[0], err)
	}
	rs := &rawSet{name: name, qtype: qtype, ttl: -1, line: line}
	for _, tok := range args[2:] {
		rs.values = append(rs.values, &rawValue{tokens: []string{tok}, line: line})
	}
	if !c.openBlock() { // no block
		if len(rs.values) == 0 {
			return nil, c.Errf("records %s %s: no values", args[0], args[1])
		}
		return rs, nil
	}
	err = c.block(func(first string) error {
		switch first {
		case "ttl":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			if rs.ttl >= 0 {
				return c.Err("ttl given twice")
			}
			ttl, err := parseTTL(args[0])
			if err != nil {
				return c.Err(err.Error())
			}
			rs.ttl = int64(ttl)
			return nil
		case "health_check":
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			if rs.check.name != "" {
				return c.Err("health_check given twice")
			}
			rs.check = checkRef{name: args[0], line: c.Line()}
			return nil
		}
		v := &rawValue{tokens: append([]string{first}, c.args()...), line: c.Line()}
		rs.values = append(rs.values, v)
		if !c.openBlock() {
			return nil
		}
		return c.block(func(opt string) error {
			if opt != "health_check" && opt != "target" {
				return c.Errf("unknown value option %q, want health_check or target", opt)
			}
			args := c.args()
			if len(args) != 1 {
				return c.ArgErr()
			}
			switch opt {
			case "health_check":
				if v.check.name != "" {
					return c.Err("health_check given twice")
				}
				v.check = checkRef{name: args[0], line: c.Line()}
			case "target":
				if v.target != "" {
					return c.Err("target given twice")
				}
				if _, _, err := splitTarget(args[0]); err != nil {
					return c.Errf("target %q: %v", args[0], err)
				}
				v.target, v.targetLine = args[0], c.Line()
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(rs.values) == 0 {
		return nil, errAt(c, line, "records %s %s: no values", args[0], args[1])
	}
	return rs, nil
}

// parser is the dispenser plus what it cannot track itself: a block closed
// at the end of an option's line, as in `127.0.0.1 { target 127.0.0.1:8080 }`.
type parser struct {
	*caddy.Controller
	closed int    // closing braces read as arguments, not yet matched by a block
	opt    string // first token of the line being read, for ArgErr
}

// ArgErr names the option whose arguments are wrong: the dispenser's own
// message names the last token read, which may be a closing brace.
func (c *parser) ArgErr() error {
	return c.Errf("wrong number of arguments for %s", c.opt)
}

// args returns the rest of the line, up to an opening brace (left for the
// caller) or closing braces (which end the enclosing blocks).
func (c *parser) args() []string {
	args := c.RemainingArgs()
	for len(args) > 0 && args[len(args)-1] == "}" {
		args = args[:len(args)-1]
		c.closed++
	}
	return args
}

// block calls fn for every line of a `{ ... }` block whose opening brace the
// dispenser stands on, with the line's first token; fn reads the rest of the
// line with args. Nested blocks are fn's to read, again with block.
func (c *parser) block(fn func(first string) error) error {
	if c.Val() != "{" {
		return c.Errf("unexpected %q, expected a block { ... }", c.Val())
	}
	for {
		if !c.Next() {
			return c.EOFErr()
		}
		switch c.Val() {
		case "}":
			return nil
		case "{":
			return c.Err("unexpected '{'")
		}
		c.opt = c.Val()
		if err := fn(c.Val()); err != nil {
			return err
		}
		if c.closed > 0 {
			c.closed--
			return nil
		}
	}
}

// openBlock consumes a `{` that follows on the current line.
func (c *parser) openBlock() bool { return c.closed == 0 && c.NextArg() }

// errAt is c.Errf for a line other than the current token's.
func errAt(c *parser, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", c.File(), line, fmt.Sprintf(format, args...))
}

// normalizeZones turns zone arguments into fully qualified lower-case zones,
// refusing (rather than silently dropping, as plugin.OriginsFromArgsOrServerBlock
// does) any that is not a domain name.
func normalizeZones(args []string) ([]string, error) {
	var zones []string
	for _, arg := range args {
		var nz []string
		if _, ok := dns.IsDomainName(arg); ok && !strings.Contains(arg, "://") && !hasZoneFileSyntax(arg) {
			nz = plugin.Host(arg).NormalizeExact()
		}
		if len(nz) == 0 {
			return nil, fmt.Errorf("invalid zone %q", arg)
		}
		for _, z := range nz {
			z, ok := canonicalName(z)
			if !ok {
				return nil, fmt.Errorf("invalid zone %q", arg)
			}
			if !slices.Contains(zones, z) {
				zones = append(zones, z)
			}
		}
	}
	return zones, nil
}

// qualify makes a records NAME absolute, lower case, and checks it lies in zones.
func qualify(name string, zones []string) (string, error) {
	switch {
	case name == "@":
		if len(zones) != 1 {
			return "", fmt.Errorf("@ needs exactly one zone, have %d", len(zones))
		}
		name = zones[0]
	case !dns.IsFqdn(name):
		if len(zones) != 1 {
			return "", fmt.Errorf("relative name needs exactly one zone, have %d: write it with a trailing dot", len(zones))
		}
		name = name + "." + zones[0]
		if zones[0] == "." {
			name = name[:len(name)-1]
		}
	}
	if _, ok := dns.IsDomainName(name); !ok || hasZoneFileSyntax(name) {
		return "", fmt.Errorf("invalid name")
	}
	if name == "*" || strings.HasPrefix(name, "*.") {
		// It would hold only the literal name `*`, not act as a wildcard.
		return "", fmt.Errorf("wildcard names are not supported")
	}
	name, ok := canonicalName(name)
	if !ok {
		return "", fmt.Errorf("invalid name")
	}
	if plugin.Zones(zones).Matches(name) == "" {
		return "", fmt.Errorf("%s is not in the zones %s", name, strings.Join(zones, " "))
	}
	return name, nil
}

// canonicalName spells name as a query's name arrives from the wire, in lower
// case: `\065.example.org` and `A.example.org` are both `a.example.org.`.
func canonicalName(name string) (string, bool) {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return "", false
	}
	n, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return "", false
	}
	return strings.ToLower(n), true
}

// hasZoneFileSyntax reports whether a name holds characters that zone-file
// text gives a meaning (blanks, quotes, comments, parentheses) or control
// characters: dns.IsDomainName lets them through, and the name would not
// survive the zone-file line the values are parsed from. Escapes (\032) can
// still write any byte.
func hasZoneFileSyntax(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '"' || r == ';' || r == '(' || r == ')'
	})
}

// parseType reads a record type mnemonic (or TYPEnnn) and rejects the types a
// multivalue set cannot hold: the zone's own (SOA, NS), aliases (CNAME, DNAME)
// and meta types that are not data.
func parseType(s string) (uint16, error) {
	u := strings.ToUpper(s)
	t, ok := dns.StringToType[u]
	if !ok && strings.HasPrefix(u, "TYPE") {
		n, err := strconv.ParseUint(u[4:], 10, 16)
		ok, t = err == nil, uint16(n)
	}
	if !ok {
		return 0, fmt.Errorf("unknown type %q", s)
	}
	switch t {
	case dns.TypeCNAME, dns.TypeNS, dns.TypeSOA, dns.TypeDNAME:
		return 0, fmt.Errorf("type %s cannot be a multivalue record set", u)
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY,
		dns.TypeMAILA, dns.TypeMAILB, dns.TypeNone, dns.TypeReserved:
		return 0, fmt.Errorf("type %s is a meta type, not data", u)
	}
	return t, nil
}

// splitTarget reads HOST[:PORT] (IPv6 in brackets when a port follows).
func splitTarget(s string) (host string, port int, err error) {
	host = s
	if h, p, err := net.SplitHostPort(s); err == nil {
		port, err = parsePort(p)
		if err != nil {
			return "", 0, err
		}
		host = h
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if net.ParseIP(host) == nil && !validHostName(host) {
		return "", 0, fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return host, port, nil
}

// validHostName reports whether s is a host name fit to dial and put in a Host
// header: letters, digits, hyphens, underscores and dots.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
