package multivalue

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
)

// checkRef is a `health_check NAME...|none` inside a records block or a
// value's, resolved once the whole block is read (a reference may precede its
// definition).
type checkRef struct {
	names []string // nil when not given; ["none"] to remove an inherited check
	line  int
}

// rawValue is a value as written, turned into an RR once all options are known.
type rawValue struct {
	tokens     []string
	line       int
	check      checkRef
	target     string
	targetLine int
	weight     int // -1: the block's
	tier       int // -1: the block's
	drain      bool
}

func newRawValue(tokens []string, line int) *rawValue {
	return &rawValue{tokens: tokens, line: line, weight: -1, tier: -1}
}

// rawSet is a records block as written.
type rawSet struct {
	name   string // fully qualified, lower case
	qtype  uint16
	ttl    int64 // -1: inherit
	line   int
	check  checkRef
	values []*rawValue
	weight int // -1: the default
	tier   int // -1: the default
	sel    selectionConfig
}

// parseRecords reads `records NAME TYPE [VALUE...] [{ ... }]`, its arguments
// having been read.
func parseRecords(p *parser, args []string, zones []string) (*rawSet, error) {
	line := p.at
	name, err := qualify(args[0], zones)
	if err != nil {
		return nil, p.errf("records %s: %v", args[0], err)
	}
	qtype, err := parseType(args[1])
	if err != nil {
		return nil, p.errf("records %s: %v", args[0], err)
	}
	rs := &rawSet{name: name, qtype: qtype, ttl: -1, line: line, weight: -1, tier: -1}
	for _, tok := range args[2:] {
		rs.values = append(rs.values, newRawValue([]string{tok}, line))
	}
	if p.openBlock() {
		_, err = p.block(options{
			opts: merge(rs.sel.options(p), valueOptions(p, &rs.weight, &rs.tier), misplaced(p, map[string]string{
				"drain": "goes in a value's block",
			}), map[string]option{
				"ttl": ttlOption(p, func(ttl uint32) { rs.ttl = int64(ttl) }),
				"health_check": {args: arity{1, -1}, set: func(args []string) error {
					var err error
					rs.check, err = parseCheckRef(p, args)
					return err
				}},
			}),
			other: func(first string, args []string) error {
				v, err := parseValue(p, append([]string{first}, args...))
				if err != nil {
					return err
				}
				rs.values = append(rs.values, v)
				return nil
			},
		})
		if err != nil {
			return nil, err
		}
	}
	if len(rs.values) == 0 {
		return nil, p.errAt(line, "records %s %s: no values", args[0], args[1])
	}
	return rs, nil
}

// parseValue reads a value of a records block and its own block, if any.
func parseValue(p *parser, tokens []string) (*rawValue, error) {
	v := newRawValue(tokens, p.at)
	if !p.openBlock() {
		return v, nil
	}
	_, err := p.block(options{
		opts: merge(valueOptions(p, &v.weight, &v.tier), map[string]option{
			"drain": {args: noArgs, set: func([]string) error {
				v.drain = true
				return nil
			}},
			"health_check": {args: arity{1, -1}, set: func(args []string) error {
				var err error
				v.check, err = parseCheckRef(p, args)
				return err
			}},
			"target": {args: oneArg, set: func(args []string) error {
				if _, _, err := splitTarget(args[0]); err != nil {
					return p.errf("target %q: %v", args[0], err)
				}
				v.target, v.targetLine = args[0], p.at
				return nil
			}},
		}),
		other: func(opt string, _ []string) error {
			return p.errf("unknown value option %q, want health_check, target, weight, tier or drain", opt)
		},
	})
	return v, err
}

// parseCheckRef reads the arguments of `health_check NAME...|none` in a
// records block or a value's.
func parseCheckRef(p *parser, names []string) (checkRef, error) {
	for i, name := range names {
		switch {
		case name == "":
			return checkRef{}, p.errf(`health_check "": want a NAME or none`)
		case name == "none" && len(names) > 1:
			return checkRef{}, p.errf("health_check: none cannot be mixed with names")
		case slices.Contains(names[:i], name):
			return checkRef{}, p.errf("health_check: %s given twice", name)
		}
	}
	return checkRef{names: names, line: p.at}, nil
}

// buildSets turns the records blocks as written into record sets: RRs parsed
// by miekg/dns, duplicates refused, health-check references resolved.
func (cfg *config) buildSets(p *parser, raws []*rawSet, templates map[string]*checkTemplate) error {
	seen := map[[2]any]int{} // name, type -> line
	for _, raw := range raws {
		k := [2]any{raw.name, raw.qtype}
		typeName := typeString(raw.qtype)
		if prev, ok := seen[k]; ok {
			return p.errAt(raw.line, "records %s %s already defined on line %d", raw.name, typeName, prev)
		}
		seen[k] = raw.line

		ttl := cfg.ttl
		if raw.ttl >= 0 {
			ttl = uint32(raw.ttl)
		}
		set := &recordSet{
			name:     raw.name,
			zone:     plugin.Zones(cfg.zones).Matches(raw.name),
			qtype:    raw.qtype,
			typeName: typeName,
			opts:     raw.sel.over(cfg.selection),
		}
		wire := map[string]int{} // canonical RDATA -> line
		keys := map[*value][]byte{}
		for _, rv := range raw.values {
			rr, err := newRR(raw.name, ttl, raw.qtype, set.zone, rv.tokens)
			if err != nil {
				return p.errAt(rv.line, "records %s %s: value %q: %v", raw.name, typeName, strings.Join(rv.tokens, " "), err)
			}
			key := canonicalRdata(rr)
			if prev, ok := wire[string(key)]; ok {
				return p.errAt(rv.line, "records %s %s: value %q given twice (first on line %d)", raw.name, typeName, strings.Join(rv.tokens, " "), prev)
			}
			wire[string(key)] = rv.line
			v := &value{rr: rr, text: rdataText(rr), weight: first(rv.weight, raw.weight, defaultWeight),
				tier: first(rv.tier, raw.tier, defaultTier), drain: rv.drain}
			if v.specs, err = checksFor(p, raw, rv, rr, templates); err != nil {
				return err
			}
			keys[v] = key
			set.values = append(set.values, v)
		}
		// Canonical order, so that a DO query's answer can go out sorted by
		// just sorting the picked indices.
		slices.SortStableFunc(set.values, func(a, b *value) int { return bytes.Compare(keys[a], keys[b]) })
		for _, v := range set.values {
			set.all = append(set.all, v.rr)
		}
		cfg.sets = append(cfg.sets, set)
	}
	return nil
}

// checksFor resolves the health checks of one value: its own reference, else
// the set's; `none` removes them. Each check's target is the template's own
// `target`, else the value's: the value itself for A and AAAA, the SRV target,
// the MX exchange, or the value's `target`. A calculated check's children are
// instantiated for the value the same way.
func checksFor(p *parser, raw *rawSet, rv *rawValue, rr dns.RR, templates map[string]*checkTemplate) ([]*checkSpec, error) {
	ref := raw.check
	if rv.check.names != nil {
		ref = rv.check
	}
	if len(ref.names) == 0 || ref.names[0] == "none" {
		if rv.target != "" {
			return nil, p.errAt(rv.targetLine, "target %s given for a value without a health check", rv.target)
		}
		return nil, nil
	}
	vt := valueTarget{raw: raw, rv: rv, rr: rr}
	var specs []*checkSpec
	for _, name := range ref.names {
		t, ok := templates[name]
		if !ok {
			defined := slices.Sorted(maps.Keys(templates))
			if len(defined) == 0 {
				return nil, p.errAt(ref.line, "health_check %s is not defined: no health_check NAME { ... } in this block", name)
			}
			return nil, p.errAt(ref.line, "health_check %s is not defined (defined: %s)", name, strings.Join(defined, ", "))
		}
		if t.protocol != protoCalculated {
			s, err := vt.spec(p, t, "")
			if err != nil {
				return nil, err
			}
			specs = append(specs, s)
			continue
		}
		s := t.spec("", 0, 0)
		for _, c := range t.childNames() {
			kid, err := vt.spec(p, templates[c], " (a child of "+t.name+")")
			if err != nil {
				return nil, err
			}
			s.kids = append(s.kids, kid)
		}
		specs = append(specs, s)
	}
	if rv.target != "" && !vt.used {
		return nil, p.errAt(rv.targetLine, "target %s is not used: every health_check of the value has a target of its own", rv.target)
	}
	return specs, nil
}

// valueTarget is what a value's checks probe unless their template has a
// target of its own: worked out when a check first needs it, so that a value
// whose checks all have their own target needs none.
type valueTarget struct {
	raw  *rawSet
	rv   *rawValue
	rr   dns.RR
	used bool // a check of the value probes it
}

// spec applies a probing template t to the value; of is said after the
// template's name in errors.
func (vt *valueTarget) spec(p *parser, t *checkTemplate, of string) (*checkSpec, error) {
	rv := vt.rv
	var host string
	var targetPort int
	if t.targetHost == "" { // else spec takes the template's
		var err error
		if host, targetPort, err = vt.host(p, t.name+of); err != nil {
			return nil, err
		}
		vt.used = true
	}
	s := t.spec(host, targetPort, srvPort(vt.rr))
	if s.port == 0 {
		return nil, p.errAt(rv.line, "value %q: health_check %s%s (%s) has no port: set `port`, `target HOST:PORT`, or use an SRV record",
			strings.Join(rv.tokens, " "), t.name, of, t.protocol)
	}
	return s, nil
}

// srvPort is the port of an SRV record, 0 for other types.
func srvPort(rr dns.RR) int {
	if srv, ok := rr.(*dns.SRV); ok {
		return int(srv.Port)
	}
	return 0
}

// host is the value's own target host and :PORT (0 for none).
func (vt *valueTarget) host(p *parser, check string) (string, int, error) {
	raw, rv := vt.raw, vt.rv
	var host, field string // field: what the RDATA calls the host, for errors
	switch r := vt.rr.(type) {
	case *dns.A:
		host = r.A.String()
	case *dns.AAAA:
		host = r.AAAA.String()
	case *dns.SRV:
		host, field = r.Target, "target"
	case *dns.MX:
		host, field = r.Mx, "exchange"
	}
	var targetPort int
	if rv.target != "" {
		var err error
		if host, targetPort, err = splitTarget(rv.target); err != nil {
			return "", 0, p.errAt(rv.targetLine, "target %q: %v", rv.target, err)
		}
	} else if field != "" && host != "." && !validHostName(host) {
		// A name the RDATA may hold (`!`, `a\ b`) but no probe can dial:
		// its check could only fail.
		return "", 0, p.errAt(rv.line, "records %s %s: value %q: %s %q is not a valid host name to check; give target HOST[:PORT]",
			raw.name, typeString(raw.qtype), strings.Join(rv.tokens, " "), field, host)
	}
	host = canonicalHost(host)
	if host == "" {
		return "", 0, p.errAt(rv.line, "value %q: a %s value needs `target HOST[:PORT]` for health_check %s",
			strings.Join(rv.tokens, " "), typeString(raw.qtype), check)
	}
	return host, targetPort, nil
}

// newRR parses one value as a zone file line would: relative names in the
// RDATA are relative to the zone.
func newRR(name string, ttl uint32, qtype uint16, zone string, tokens []string) (dns.RR, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d IN %s", name, ttl, typeString(qtype))
	strs := stringsType(qtype)
	// A value quoted whole, as `"10 mail.example.org."` to put it on the
	// records line, is that RDATA text, not one string of it.
	whole := len(tokens) == 1 && !strs
	for _, tok := range tokens {
		if strings.ContainsAny(tok, "\n\r") {
			return nil, fmt.Errorf("line break in value")
		}
		b.WriteByte(' ')
		if whole && tok != "" && !strings.ContainsAny(tok, ";()") {
			b.WriteString(tok)
		} else if strs || tok == "" || strings.ContainsAny(tok, " \t;()\"") {
			// Each token of a TXT value is one string; the Corefile's quotes
			// are gone by now, so put them back.
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(tok, `"`, `\"`))
			b.WriteByte('"')
		} else {
			b.WriteString(tok)
		}
	}
	zp := dns.NewZoneParser(strings.NewReader(b.String()), zone, "")
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("not a valid %s value: %v", typeString(qtype), cleanParseErr(err))
	}
	if !ok || rr == nil || rr.Header().Rrtype != qtype {
		return nil, fmt.Errorf("not a valid %s value", typeString(qtype))
	}
	if _, more := zp.Next(); more {
		return nil, fmt.Errorf("more than one record")
	}
	if strings.HasPrefix(tokens[0], `\#`) && !strs {
		// miekg/dns turns generic RDATA of a known type into that type
		// without checking it: `A "\# 0"` is an A record with no address.
		// Accept it only when it makes a value the type's own syntax would.
		if _, err := dns.NewRR(rr.String()); err != nil {
			return nil, fmt.Errorf("not a valid %s value: the generic RDATA does not decode to one", typeString(qtype))
		}
	}
	// Every answer must be able to carry it.
	if _, err := dns.PackRR(rr, make([]byte, dns.MaxMsgSize), 0, nil, false); err != nil {
		return nil, fmt.Errorf("not a valid %s value: %v", typeString(qtype), err)
	}
	return rr, nil
}

// stringsType reports whether every token of a value of type t is one
// character-string, as for TXT.
func stringsType(t uint16) bool {
	switch t {
	case dns.TypeTXT, dns.TypeSPF, dns.TypeAVC, dns.TypeNINFO, dns.TypeRESINFO:
		return true
	}
	return false
}

// cleanParseErr keeps miekg/dns's reason and drops its file and line, which
// are those of the one-line snippet and not of the Corefile.
func cleanParseErr(err error) error {
	if pe, ok := err.(*dns.ParseError); ok {
		msg := pe.Error()
		if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "dns: ") {
			msg = msg[5:]
		}
		if i := strings.Index(msg, `: "`); i >= 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("%s", strings.TrimPrefix(msg, "dns: "))
	}
	return err
}

// rdataText is the RDATA of rr in zone-file text.
func rdataText(rr dns.RR) string {
	// Cut the four header fields rather than trim Header().String(): types
	// unknown to miekg/dns print their header differently (CLASS1, not IN).
	if f := strings.SplitN(rr.String(), "\t", 5); len(f) == 5 {
		return f[4]
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// canonicalRdata is rr's RDATA in the canonical form of RFC 4034 section 6.2
// (names in lower case, no compression): the key for duplicates and order.
func canonicalRdata(rr dns.RR) []byte {
	c := dns.Copy(rr)
	switch r := c.(type) {
	case *dns.MX:
		r.Mx = strings.ToLower(r.Mx)
	case *dns.SRV:
		r.Target = strings.ToLower(r.Target)
	case *dns.PTR:
		r.Ptr = strings.ToLower(r.Ptr)
	case *dns.NAPTR:
		r.Replacement = strings.ToLower(r.Replacement)
	case *dns.KX:
		r.Exchanger = strings.ToLower(r.Exchanger)
	case *dns.RT:
		r.Host = strings.ToLower(r.Host)
	case *dns.AFSDB:
		r.Hostname = strings.ToLower(r.Hostname)
	case *dns.RP:
		r.Mbox, r.Txt = strings.ToLower(r.Mbox), strings.ToLower(r.Txt)
	case *dns.MINFO:
		r.Rmail, r.Email = strings.ToLower(r.Rmail), strings.ToLower(r.Email)
	case *dns.PX:
		r.Map822, r.Mapx400 = strings.ToLower(r.Map822), strings.ToLower(r.Mapx400)
	}
	c.Header().Name = "."
	buf := make([]byte, dns.Len(c)+64)
	off, err := dns.PackRR(c, buf, 0, nil, false)
	if err != nil {
		return []byte(rr.String()) // not packable: still a stable, unique key
	}
	return buf[11:off] // root name (1) + type, class, ttl, rdlength (10)
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

// first returns the first of ns that is not -1 (not given).
func first(ns ...int) int {
	for _, n := range ns {
		if n >= 0 {
			return n
		}
	}
	return -1
}
