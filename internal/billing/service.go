// Package billing owns metering and cost: the prices (rates.go, the one
// place they are set), a usage record per stopped task written exactly once
// (usage/<account>/<region>/<task-id>, created only if absent), the Cost
// Explorer API over those records (GetCostAndUsage, awsJson1_1 target
// AWSInsightsIndexService, signing name ce), and the Prometheus counters of
// what was billed. It knows nothing of ECS: the daemon hands it stopped
// tasks as billing.Task. Running tasks are not billed until they stop.
package billing

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// TargetPrefix is Cost Explorer's X-Amz-Target prefix.
const TargetPrefix = "AWSInsightsIndexService"

// Config configures billing.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Rates are the prices (default DefaultRates).
	Rates *Rates
	// Registerer receives the billing counters (nil: not exported).
	Registerer prometheus.Registerer
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// Service meters tasks and answers Cost Explorer.
type Service struct {
	st      *store.Store
	log     *slog.Logger
	rates   Rates
	now     func() time.Time
	metrics *metrics
}

// New creates the billing service.
func New(cfg Config) *Service {
	s := &Service{st: cfg.Store, log: cfg.Logger, rates: DefaultRates, now: cfg.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.Rates != nil {
		s.rates = *cfg.Rates
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.metrics = newMetrics(cfg.Registerer)
	return s
}

// JSONService returns the Cost Explorer operations for the protocol router.
func (s *Service) JSONService() protocol.JSONService {
	return protocol.JSONService{
		TargetPrefix: TargetPrefix,
		SigningName:  "ce",
		Ops: map[string]protocol.JSONHandler{
			"GetCostAndUsage": s.getCostAndUsage,
		},
	}
}
