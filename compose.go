package multivalue

import (
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"
)

// Composing with the plugins of the same server block. Those that come before
// multivalue in plugin.cfg see every answer it gives, and two of them can
// undo what it is for:
//
//   - cache would give every client the answer it stored first, for up to its
//     TTL: the same few values for all (sticky subsets and ECS scopes
//     included), and a value that died still served. multivalue therefore asks
//     cache not to store its names, through the interface cache offers for
//     this (see CacheBypassZones). Nothing to configure, nothing to warn about.
//   - loadbalance shuffles A, AAAA and MX answers after multivalue has ordered
//     them: a weighted answer's first value is no longer drawn in proportion
//     to weight, and a sticky client's order changes with every query. That
//     is a configuration to fix, so startup logs a WARNING naming the sets.
//
// dnssec, view, acl and rewrite compose as they are; the README's "Composing
// with other plugins" says how.

// maxBypass is how many names CacheBypassZones returns at most: cache compares
// the name of every query it sees with each of them (plugin.Zones.Contains,
// about 0.2 µs and 3 allocations a name: BenchmarkCacheBypass), so many names
// would cost every query more than the cache saves. Beyond it, names are
// replaced by their parents, the deepest first, never above their zone.
const maxBypass = 4

// CacheBypassZones implements cache.ZoneBypasser: the cache plugin of the
// same server block calls it at startup and from then on never stores an
// answer for these names or below them, positive or negative, as it does for
// the dynupdate plugin's zones. An answer of multivalue depends on the query
// (a random pick, the client's subnet for sticky sets) and on health that
// changes at any moment: a stored one would be wrong for the next client.
//
// The names are the held names, not the zones: the NXDOMAIN of a name
// multivalue does not hold, and what fallthrough hands to the next plugin, are
// still cached; they depend neither on health nor on the client (and a reload
// starts a new cache).
func (m *Multivalue) CacheBypassZones() []string {
	names := make([]string, 0, len(m.sets))
	zones := make([]string, 0, len(m.sets))
	for _, s := range m.sets {
		names, zones = append(names, s.name), append(zones, s.zone)
	}
	return bypassNames(names, zones, maxBypass)
}

// bypassNames returns names (each in the zone of the same index), without
// those below another, and, while there are more than limit, with the deepest
// names that are not a zone apex replaced by their parents. Lifting a name
// can only make cache bypass more, never less.
func bypassNames(names, zones []string, limit int) []string {
	zoneOf := map[string]string{}
	for i, n := range names {
		zoneOf[n] = zones[i]
	}
	prune(zoneOf)
	for len(zoneOf) > limit {
		deepest := 0
		for n, z := range zoneOf {
			if n != z {
				deepest = max(deepest, dns.CountLabel(n))
			}
		}
		if deepest == 0 {
			break // only apexes are left
		}
		lifted := map[string]string{}
		for n, z := range zoneOf {
			if n != z && dns.CountLabel(n) == deepest {
				n = parent(n)
			}
			lifted[n] = z
		}
		zoneOf = lifted
		prune(zoneOf)
	}
	out := make([]string, 0, len(zoneOf))
	for n := range zoneOf {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// prune drops the names that lie below another name of the set.
func prune(set map[string]string) {
	for n := range set {
		for p := n; p != "."; {
			p = parent(p)
			if _, ok := set[p]; ok {
				delete(set, n)
				break
			}
		}
	}
}

// parent returns the name one label up; the parent of the root is the root.
func parent(name string) string {
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// checkComposition warns, once the server block's plugin chain is built (in
// OnStartup: before that the other plugins' handlers do not exist yet),
// when another plugin of the block undoes multivalue's answers. It only ever
// logs: a wrong guess must not stop CoreDNS, so whatever it cannot tell for
// sure it leaves alone.
func checkComposition(c *caddy.Controller, m *Multivalue) {
	keys := c.ServerBlockKeys
	c.OnStartup(func() error {
		// Handler looks the plugin up by name among the handlers of this
		// server block's chain: present means configured in this block.
		if dnsserver.GetConfig(c).Handler("loadbalance") != nil {
			warnLoadbalance(m, keys)
		}
		return nil
	})
}

// warnLoadbalance logs the WARNING for loadbalance in the server block with
// keys, if some set's order matters.
func warnLoadbalance(m *Multivalue, keys []string) {
	var sets []string
	for _, s := range m.sets {
		if why := orderMatters(s, m.maxAnswers); why != "" {
			sets = append(sets, s.name+" "+s.typeName+" ("+why+")")
		}
	}
	if len(sets) == 0 {
		return
	}
	if len(sets) > 3 {
		sets = append(sets[:3], "and "+strconv.Itoa(len(sets)-3)+" more")
	}
	log.Warningf("loadbalance in server block %s reshuffles the answers of %s: weighted answers lose their order "+
		"(the first value is drawn in proportion to weight, and clients mostly use the first), sticky clients get a "+
		"new order on every query; fix: remove loadbalance from this server block (multivalue orders its answers itself)",
		strings.Join(keys, " "), strings.Join(sets, ", "))
}

// orderMatters says why the order of s's answers matters and loadbalance
// would break it ("weighted", "sticky"), or "" when it does not: the type is
// not one loadbalance reorders (A, AAAA, MX), an answer holds one value at
// most, or the set is uniform (its answers are in random order already).
func orderMatters(s *recordSet, maxAnswers int) string {
	switch s.qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeMX:
	default:
		return ""
	}
	if maxAnswers < 2 || len(s.values) < 2 {
		return ""
	}
	if s.opts.sticky {
		return "sticky"
	}
	// Weighted: two values of one tier, both served and neither a standby,
	// have different weights. Standbys (weight 0) are drawn uniformly.
	weightOf := map[int]int{} // tier -> a weight seen there
	for _, v := range s.values {
		if v.drain || v.weight == 0 {
			continue
		}
		if w, ok := weightOf[v.tier]; ok && w != v.weight {
			return "weighted"
		}
		weightOf[v.tier] = v.weight
	}
	return ""
}
