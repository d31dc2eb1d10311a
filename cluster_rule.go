package multivalue

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// decide is Route 53's rule: healthy when more than healthyAbove percent of
// the voters say healthy. byVote is false when there are fewer than
// minVoters voters: then the replica's own verdict decides.
func (r clusterRule) decide(healthy, voters int) (ok, byVote bool) {
	if voters < max(r.minVoters, 1) {
		return false, false
	}
	return healthy*100 > r.healthyAbove*voters, true
}

// peerVote is another replica's published verdict of one check.
type peerVote struct {
	replica string
	healthy bool
	since   time.Time // zero: not given
	reason  string
}

// judge is the verdict of a check in a cluster: the vote of the replicas
// when etcd is reachable (up) and there are enough voters, else this
// replica's own (local). Voters are the peers with a live verdict and this
// replica once its check has a first result. since is left for the caller,
// which knows when the verdict last changed. disagree says that the local
// verdict is outvoted.
func judge(r clusterRule, local verdict, peers []peerVote, up bool) (v verdict, byVote, disagree bool) {
	if !up {
		return alone(local, "etcd unreachable"), false, false
	}
	healthy, voters := 0, len(peers)
	for _, p := range peers {
		if p.healthy {
			healthy++
		}
	}
	if local.known {
		voters++
		if local.healthy {
			healthy++
		}
	}
	ok, byVote := r.decide(healthy, voters)
	if !byVote {
		return alone(local, fmt.Sprintf("%d of %d voters needed", voters, max(r.minVoters, 1))), false, false
	}
	agree := healthy
	if !ok {
		agree = voters - healthy
	}
	// The reason of a voter that agrees: this replica's, else the first
	// peer's by replica ID.
	reason := ""
	if local.known && local.healthy == ok {
		reason = local.reason
	} else {
		first := ""
		for _, p := range peers {
			if p.healthy == ok && (first == "" || p.replica < first) {
				first, reason = p.replica, p.reason
			}
		}
	}
	v = verdict{
		healthy: ok,
		known:   true,
		reason:  fmt.Sprintf("%d of %d replicas report %s%s", agree, voters, statusName(ok), parenthesized(reason)),
	}
	return v, true, local.known && local.healthy != ok
}

// alone is the local verdict, its reason saying why the cluster did not
// decide.
func alone(local verdict, why string) verdict {
	if local.reason != "" {
		local.reason += "; "
	}
	local.reason += "this replica alone: " + why
	return local
}

// parenthesized writes a check's reason, "connection refused (http check of
// 127.0.0.1:80)", as " (connection refused; http check of 127.0.0.1:80)".
func parenthesized(reason string) string {
	if reason == "" {
		return ""
	}
	if i := strings.LastIndex(reason, " ("); i > 0 && strings.HasSuffix(reason, ")") && strings.Contains(reason[i:], " check ") {
		reason = reason[:i] + "; " + reason[i+2:len(reason)-1]
	}
	return " (" + reason + ")"
}

// sortPeers orders votes by replica, for logs, tests and the status API.
func sortPeers(ps []peerVote) {
	slices.SortFunc(ps, func(a, b peerVote) int { return strings.Compare(a.replica, b.replica) })
}
