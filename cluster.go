package multivalue

import (
	"fmt"

	"github.com/coredns/caddy"
)

// The glue between an instance and its cluster member: cluster_config.go
// parses `cluster`, cluster_member.go talks to etcd, cluster_vote.go is the
// source a clustered value is bound to, cluster_rule.go decides.

// clusterSource is the source that decides a value checked by c: the vote of
// the replicas with `cluster`, else c itself. Runs in start, under life.mu.
func (m *Multivalue) clusterSource(c *check) source {
	if m.member == nil {
		return c
	}
	v := m.member.vote(c, m.cluster.rule)
	m.votes = append(m.votes, v)
	return v
}

// runningSource is the source a value checked by a running check c has
// before its instance starts: the running vote for it, when a previous
// instance with the same cluster holds one, else c.
func (m *Multivalue) runningSource(c *check) source {
	if m.cluster != nil {
		if v := m.engine.cluster.lookupVote(m.cluster, c); v != nil {
			return v
		}
	}
	return c
}

// releaseCluster drops the instance's votes and its use of the member: the
// last user of a member revokes its lease. Runs in stop, under life.mu,
// after the values are unbound.
func (m *Multivalue) releaseCluster() {
	if m.member == nil {
		return
	}
	for _, v := range m.votes {
		m.member.releaseVote(v)
	}
	m.votes = nil
	m.engine.cluster.release(m.member)
	m.member = nil
}

// clusterSeen is the key of the instance storage where setup keeps the
// first block's cluster: every block of a process must name the same.
type clusterSeen struct{}

// sameCluster refuses a block whose cluster differs from an earlier block's
// of the same Corefile. Blocks without `cluster` decide alone.
func sameCluster(c *caddy.Controller, cc *clusterConfig) error {
	if cc == nil {
		return nil
	}
	prev, _ := c.Get(clusterSeen{}).(*clusterConfig)
	if prev == nil {
		c.Set(clusterSeen{}, cc)
		return nil
	}
	if !prev.same(cc) {
		return fmtClusterErr(cc, prev)
	}
	return nil
}

// fmtClusterErr is the error for a block naming another cluster than an
// earlier one.
func fmtClusterErr(cc, prev *clusterConfig) error {
	return fmt.Errorf("%s:%d - Error during parsing: cluster differs from the one on %s:%d: every block of a process must name the same cluster with the same settings",
		cc.file, cc.line, prev.file, prev.line)
}
