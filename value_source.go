package multivalue

// sourceFor builds the source that decides a value's health from its checks'
// specs: alwaysHealthy without any; the check itself for one probing check;
// a calculated source over its children for a calculated one; all of them
// for several. get returns the source of one probing spec.
func sourceFor(specs []*checkSpec, get func(*checkSpec) source) source {
	srcs := make([]source, len(specs))
	for i, s := range specs {
		if s.protocol != protoCalculated {
			srcs[i] = get(s)
			continue
		}
		kids := make([]source, len(s.kids))
		for j, k := range s.kids {
			kids[j] = get(k)
		}
		srcs[i] = newCalculated(s, kids)
	}
	switch len(srcs) {
	case 0:
		return alwaysHealthy{}
	case 1:
		return srcs[0]
	}
	return newAllOf(srcs)
}

// acquireSource acquires the probing checks of a value's specs (starting those
// that are new) and returns the source that decides its health and the
// checks it now holds, for release.
// wrap turns each check into the source that stands for it (a cluster's vote
// on it, or the check itself).
func (e *engine) acquireSource(specs []*checkSpec, wrap func(*check) source) (source, []*check) {
	var held []*check
	src := sourceFor(specs, func(s *checkSpec) source {
		c := e.acquire(s)
		held = append(held, c)
		return wrap(c)
	})
	return src, held
}

// lookupSource is the source of a value's specs made of the checks already
// running (a reloaded instance's first snapshot), starting nothing: a check
// not running counts as healthy, as before a first result.
func (e *engine) lookupSource(specs []*checkSpec, wrap func(*check) source) source {
	return sourceFor(specs, func(s *checkSpec) source {
		if c := e.table.lookup(s.key()); c != nil {
			return wrap(c)
		}
		return alwaysHealthy{}
	})
}

// checkItself is the wrap of a value outside a cluster: each check stands for
// itself.
func checkItself(c *check) source { return c }
