package multivalue

import (
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// candidate is a value a query may be answered with, as the snapshot holds
// it: the RR and what selection needs to know about it, computed when health
// changed, never per query.
type candidate struct {
	rr     dns.RR
	weight uint32    // > 0: weight-0 standbys are candidates only alone, at weight 1
	cum    uint64    // the weights of this candidate and those before it: prefix sums for weighted draws
	since  time.Time // when the value turned healthy after having been unhealthy; zero: no slow start
	hash   uint64    // of the value's RDATA, for sticky (rendezvous) selection
}

// query is what a selector may know about the query it picks for. It is
// passed by value and holds nothing a selector needs to compute per query
// unless it asks: uniform selection reads none of it.
type query struct {
	name   string       // as the client sent it (0x20 case kept): the answers' owner
	do     bool         // DNSSEC OK: the answer goes out in canonical order
	client netip.Prefix // the client (ECS subnet or source address) cut to the sticky prefix; only for sticky sets
	now    time.Time    // only while a value of the snapshot is in slow start
}

// selector picks the values of an answer: up to k indices into snap's
// candidates (only read), in answer order, appended to sc.idx. The common
// step after it puts DNSSEC answers in canonical order and copies the RRs
// (answer.go). forward's Policy and loadbalance's shuffle are the models.
//
// A selector is built with each snapshot, from what its candidates need (the
// total weight, the values in slow start), and is as immutable as it.
type selector interface {
	pick(q query, from []candidate, k int, sc *scratch) []int32
}

// scratch is a query's working memory for selection, pooled: selectors are
// called through an interface, so buffers on the stack would escape to the
// heap, an allocation per query.
type scratch struct {
	idx   []int32   // the picked indices, capacity maxMaxAnswers
	taken []uint64  // a bit per candidate: picked or left out
	keys  []float64 // sticky: the picked values' keys, capacity maxMaxAnswers
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{idx: make([]int32, 0, maxMaxAnswers), keys: make([]float64, 0, maxMaxAnswers)}
}}

// take marks candidate i and reports whether it was free.
func (sc *scratch) take(i int32) bool {
	w, b := i>>6, uint64(1)<<(i&63)
	if sc.taken[w]&b != 0 {
		return false
	}
	sc.taken[w] |= b
	return true
}

func (sc *scratch) isTaken(i int32) bool { return sc.taken[i>>6]&(uint64(1)<<(i&63)) != 0 }

// reset sizes taken for n candidates, all free.
func (sc *scratch) reset(n int) {
	words := (n + 63) / 64
	if cap(sc.taken) < words {
		sc.taken = make([]uint64, words)
	}
	sc.taken = sc.taken[:words]
	clear(sc.taken)
}
