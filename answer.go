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
	if len(from) == 0 {
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
