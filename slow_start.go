package multivalue

import "time"

// ramp is slow start (HAProxy's slowstart, for DNS): a value that turned
// healthy after having been unhealthy is in an answer with probability
// t/duration, t being the time since it turned healthy, and weighs that
// fraction of its weight; after duration it counts fully. Nothing is
// scheduled: the factor is computed per query from the candidate's since.
type ramp struct {
	duration time.Duration
	until    time.Time // the last ramp of the snapshot ends then; zero: none
}

// factor is how much of candidate c counts at now, in (0, 1].
func (r ramp) factor(c *candidate, now time.Time) float64 {
	if c.since.IsZero() {
		return 1
	}
	t := now.Sub(c.since)
	if t >= r.duration {
		return 1
	}
	if t <= 0 {
		return 0
	}
	return float64(t) / float64(r.duration)
}

// active reports whether some candidate may still be ramping at now.
func (r ramp) active(now time.Time) bool { return !r.until.IsZero() && now.Before(r.until) }
