package multivalue

import (
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// sticky gives each client (its ECS subnet or source address, cut to the
// sticky prefix) a stable answer: weighted rendezvous hashing. Every value
// gets a score from a hash of (client, value), and the answer is the k best,
// best first. The same client gets the same answer while the values stay the
// same; when one value leaves, only the answers that held it change, each by
// that one value (the others' scores do not move); and over many clients the
// first position goes to each value in proportion to its weight.
//
// The score is Efraimidis–Spirakis's key with the hash as the random number:
// u^(1/w), compared as ln(u)/w; with equal weights u itself orders the same
// way and no logarithm is taken. A value in slow start is in the answer of a
// client when a second hash of (client, value) falls below f, so a growing f
// adds clients and never drops one, and its weight is scaled by f (a client
// for whom every value ramps and none is in gets them all, at their scaled
// weights).
type sticky struct {
	weighted bool     // weights differ: score by ln(u)/w
	maxW     uint32   // the largest weight, for the cheap filter below
	hashes   []uint64 // the candidates' hashes, side by side: the steady pick reads only these
	ramp     ramp

	memo [stickyMemoSlots]atomic.Pointer[stickyMemo] // recent clients' answers, by client hash
}

// stickyMemoSlots is how many clients' answers a sticky selector remembers
// (a slot per client hash modulo this; a client that lands on a taken slot
// takes it over). A few resolvers send most queries: they hit.
const stickyMemoSlots = 256

// stickyMemo is one client's steady answer, immutable once stored.
type stickyMemo struct {
	client uint64 // the client's hash
	k      int
	idx    []int32
}

func (s *sticky) pick(q query, from []candidate, k int, sc *scratch) []int32 {
	ch := clientHash(q.client)
	ramping := s.ramp.active(q.now)
	if !ramping {
		// A client's answer depends only on the snapshot (this selector is
		// built with it) and the client: remember the last few, so that the
		// resolvers that ask most do not cost a pass over every value.
		slot := &s.memo[ch%stickyMemoSlots]
		if m := slot.Load(); m != nil && m.client == ch && m.k == k {
			return append(sc.idx[:0], m.idx...)
		}
		idx := s.pickSteady(ch, from, k, sc)
		slot.Store(&stickyMemo{client: ch, k: k, idx: slices.Clone(idx)})
		return idx
	}
	useLog := s.weighted || ramping // one kind of key for every value of a query
	// When every candidate ramps and none is in for this client, an empty
	// answer would hide healthy values (a whole set back from an outage):
	// they share the client's answer by their scaled weights instead.
	thin := ramping && s.anyIn(ch, from, q.now)
	idx := sc.idx[:0]
	keys := sc.keys[:0]
	// Once k values are in, a value must beat the k-th key; with ln(u)/w that
	// needs u > exp(kth*w) >= exp(kth*maxW), a bound that skips most
	// logarithms.
	floor := 0.0
	for i := range from {
		c := &from[i]
		h := mix64(ch ^ c.hash)
		u := unit(h)
		w := float64(c.weight)
		if ramping {
			if f := s.ramp.factor(c, q.now); f < 1 {
				if thin && unit(mix64(h^rampSalt)) >= f {
					continue
				}
				w *= f
			}
		}
		var key float64
		if useLog {
			if u <= floor {
				continue
			}
			key = math.Log(u) / w
		} else {
			key = u
		}
		if len(idx) == k && key <= keys[k-1] {
			continue
		}
		idx, keys = insertTop(idx, keys, k, int32(i), key)
		if len(idx) == k && useLog {
			floor = math.Exp(keys[k-1] * float64(s.maxW))
		}
	}
	sc.keys = keys
	return idx
}

// pickSteady is pick when no value ramps, the common case, and gives the
// same answers: the k best keys, computed over the packed hashes, with an
// integer bound that skips, once k values are in, every value whose hash
// cannot beat the k-th key (for 8 of 1,000 values, nearly all of them)
// before any floating point or logarithm.
func (s *sticky) pickSteady(ch uint64, from []candidate, k int, sc *scratch) []int32 {
	idx := sc.idx[:0]
	keys := sc.keys[:0]
	hashes := s.hashes
	key := func(i int, h uint64) float64 {
		if s.weighted {
			return math.Log(unit(h)) / float64(from[i].weight)
		}
		return unit(h)
	}
	// bound: unit(h) <= u when h>>11 <= u*2^53 - 1; with ln(u)/w the k-th
	// key needs u > exp(kth*w) >= exp(kth*maxW).
	bound := func() uint64 {
		u := keys[k-1]
		if s.weighted {
			u = math.Exp(u * float64(s.maxW))
		}
		return uint64(max(u*(1<<53)-1, 0))
	}
	first := min(k, len(hashes))
	for i := range first {
		idx, keys = insertTop(idx, keys, k, int32(i), key(i, mix64(ch^hashes[i])))
	}
	if first < k {
		sc.keys = keys
		return idx
	}
	b := bound()
	for i := first; i < len(hashes); i++ {
		h := mix64(ch ^ hashes[i])
		if h>>11 <= b {
			continue // nearly every value, once k are in
		}
		if kv := key(i, h); kv > keys[k-1] {
			idx, keys = insertTop(idx, keys, k, int32(i), kv)
			b = bound()
		}
	}
	sc.keys = keys
	return idx
}

// insertTop puts candidate i with key kv into the best-first lists idx and
// keys, which hold at most k: the k+1-th drops out.
func insertTop(idx []int32, keys []float64, k int, i int32, kv float64) ([]int32, []float64) {
	if len(idx) < k {
		idx, keys = append(idx, 0), append(keys, 0)
	}
	j := len(idx) - 1
	for j > 0 && keys[j-1] < kv {
		idx[j], keys[j] = idx[j-1], keys[j-1]
		j--
	}
	idx[j], keys[j] = i, kv
	return idx, keys
}

// anyIn reports whether some candidate is in the answers of the client
// hashed ch at now: one not ramping, or one whose slow-start hash falls
// below its factor.
func (s *sticky) anyIn(ch uint64, from []candidate, now time.Time) bool {
	for i := range from {
		c := &from[i]
		if f := s.ramp.factor(c, now); f >= 1 || unit(mix64(mix64(ch^c.hash)^rampSalt)) < f {
			return true
		}
	}
	return false
}

// rampSalt separates the slow-start hash from the score's.
const rampSalt = 0x9e3779b97f4a7c15

// mix64 is SplitMix64's finalizer (Stafford's variant 13): two multiplies and
// three shifts with full avalanche, so a client and a value that differ in one
// bit get unrelated scores. The inputs are fixed-size integers, so a
// general-purpose string hash (FNV, xxhash) would only cost more.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// unit maps a hash to (0, 1).
func unit(h uint64) float64 { return (float64(h>>11) + 0.5) / (1 << 53) }

// clientHash hashes a client prefix: its address bits and its length.
func clientHash(p netip.Prefix) uint64 {
	a := p.Addr().As16()
	return mix64(binary.BigEndian.Uint64(a[:8]) ^ mix64(binary.BigEndian.Uint64(a[8:])^uint64(p.Bits()+1)))
}

// hashBytes is FNV-1a over b, finalized with mix64: the value hashes, once at
// setup.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}
