package multivalue

import (
	"sync"
	"time"
)

// voteKey identifies a vote: a local check under a rule. Instances of one
// process share votes as they share checks.
type voteKey struct {
	c    *check
	rule clusterRule
}

// vote is the source a clustered value is bound to: it wraps a check's local
// verdict and decides by the replicas' votes (judge) while etcd is
// reachable and there are enough voters, else by the local verdict. It is
// recomputed when the check changes, when a peer's vote changes, and when
// etcd comes or goes, and tells its watchers when its verdict changes.
type vote struct {
	m       *member
	c       *check
	id      string
	rule    clusterRule
	refs    int    // under m.mu
	unwatch func() // the check's watch; set under m.mu

	mu       sync.Mutex
	cur      verdict
	byVote   bool // cur is the replicas' vote, not the local verdict
	disagree bool // counted in the member's disagreements
	released bool
	w        watchers
}

// verdict implements source.
func (v *vote) verdict() verdict {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cur
}

// watch implements source.
func (v *vote) watch(fn func()) (unwatch func()) { return v.w.add(fn) }

// update recomputes the verdict. Its inputs are read under v.mu, so two
// updates racing store the later inputs' verdict.
func (v *vote) update() {
	v.mu.Lock()
	if v.released {
		v.mu.Unlock()
		return
	}
	local := v.c.verdict()
	up, peers := v.m.state(v.id)
	next, byVote, disagree := judge(v.rule, local, peers, up)
	changed := next.healthy != v.cur.healthy || next.known != v.cur.known
	if changed {
		next.since = time.Now()
	} else {
		next.since = v.cur.since
	}
	d := 0
	switch {
	case disagree && !v.disagree:
		d = 1
	case !disagree && v.disagree:
		d = -1
	}
	v.cur, v.byVote, v.disagree = next, byVote, disagree
	v.mu.Unlock()
	if d != 0 {
		v.m.addDisagreement(d)
	}
	if changed {
		v.w.notify()
	}
}

// release stops updates and reports whether the vote was counted as a
// disagreement.
func (v *vote) release() (disagreed bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.released = true
	disagreed, v.disagree = v.disagree, false
	return disagreed
}

// votes returns the live votes of this check, this replica's included, by
// replica ID: the status API's votes. Empty while etcd is unreachable.
func (v *vote) votes() []peerVote {
	up, peers := v.m.state(v.id)
	if local := v.c.verdict(); up && local.known {
		peers = append(peers, peerVote{replica: v.m.conn.replica, healthy: local.healthy, since: local.since, reason: local.reason})
	}
	sortPeers(peers)
	return peers
}
