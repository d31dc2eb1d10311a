package multivalue

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
)

// registerCluster makes the cluster's gauges. They are vectors without
// labels so that a process without `cluster` exports no series (a
// cluster_up of 0 would say etcd is down).
func (ms *metricSet) registerCluster(reg prometheus.Registerer) {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: plugin.Namespace,
			Subsystem: "multivalue",
			Name:      name,
			Help:      help,
		}, nil)
	}
	ms.clusterUp = gauge("cluster_up", "Whether etcd answers this replica's lease keepalives: 1 the replicas vote, 0 each decides alone.")
	ms.clusterReplicas = gauge("cluster_replicas", "Live replicas of the cluster, this one included.")
	ms.clusterDisagreements = gauge("cluster_disagreements", "Checks whose local verdict differs from the cluster's consensus.")
	reg.MustRegister(ms.clusterUp, ms.clusterReplicas, ms.clusterDisagreements)
}

// setCluster sets the cluster's gauges.
func (ms *metricSet) setCluster(up bool, replicas, disagreements int) {
	ms.clusterUp.WithLabelValues().Set(boolFloat(up))
	ms.clusterReplicas.WithLabelValues().Set(float64(replicas))
	ms.clusterDisagreements.WithLabelValues().Set(float64(disagreements))
}

// dropCluster deletes the cluster's series: no member is left.
func (ms *metricSet) dropCluster() {
	ms.clusterUp.Reset()
	ms.clusterReplicas.Reset()
	ms.clusterDisagreements.Reset()
}

// clusterCollectors are the cluster's collectors, for the tests that read
// every collector.
func (ms *metricSet) clusterCollectors() []prometheus.Collector {
	return []prometheus.Collector{ms.clusterUp, ms.clusterReplicas, ms.clusterDisagreements}
}
