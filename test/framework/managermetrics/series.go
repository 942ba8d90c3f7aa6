// Package managermetrics reads the metrics a manager running in the test
// process serves, for assertions; it imports nothing of CAFE, so the
// packages the manager is built from can use it in their own tests.
package managermetrics

import (
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Series is the series of metric name whose labels include labels,
// read from controller-runtime's process-wide registry (the one a manager
// running in the test process serves); nil if there is none.
func Series(g Gomega, name string, labels map[string]string) *dto.Metric {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m
			}
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
