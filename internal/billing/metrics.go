package billing

import "github.com/prometheus/client_golang/prometheus"

// metrics count what was billed, by account and cluster (both bounded by
// what an operator creates), when a usage record is first stored:
//
//	berth_billing_cost_usd_total{account,cluster}
//	berth_billing_vcpu_seconds_total{account,cluster}
//	berth_billing_memory_gb_seconds_total{account,cluster}
//	berth_billing_tasks_total{account,cluster}
type metrics struct {
	cost, vcpu, gb, tasks *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	labels := []string{"account", "cluster"}
	m := &metrics{
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_billing_cost_usd_total",
			Help: "Cost billed for stopped tasks, in USD."}, labels),
		vcpu: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_billing_vcpu_seconds_total",
			Help: "vCPU-seconds billed for stopped tasks."}, labels),
		gb: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_billing_memory_gb_seconds_total",
			Help: "Memory GB-seconds billed for stopped tasks."}, labels),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_billing_tasks_total",
			Help: "Stopped tasks metered."}, labels),
	}
	if reg != nil {
		reg.MustRegister(m.cost, m.vcpu, m.gb, m.tasks)
	}
	return m
}

func (m *metrics) billed(u *Usage) {
	m.cost.WithLabelValues(u.Account, u.Cluster).Add(u.Cost())
	m.vcpu.WithLabelValues(u.Account, u.Cluster).Add(u.quantity(kindVCPU) * 3600)
	m.gb.WithLabelValues(u.Account, u.Cluster).Add(u.quantity(kindMemory) * 3600)
	m.tasks.WithLabelValues(u.Account, u.Cluster).Inc()
}
