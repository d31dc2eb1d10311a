package multivalue

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
)

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

// lookupType reads a record type mnemonic or TYPEnnn (RFC 3597), returning
// the type and its upper-case spelling.
func lookupType(s string) (t uint16, upper string, err error) {
	u := strings.ToUpper(s)
	t, ok := dns.StringToType[u]
	if !ok && strings.HasPrefix(u, "TYPE") {
		n, err := strconv.ParseUint(u[4:], 10, 16)
		ok, t = err == nil, uint16(n)
	}
	if !ok {
		return 0, "", fmt.Errorf("unknown type %q", s)
	}
	return t, u, nil
}

// parseType reads a record type mnemonic (or TYPEnnn) and rejects the types a
// multivalue set cannot hold: the zone's own (SOA, NS), aliases (CNAME, DNAME)
// and meta types that are not data.
func parseType(s string) (uint16, error) {
	t, u, err := lookupType(s)
	if err != nil {
		return 0, err
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
