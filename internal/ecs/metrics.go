package ecs

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// metrics are the control plane's task metrics:
//
//	berth_tasks{state}                       gauge: tasks by lastStatus, read from etcd at each scrape
//	berth_task_launch_seconds                histogram: RunTask accepted (createdAt) → the RUNNING
//	                                         report applied, observed once per task by the replica
//	                                         whose transaction applied it
//	berth_agent_poll_address_sets_total{form} counter: address sets the agents' polls carried,
//	                                         form "delta" (the changes since the agent's last poll)
//	                                         or "whole" (every member)
type metrics struct {
	launch   prometheus.Histogram
	pollSets *prometheus.CounterVec
}

var taskStates = []string{agentapi.StatusProvisioning, agentapi.StatusPending, agentapi.StatusActivating, agentapi.StatusRunning,
	agentapi.StatusDeactivating, agentapi.StatusStopping, agentapi.StatusDeprovisioning, agentapi.StatusStopped}

func newMetrics(reg prometheus.Registerer, s *Service) *metrics {
	m := &metrics{launch: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "berth_task_launch_seconds", Help: "Time from RunTask (or the service scheduler) accepting a task to its RUNNING report being applied.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms … 7 min
	}), pollSets: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_agent_poll_address_sets_total", Help: "Address sets the agents' polls carried, as deltas or whole.",
	}, []string{"form"})}
	if reg != nil {
		reg.MustRegister(m.launch, m.pollSets, &taskStateCollector{s: s, desc: prometheus.NewDesc("berth_tasks",
			"Tasks by last status, as the control plane's store has them.", []string{"state"}, nil)})
	}
	return m
}

// sentSets counts the address sets of one poll.
func (m *metrics) sentSets(sets []agentapi.AddressSet) {
	if m == nil {
		return
	}
	for _, set := range sets {
		form := "whole"
		if set.Delta {
			form = "delta"
		}
		m.pollSets.WithLabelValues(form).Inc()
	}
}

func (m *metrics) launched(created *Time, now time.Time) {
	if m != nil && created != nil {
		m.launch.Observe(now.Sub(created.Time).Seconds())
	}
}

// taskStateCollector counts the stored tasks by state at each scrape.
type taskStateCollector struct {
	s    *Service
	desc *prometheus.Desc
}

func (c *taskStateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *taskStateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, ok := c.s.tasks.stateCounts()
	if ok {
		for _, st := range taskStates {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), st)
		}
		return
	}
	counts = map[string]int{}
	err := c.s.st.List(ctx, store.Prefix("acct"), func(key string, val []byte) error {
		if !strings.Contains(key, "/tasks/") {
			return nil
		}
		var r indexedRecord
		if decodeIndexed(val, &r) == nil {
			counts[r.Task.LastStatus]++
		}
		return nil
	})
	if err != nil {
		c.s.log.Warn("count tasks for metrics", "err", err)
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, st := range taskStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}
