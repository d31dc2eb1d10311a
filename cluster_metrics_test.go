package multivalue

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClusterMetricsLint runs Prometheus's linter over the cluster's gauges,
// and checks that they export nothing without a cluster and go with the last
// member.
func TestClusterMetricsLint(t *testing.T) {
	ms := newMetricSet(prometheus.NewRegistry())
	for _, c := range ms.clusterCollectors() {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%d series without a cluster, want none", n)
		}
	}
	ms.setCluster(true, 3, 1)
	for _, c := range ms.clusterCollectors() {
		if n := testutil.CollectAndCount(c); n != 1 {
			t.Fatalf("%d series, want 1", n)
		}
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	if up, r, d := testutil.ToFloat64(ms.clusterUp), testutil.ToFloat64(ms.clusterReplicas), testutil.ToFloat64(ms.clusterDisagreements); up != 1 || r != 3 || d != 1 {
		t.Errorf("up %v, replicas %v, disagreements %v; want 1, 3, 1", up, r, d)
	}
	ms.dropCluster()
	for _, c := range ms.clusterCollectors() {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%d series after the last member, want none", n)
		}
	}
}
