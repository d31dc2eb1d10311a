package multivalue

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
)

// soaRefresh is how long a zone's SOA (or its absence) is cached before it is
// asked for again: long enough that negative answers cost no extra lookup,
// short enough that a new serial from `file` shows soon.
const soaRefresh = 60 * time.Second

// soaRetry is how soon a fetch that failed (an error, SERVFAIL, a cancelled
// query) is tried again: a transient failure must not cost a minute of
// uncacheable negative answers. A variable for the tests.
var soaRetry = 5 * time.Second

// soaFetchTimeout bounds the one query that fetches the SOA.
const soaFetchTimeout = 2 * time.Second

// soaCache holds the SOA of one zone as served by the plugins after
// multivalue, for the authority section of negative answers (RFC 2308).
type soaCache struct {
	mu  sync.Mutex // one fetch at a time
	cur atomic.Pointer[soaEntry]
}

type soaEntry struct {
	soa     *dns.SOA // nil: no plugin after this one serves the zone
	expires time.Time
}

// get returns a fresh copy of the zone's SOA with its TTL lowered to
// min(TTL, MINIMUM), or nil when no later plugin serves the zone. Only the
// first negative answer of a zone waits for the fetch; later ones, while one
// query refreshes an expired entry, use the entry they have.
func (c *soaCache) get(ctx context.Context, w dns.ResponseWriter, next plugin.Handler, zone string) dns.RR {
	e := c.cur.Load()
	if e == nil || time.Now().After(e.expires) {
		e = c.refresh(ctx, w, next, zone, e)
	}
	if e.soa == nil {
		return nil
	}
	return dns.Copy(e.soa)
}

func (c *soaCache) refresh(ctx context.Context, w dns.ResponseWriter, next plugin.Handler, zone string, stale *soaEntry) *soaEntry {
	if stale != nil {
		if !c.mu.TryLock() {
			return stale // another query is fetching it
		}
	} else {
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if e := c.cur.Load(); e != nil && time.Now().Before(e.expires) {
		return e // another query fetched it meanwhile
	}
	soa, final := fetchSOA(ctx, w, next, zone)
	ttl := soaRefresh
	if !final {
		ttl = soaRetry
	}
	e := &soaEntry{soa: soa, expires: time.Now().Add(ttl)}
	c.cur.Store(e)
	return e
}

// fetchSOA asks the next plugin for the zone's SOA. Only an authoritative
// answer counts: the zone must really be served after us. final is false when
// the fetch failed rather than found no SOA, so it is tried again soon.
func fetchSOA(ctx context.Context, w dns.ResponseWriter, next plugin.Handler, zone string) (soa *dns.SOA, final bool) {
	if next == nil {
		return nil, true
	}
	// The client's query may be cancelled (the cancel plugin) while the
	// fetch, whose result serves every query for a minute, goes on.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), soaFetchTimeout)
	defer cancel()
	req := new(dns.Msg)
	req.SetQuestion(zone, dns.TypeSOA)
	nw := nonwriter.New(w)
	if _, err := next.ServeDNS(ctx, nw, req); err != nil || nw.Msg == nil || nw.Msg.Rcode == dns.RcodeServerFailure {
		return nil, false
	}
	if !nw.Msg.Authoritative || nw.Msg.Rcode != dns.RcodeSuccess {
		return nil, true
	}
	for _, rr := range nw.Msg.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, zone) {
			soa = dns.Copy(soa).(*dns.SOA)
			soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
			return soa, true
		}
	}
	return nil, true
}
