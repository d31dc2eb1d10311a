package multivalue

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// candidate is a value a query may be answered with, as the snapshot holds
// it: the RR and what selection needs to know about it, computed when health
// changed.
type candidate struct {
	rr    dns.RR
	since time.Time // when the value last turned healthy; zero if never changed
}

// query is what a selector may know about the query it picks for. It is
// passed by value and computes the client's address and the time only when a
// selector asks: uniform selection needs neither.
type query struct {
	name string // as the client sent it (0x20 case kept): the answers' owner
	do   bool   // DNSSEC OK: the answer goes out in canonical order
	w    dns.ResponseWriter
}

// client returns the query's source address.
func (q query) client() netip.Addr {
	var ip net.IP
	switch a := q.w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// now is the time of the query, for selectors that weigh values by how long
// they have been healthy.
func (q query) now() time.Time { return time.Now() }

// selector picks the values of an answer: up to k indices into from (a
// snapshot, only read), in answer order, appended to idx. The common step
// after it puts DNSSEC answers in canonical order and copies the RRs
// (answer.go). forward's Policy and loadbalance's shuffle are the models.
type selector interface {
	pick(q query, from []candidate, k int, idx []int32) []int32
}

// uniform is Route 53's choice: up to k values, uniformly at random, in random
// order.
type uniform struct{}

func (uniform) pick(_ query, from []candidate, k int, idx []int32) []int32 {
	n := len(from)
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
	rand.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	return idx
}
