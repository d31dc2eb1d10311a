package multivalue

import (
	"math/rand/v2"
	"net"

	"github.com/miekg/dns"
)

// pick returns up to k of from, chosen uniformly at random, as fresh RRs owned
// by qname (the name as the client sent it). from is a snapshot and is only
// read. Without sorted the answer is in random order; with sorted (DNSSEC OK)
// it keeps from's canonical order, so that dnssec signs each distinct subset
// once.
func pick(qname string, from []dns.RR, k int, sorted bool) []dns.RR {
	n := len(from)
	// The picked indices, on the stack for up to the default max_answers.
	// The buffer is kept small on purpose: miekg/dns serves each UDP query
	// on a new goroutine with a small stack, and a frame of max_answers'
	// limit (1 KB) made that stack grow, and be copied, on every query,
	// which cost more than an allocation.
	var buf [defaultMaxAnswers]int32
	idx := buf[:0]
	if m := min(n, k); m > len(buf) {
		idx = make([]int32, 0, m)
	}
	if n <= k {
		for i := range n {
			idx = append(idx, int32(i))
		}
	} else {
		// Floyd's algorithm: a uniform k-subset in k draws, whatever n is.
		for j := n - k; j < n; j++ {
			t := int32(rand.IntN(j + 1))
			for _, x := range idx {
				if x == t {
					t = int32(j)
					break
				}
			}
			idx = append(idx, t)
		}
	}
	if sorted {
		for i := 1; i < len(idx); i++ { // insertion sort: k is small
			for j := i; j > 0 && idx[j] < idx[j-1]; j-- {
				idx[j], idx[j-1] = idx[j-1], idx[j]
			}
		}
	} else {
		rand.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	}
	return copyRRs(qname, from, idx)
}

// copyRRs copies the picked RRs, with qname as owner. A and AAAA, the common
// case, are copied with their address bytes into one array: two allocations
// per answer whatever its size, and nothing shared with the snapshot.
func copyRRs(qname string, from []dns.RR, idx []int32) []dns.RR {
	out := make([]dns.RR, len(idx))
	switch from[0].(type) {
	case *dns.A:
		arr := make([]struct {
			rr dns.A
			ip [net.IPv4len]byte
		}, len(idx))
		for i, x := range idx {
			e := &arr[i]
			e.rr = *from[x].(*dns.A)
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
			e.rr = *from[x].(*dns.AAAA)
			e.rr.Hdr.Name = qname
			e.rr.AAAA = copyIP(e.ip[:], e.rr.AAAA)
			out[i] = &e.rr
		}
	default:
		for i, x := range idx {
			rr := dns.Copy(from[x])
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
