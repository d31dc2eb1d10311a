package multivalue

// thresholds is the status machine of a probing check, kept apart from the
// probing so that it can be tested as a table of results: the first result
// sets the status; after that it takes failure failures in a row to turn
// healthy into unhealthy and success successes in a row to turn back.
type thresholds struct {
	healthy bool // true until a first result says otherwise
	known   bool // a first result has come
	streak  int  // results in a row that contradict healthy
}

// observe feeds one result and reports whether the status changed.
func (t *thresholds) observe(ok bool, failure, success int) (changed bool) {
	switch {
	case !t.known:
		t.known, t.streak = true, 0
		changed = ok != t.healthy
	case ok == t.healthy:
		t.streak = 0
	default:
		t.streak++
		need := failure
		if !t.healthy {
			need = success
		}
		changed = t.streak >= need
	}
	if changed {
		t.healthy, t.streak = ok, 0
	}
	return changed
}
