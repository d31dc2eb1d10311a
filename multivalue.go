// Package multivalue is a CoreDNS plugin for multivalue answer routing: record
// sets whose values each carry a health check, answered with up to eight
// healthy values picked at random.
package multivalue

import (
	"context"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"

	"github.com/miekg/dns"
)

// Multivalue is the plugin handler. Everything a query reads is fixed at setup
// except each set's snapshot of healthy values, which is swapped atomically.
type Multivalue struct {
	Next plugin.Handler

	zones      []string         // lower case, as parsed
	nodes      map[string]*node // every name that exists here, lower case
	maxAnswers int
	fallback   fallback
	fall       fall.F
	sets       []*recordSet
	soa        []soaCache // per zone, same index as zones
	responses  responseCounters

	engine *engine // the checks, shared with every instance of the process
	life   lifecycle
	op     operatorConfig // admin and state_file (config_operator.go)
	held   operatorHeld   // what start took of them, for stop

	cluster *clusterConfig // nil: no cluster, each value's check decides
	member  *member        // while started, with cluster
	votes   []*vote        // the votes the instance holds while started
}

// newMultivalue builds the handler from a parsed config. It starts nothing,
// but it reads the engine's check table so that a reloaded instance serves the status its
// predecessor's checks already know from its first query on.
func newMultivalue(cfg *config, e *engine) *Multivalue {
	m := &Multivalue{
		engine:     e,
		zones:      cfg.zones,
		nodes:      map[string]*node{},
		maxAnswers: cfg.maxAnswers,
		fallback:   cfg.allUnhealthy,
		fall:       cfg.fall,
		sets:       cfg.sets,
		soa:        make([]soaCache, len(cfg.zones)),
		op:         cfg.op,
		cluster:    cfg.cluster,
	}
	m.responses.zones, m.responses.vec = cfg.zones, e.metrics.responses
	for _, z := range cfg.zones {
		m.addName(z) // the apex exists
	}
	for _, s := range cfg.sets {
		s.fallback = cfg.allUnhealthy
		s.maxRdlen = maxRdlen(s.all)
		m.addName(s.name)
		n := m.nodes[s.name]
		n.sets = append(n.sets, s)
		for _, v := range s.values {
			v.hash = hashBytes(canonicalRdata(v.rr))
			if len(v.specs) > 0 {
				v.src = e.lookupSource(v.specs, m.runningSource)
			}
		}
		s.refresh()
	}
	return m
}

// Name implements plugin.Handler.
func (m *Multivalue) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (m *Multivalue) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) != 1 || r.Question[0].Qclass != dns.ClassINET {
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
	}
	q := r.Question[0]
	qname := strings.ToLower(q.Name) // no copy when already lower case
	zi := m.zoneIndex(qname)
	if zi < 0 || q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
	}
	opt := r.IsEdns0()
	ecs, ok := clientSubnet(opt)
	if !ok {
		// RFC 7871 section 7.1.2. Returned unwritten: CoreDNS writes the
		// error reply for this rcode (plugin.ClientWrite).
		return dns.RcodeFormatError, nil
	}

	n := m.nodes[qname]
	if n == nil {
		if m.fall.Through(qname) {
			m.responses.inc(ctx, zi, resultFallthrough)
			return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
		}
		m.responses.inc(ctx, zi, resultNXDomain)
		return m.negative(ctx, w, r, zi, dns.RcodeNameError)
	}
	set := n.set(q.Qtype)
	if set == nil {
		if m.fall.Through(qname) {
			m.responses.inc(ctx, zi, resultFallthrough)
			return m.nextExisting(ctx, w, r)
		}
		m.responses.inc(ctx, zi, resultNodata)
		return m.negative(ctx, w, r, zi, dns.RcodeSuccess)
	}

	snap := set.snapshot()
	if snap.drained {
		m.responses.inc(ctx, zi, resultNodata)
		return m.negative(ctx, w, r, zi, dns.RcodeSuccess)
	}
	from, sel := snap.cands, snap.sel
	switch {
	case len(from) == 0:
		m.responses.inc(ctx, zi, resultAllUnhealthy)
		switch m.fallback {
		case fallbackNodata:
			return m.negative(ctx, w, r, zi, dns.RcodeSuccess)
		case fallbackFallthrough:
			return m.nextExisting(ctx, w, r)
		}
		from, sel = snap.fallback, snap.fallbackSel
	case snap.panic:
		m.responses.inc(ctx, zi, resultPanic)
	default:
		m.responses.inc(ctx, zi, resultHealthy)
	}

	sq := query{name: q.Name, do: opt != nil && opt.Do()}
	if !snap.rampUntil.IsZero() {
		sq.now = time.Now()
	}
	scope := 0
	if set.opts.sticky {
		sq.client = stickyClient(w, ecs, &set.opts)
		scope = sq.client.Bits()
	}
	msg := new(dns.Msg)
	msg.SetReply(r)
	msg.Authoritative = true
	k, cut := m.maxAnswers, false
	if fit := set.udpFit(w, r, opt, k); fit < k {
		// Over UDP only what fits goes out: pick no more (a large answer
		// then costs what is sent, not max_answers copies that truncation
		// drops), and say that there is more (TC) when there is.
		k, cut = fit, min(m.maxAnswers, len(from)) > fit
	}
	msg.Answer = answer(sq, sel, from, k)
	msg.Truncated = cut
	if ecs != nil {
		echoSubnet(msg, opt, ecs, scope)
	}
	w.WriteMsg(msg)
	return dns.RcodeSuccess, nil
}

// negative writes NXDOMAIN or NODATA with the zone's SOA, when a plugin after
// this one serves the zone.
func (m *Multivalue) negative(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, zi int, rcode int) (int, error) {
	msg := new(dns.Msg)
	msg.SetRcode(r, rcode)
	msg.Authoritative = true
	if soa := m.soa[zi].get(ctx, w, m.Next, m.zones[zi]); soa != nil {
		msg.Ns = []dns.RR{soa}
	}
	if opt := r.IsEdns0(); opt != nil {
		if ecs, _ := clientSubnet(opt); ecs != nil {
			echoSubnet(msg, opt, ecs, 0) // a denial holds for every client
		}
	}
	w.WriteMsg(msg)
	return rcode, nil
}

// nextExisting hands a query for a name that exists here to the next plugin.
// The next plugin may not know the name, but it exists: an NXDOMAIN would
// deny the names below it too (RFC 8020), so it becomes NODATA.
func (m *Multivalue) nextExisting(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	rc, err := plugin.NextOrFailure(m.Name(), m.Next, ctx, nodataWriter{w}, r)
	if rc == dns.RcodeNameError {
		rc = dns.RcodeSuccess
	}
	return rc, err
}

// nodataWriter turns an NXDOMAIN reply into NODATA, keeping its authority
// section (the SOA) so resolvers can still cache it.
type nodataWriter struct{ dns.ResponseWriter }

func (w nodataWriter) WriteMsg(m *dns.Msg) error {
	if m.Rcode == dns.RcodeNameError {
		m.Rcode = dns.RcodeSuccess
	}
	return w.ResponseWriter.WriteMsg(m)
}
