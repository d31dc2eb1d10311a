package multivalue

import (
	"strings"
	"testing"
)

// TestClusterRule: healthy when more than healthy_above % of the voters say
// healthy; fewer than min_voters and the local verdict decides. The cases
// sit on the boundaries.
func TestClusterRule(t *testing.T) {
	for _, tc := range []struct {
		above, min       int
		healthy, voters  int
		wantOK, wantVote bool
	}{
		// Route 53's 18 %: with three replicas one healthy vote keeps a value.
		{18, 2, 0, 3, false, true},
		{18, 2, 1, 3, true, true},
		{18, 2, 3, 3, true, true},
		{18, 2, 1, 5, true, true},   // 20 % > 18 %
		{18, 2, 1, 6, false, true},  // 16.7 %
		{18, 2, 9, 50, false, true}, // exactly 18 % is not more than 18 %
		{18, 2, 10, 50, true, true},
		// 50 %: a strict majority.
		{50, 2, 1, 2, false, true},
		{50, 2, 2, 4, false, true},
		{50, 2, 3, 4, true, true},
		{50, 2, 2, 3, true, true},
		// 0 %: any healthy vote; none is unhealthy.
		{0, 1, 0, 1, false, true},
		{0, 1, 1, 9, true, true},
		// 99 %: every vote.
		{99, 2, 99, 100, false, true},
		{99, 2, 100, 100, true, true},
		// min_voters.
		{18, 2, 1, 1, false, false},
		{18, 2, 0, 1, false, false},
		{18, 3, 2, 2, false, false},
		{18, 3, 0, 3, false, true},
		{18, 1, 1, 1, true, true},
		{18, 1, 0, 0, false, false}, // no voter at all
	} {
		ok, byVote := clusterRule{healthyAbove: tc.above, minVoters: tc.min}.decide(tc.healthy, tc.voters)
		if ok != tc.wantOK || byVote != tc.wantVote {
			t.Errorf("healthy_above %d, min_voters %d, %d of %d healthy: got healthy=%v byVote=%v, want %v %v",
				tc.above, tc.min, tc.healthy, tc.voters, ok, byVote, tc.wantOK, tc.wantVote)
		}
	}
}

// TestJudge: who votes (peers, and this replica once it has a result), the
// fallbacks to the local verdict, disagreement, and what the reason says.
func TestJudge(t *testing.T) {
	rule := clusterRule{healthyAbove: 18, minVoters: 2}
	down := verdict{healthy: false, known: true, reason: "connection refused (http check of 127.0.0.1:80)"}
	up := verdict{healthy: true, known: true, reason: "status 200 (http check of 127.0.0.1:80)"}
	unknown := verdict{healthy: true}
	peer := func(r string, healthy bool, reason string) peerVote {
		return peerVote{replica: r, healthy: healthy, reason: reason}
	}
	for _, tc := range []struct {
		name         string
		local        verdict
		peers        []peerVote
		up           bool
		healthy      bool
		byVote       bool
		disagree     bool
		reasonPrefix string
	}{
		{"all three down", down, []peerVote{peer("b", false, "timeout after 4s"), peer("c", false, "x")}, true,
			false, true, false, "3 of 3 replicas report unhealthy (connection refused; http check of 127.0.0.1:80)"},
		{"outvoted locally", down, []peerVote{peer("c", true, "status 200"), peer("b", true, "status 204")}, true,
			true, true, true, "2 of 3 replicas report healthy (status 204)"},
		{"one healthy peer keeps it", down, []peerVote{peer("b", true, "status 200"), peer("c", false, "")}, true,
			true, true, true, "1 of 3 replicas report healthy"},
		{"agrees", up, []peerVote{peer("b", false, "")}, true,
			true, true, false, "1 of 2 replicas report healthy (status 200; http check of 127.0.0.1:80)"},
		{"no result yet: peers decide", unknown, []peerVote{peer("b", false, "refused"), peer("c", false, "refused")}, true,
			false, true, false, "2 of 2 replicas report unhealthy (refused)"},
		{"no result yet, one peer: too few voters", unknown, []peerVote{peer("b", false, "refused")}, true,
			true, false, false, "this replica alone: 1 of 2 voters needed"},
		{"alone", down, nil, true,
			false, false, false, "connection refused (http check of 127.0.0.1:80); this replica alone: 1 of 2 voters needed"},
		{"etcd unreachable", down, []peerVote{peer("b", true, ""), peer("c", true, "")}, false,
			false, false, false, "connection refused (http check of 127.0.0.1:80); this replica alone: etcd unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, byVote, disagree := judge(rule, tc.local, tc.peers, tc.up)
			if v.healthy != tc.healthy || byVote != tc.byVote || disagree != tc.disagree {
				t.Errorf("healthy=%v byVote=%v disagree=%v, want %v %v %v", v.healthy, byVote, disagree, tc.healthy, tc.byVote, tc.disagree)
			}
			if !strings.HasPrefix(v.reason, tc.reasonPrefix) {
				t.Errorf("reason %q, want it to start with %q", v.reason, tc.reasonPrefix)
			}
			if tc.byVote && !v.known {
				t.Error("a vote is a known verdict")
			}
		})
	}
}
