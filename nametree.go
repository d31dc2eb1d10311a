package multivalue

import (
	"strings"

	"github.com/miekg/dns"
)

// node is a name that exists here: a held name, a zone apex or an empty
// non-terminal. sets is in Corefile order (the first answers ANY).
type node struct{ sets []*recordSet }

func (n *node) set(qtype uint16) *recordSet {
	for _, s := range n.sets {
		if s.qtype == qtype || qtype == dns.TypeANY {
			return s
		}
	}
	return nil
}

// addName makes name exist here, and every name between it and the top of
// the zones it lies in: the empty non-terminals, also between two nested
// zones (b.example.org. for x.a.b.example.org. with zones example.org. and
// a.b.example.org.).
func (m *Multivalue) addName(name string) {
	top := ""
	for _, z := range m.zones {
		if inZone(name, z) && (top == "" || len(z) < len(top)) {
			top = z
		}
	}
	for {
		if m.nodes[name] == nil {
			m.nodes[name] = &node{}
		}
		if name == top {
			return
		}
		// Up one label; below the root the last step ends the string.
		off, end := dns.NextLabel(name, 0)
		if end {
			name = "."
		} else {
			name = name[off:]
		}
	}
}

// zoneIndex returns the index of the longest zone qname (lower case) lies in,
// or -1.
func (m *Multivalue) zoneIndex(qname string) int {
	best := -1
	for i, z := range m.zones {
		if inZone(qname, z) && (best < 0 || len(z) > len(m.zones[best])) {
			best = i
		}
	}
	return best
}

// inZone reports whether name is zone or a name below it; both are fully
// qualified and lower case. It is dns.IsSubDomain without the allocations
// (that one splits both names into labels on every query): a suffix that
// starts at a label boundary, i.e. after a dot that is not escaped.
func inZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	if !strings.HasSuffix(name, zone) {
		return false
	}
	i := len(name) - len(zone)
	if i == 0 {
		return true
	}
	if name[i-1] != '.' {
		return false
	}
	escapes := 0 // backslashes right before the dot: an odd number escapes it
	for j := i - 2; j >= 0 && name[j] == '\\'; j-- {
		escapes++
	}
	return escapes%2 == 0
}
