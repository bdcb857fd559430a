package protocol

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values used when a request names no known service or operation;
// the raw values are client-chosen and would explode cardinality.
const (
	labelUnknown = "unknown"
	labelOK      = "OK"
)

// metrics are the Router's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, logger *slog.Logger) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_api_requests_total",
			Help: "AWS-protocol API requests, by signing service, operation and result code (OK or the AWS error code).",
		}, []string{"service", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_api_request_duration_seconds",
			Help:    "Time to answer an AWS-protocol API request, by signing service and operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"service", "operation"}),
	}
	if reg == nil {
		return m
	}
	m.requests = register(reg, m.requests, logger)
	m.duration = register(reg, m.duration, logger)
	return m
}

// register registers c, or returns the collector already registered under
// the same description, so that building several Routers against one
// registry (tests, or a restart of the HTTP layer in one process) shares the
// series instead of panicking.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, logger *slog.Logger) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	logger.Warn("api metrics not registered; they will not be exported", "err", err)
	return c
}

func (m *metrics) observe(service, operation, code string, seconds float64) {
	m.requests.WithLabelValues(service, operation, code).Inc()
	m.duration.WithLabelValues(service, operation).Observe(seconds)
}
