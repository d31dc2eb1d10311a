package multivalue

import (
	"net"

	"github.com/miekg/dns"
)

// answer picks up to k of from with sel and returns them as fresh RRs owned by
// q.name. from is a snapshot and is only read. With DNSSEC OK the picked
// values go out in from's canonical order, so that dnssec signs each distinct
// subset once; the subset itself is the selector's.
func answer(q query, sel selector, from []candidate, k int) []dns.RR {
	if len(from) == 0 || k <= 0 {
		return nil
	}
	// The selector's working memory, pooled (see scratch). (A buffer of
	// max_answers' size on the stack also made the small stack miekg/dns
	// gives each UDP query grow and be copied.)
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	idx := sel.pick(q, from, min(k, maxMaxAnswers), sc)
	if q.do {
		for i := 1; i < len(idx); i++ { // insertion sort: k is small
			for j := i; j > 0 && idx[j] < idx[j-1]; j-- {
				idx[j], idx[j-1] = idx[j-1], idx[j]
			}
		}
	}
	return copyRRs(q.name, from, idx)
}

// copyRRs copies the picked RRs, with qname as owner. A and AAAA, the common
// case, are copied with their address bytes into one array: two allocations
// per answer whatever its size, and nothing shared with the snapshot.
func copyRRs(qname string, from []candidate, idx []int32) []dns.RR {
	out := make([]dns.RR, len(idx))
	switch from[0].rr.(type) {
	case *dns.A:
		arr := make([]struct {
			rr dns.A
			ip [net.IPv4len]byte
		}, len(idx))
		for i, x := range idx {
			e := &arr[i]
			e.rr = *from[x].rr.(*dns.A)
			e.rr.Hdr.Name = qname
			e.rr.A = copyIP(e.ip[:], e.rr.A)
			out[i] = &e.rr
		}
	case *dns.AAAA:
		arr := make([]struct {
			rr dns.AAAA
			ip [net.IPv6len]byte
		}, len(idx))
		for i, x := range idx {
			e := &arr[i]
			e.rr = *from[x].rr.(*dns.AAAA)
			e.rr.Hdr.Name = qname
			e.rr.AAAA = copyIP(e.ip[:], e.rr.AAAA)
			out[i] = &e.rr
		}
	default:
		for i, x := range idx {
			rr := dns.Copy(from[x].rr)
			rr.Header().Name = qname
			out[i] = rr
		}
	}
	return out
}

// copyIP copies ip into dst, which has the address family's length (miekg/dns
// stores A addresses in 16 or 4 bytes; the 4 that matter are the last ones).
func copyIP(dst []byte, ip net.IP) net.IP {
	copy(dst, ip[len(ip)-len(dst):])
	return dst
}

// udpFit is how many of the set's values fit in the client's UDP buffer (512
// bytes without EDNS0, else its advertised size), or maxMaxAnswers over TCP.
// It counts each RR as CoreDNS sends an answer that would not fit otherwise:
// compressed, the owner a pointer to the question. For A and AAAA the count
// is exact; for others it is a floor (the longest RDATA, uncompressed), and
// CoreDNS's own truncation still has the last word.
func (s *recordSet) udpFit(w dns.ResponseWriter, r *dns.Msg, opt *dns.OPT, k int) int {
	room := dns.MinMsgSize - dnsHeaderLen - (len(r.Question[0].Name) + 1 + 4) // the question, its name uncompressed
	if opt != nil {
		room = max(int(opt.UDPSize()), dns.MinMsgSize) - dnsHeaderLen - (len(r.Question[0].Name) + 1 + 4) - optLen(opt)
	}
	per := 2 + 10 + s.maxRdlen
	if k*per <= room {
		return k // the common case: k fits whatever the transport, no need to ask
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); !udp {
		return k
	}
	return max(room, 0) / per
}

// dnsHeaderLen is the fixed header of a DNS message.
const dnsHeaderLen = 12

// optLen is the wire length of an OPT RR with the request's options echoed:
// root name, type, class, TTL, RDLENGTH, and each option.
func optLen(opt *dns.OPT) int {
	n := 1 + 10
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_SUBNET); ok {
			n += 4 + 4 + (int(e.SourceNetmask)+7)/8
		} else {
			n += 4 + 8 // what we do not echo counts little; CoreDNS truncates last
		}
	}
	return n
}

// maxRdlen is the longest RDATA of rrs on the wire, uncompressed.
func maxRdlen(rrs []dns.RR) int {
	m := 0
	buf := make([]byte, dns.MaxMsgSize)
	for _, rr := range rrs {
		end, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			continue
		}
		owner, err := dns.PackDomainName(rr.Header().Name, buf, 0, nil, false)
		if err != nil {
			continue
		}
		m = max(m, end-owner-10)
	}
	return m
}
