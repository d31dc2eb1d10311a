package multivalue

import (
	"time"
)

// selection is how a set's answers are chosen: the options of its records
// block, else of the multivalue block. The zero value is Route 53's: every
// healthy value, uniformly.
type selection struct {
	minHealthy     int           // healthy values a tier needs to be served; 0 counts as 1
	sticky         bool          // rendezvous hashing by client prefix
	v4Prefix       int           // sticky: bits of an IPv4 client that count
	v6Prefix       int           // sticky: bits of an IPv6 client that count
	slowStart      time.Duration // 0: off
	panicThreshold int           // percent of values that must be healthy to trust the checks; 0: off
}

// snapshot is what a query reads of a set, immutable once stored: the
// candidates of an answer and the selector built for them.
type snapshot struct {
	cands []candidate // what an answer is picked from; empty: no healthy value
	sel   selector
	panic bool // fewer healthy values than panic_threshold: cands holds them all

	fallback    []candidate // what all_unhealthy serve picks from: the lowest tier's values
	fallbackSel selector

	drained   bool      // every value is drained: NODATA
	rampUntil time.Time // a value of cands is in slow start until then; zero: none
}

// buildSnapshot computes a set's snapshot from its values' verdicts, in the
// order the spec gives: drained values out; the panic threshold; tiers;
// weights (standbys); and the selector for the rest. now is for slow start.
func buildSnapshot(values []*value, opts *selection, now time.Time) *snapshot {
	type entry struct {
		v  *value
		vd verdict
	}
	servable := make([]entry, 0, len(values))
	healthy := 0
	lowest := -1
	for _, v := range values {
		vd := v.verdict()
		if v.drain || vd.drained {
			continue
		}
		servable = append(servable, entry{v, vd})
		if vd.healthy {
			healthy++
		}
		if lowest < 0 || v.tier < lowest {
			lowest = v.tier
		}
	}
	if len(servable) == 0 {
		return &snapshot{drained: true}
	}
	snap := &snapshot{}
	// Panic: too few healthy values to believe the checks.
	snap.panic = opts.panicThreshold > 0 && healthy*100 < opts.panicThreshold*len(servable)
	isHealthy := func(e entry) bool { return snap.panic || e.vd.healthy }

	// Tiers: the lowest with min_healthy healthy values, else the lowest
	// with any. A tier counts the values it would answer with: its weighted
	// ones, or its standbys when none of those is healthy.
	need := max(opts.minHealthy, 1)
	type tally struct{ weighted, standby int }
	tallies := map[int]*tally{}
	for _, e := range servable {
		if !isHealthy(e) {
			continue
		}
		t := tallies[e.v.tier]
		if t == nil {
			t = &tally{}
			tallies[e.v.tier] = t
		}
		if e.v.weight > 0 {
			t.weighted++
		} else {
			t.standby++
		}
	}
	tier, anyTier := -1, -1
	for t, c := range tallies {
		n := c.weighted
		if n == 0 {
			n = c.standby
		}
		if n >= need && (tier < 0 || t < tier) {
			tier = t
		}
		if anyTier < 0 || t < anyTier {
			anyTier = t
		}
	}
	if tier < 0 {
		tier = anyTier
	}

	var served, fallback []*value
	var since []time.Time
	for _, e := range servable {
		if tier >= 0 && e.v.tier == tier && isHealthy(e) {
			served = append(served, e.v)
			s := time.Time{}
			if opts.slowStart > 0 && e.vd.healthy && !e.vd.since.IsZero() && now.Sub(e.vd.since) < opts.slowStart {
				s = e.vd.since
			}
			since = append(since, s)
		}
		if e.v.tier == lowest {
			fallback = append(fallback, e.v)
		}
	}
	snap.cands, snap.sel, snap.rampUntil = candidates(served, since, opts)
	snap.fallback, snap.fallbackSel, _ = candidates(fallback, nil, opts)
	return snap
}

// candidates turns the values an answer may hold into candidates, with the
// standby rule (weight-0 values only when no value has a weight, then at
// weight 1) and prefix sums, and builds the selector they need.
func candidates(vs []*value, since []time.Time, opts *selection) ([]candidate, selector, time.Time) {
	anyWeight := false
	for _, v := range vs {
		if v.weight > 0 {
			anyWeight = true
			break
		}
	}
	out := make([]candidate, 0, len(vs))
	var cum uint64
	var maxW uint32
	var rampUntil time.Time
	equal := true
	for i, v := range vs {
		w := uint32(1)
		if anyWeight {
			if v.weight == 0 {
				continue
			}
			w = uint32(v.weight)
		}
		if len(out) > 0 && w != out[0].weight {
			equal = false
		}
		maxW = max(maxW, w)
		cum += uint64(w)
		c := candidate{rr: v.rr, weight: w, cum: cum, hash: v.hash}
		if since != nil && !since[i].IsZero() {
			c.since = since[i]
			if end := since[i].Add(opts.slowStart); end.After(rampUntil) {
				rampUntil = end
			}
		}
		out = append(out, c)
	}
	r := ramp{duration: opts.slowStart, until: rampUntil}
	switch {
	case opts.sticky:
		hashes := make([]uint64, len(out))
		for i := range out {
			hashes[i] = out[i].hash
		}
		return out, &sticky{weighted: !equal, maxW: maxW, hashes: hashes, ramp: r}, rampUntil
	case !equal || !rampUntil.IsZero():
		return out, &weighted{total: cum, ramp: r}, rampUntil
	}
	return out, uniform{}, rampUntil
}
