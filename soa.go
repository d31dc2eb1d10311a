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
// min(TTL, MINIMUM), or nil when no later plugin serves the zone.
func (c *soaCache) get(ctx context.Context, w dns.ResponseWriter, next plugin.Handler, zone string) dns.RR {
	e := c.cur.Load()
	if e == nil || time.Now().After(e.expires) {
		e = c.refresh(ctx, w, next, zone)
	}
	if e.soa == nil {
		return nil
	}
	return dns.Copy(e.soa)
}

func (c *soaCache) refresh(ctx context.Context, w dns.ResponseWriter, next plugin.Handler, zone string) *soaEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.cur.Load(); e != nil && time.Now().Before(e.expires) {
		return e // another query fetched it meanwhile
	}
	e := &soaEntry{soa: fetchSOA(ctx, w, next, zone), expires: time.Now().Add(soaRefresh)}
	c.cur.Store(e)
	return e
}

// fetchSOA asks the next plugin for the zone's SOA. Only an authoritative
// answer counts: the zone must really be served after us.
func fetchSOA(ctx context.Context, w dns.ResponseWriter, next plugin.Handler, zone string) *dns.SOA {
	if next == nil {
		return nil
	}
	req := new(dns.Msg)
	req.SetQuestion(zone, dns.TypeSOA)
	nw := nonwriter.New(w)
	if _, err := next.ServeDNS(ctx, nw, req); err != nil || nw.Msg == nil {
		return nil
	}
	if !nw.Msg.Authoritative || nw.Msg.Rcode != dns.RcodeSuccess {
		return nil
	}
	for _, rr := range nw.Msg.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, zone) {
			soa = dns.Copy(soa).(*dns.SOA)
			soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
			return soa
		}
	}
	return nil
}
