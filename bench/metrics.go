package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a berth endpoint's /metrics.
type Metrics map[string]*dto.MetricFamily

// Scrape reads url's /metrics (Prometheus text format).
func Scrape(ctx context.Context, client *http.Client, baseURL string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: parse: %w", err)
	}
	return Metrics(fams), nil
}

// Histogram returns the sum (as a duration) and count of the histogram
// name, of the series whose labels include the given name/value pairs
// (none: the first series). A missing series reads as zero.
func (m Metrics) Histogram(name string, labels ...string) (time.Duration, uint64) {
	f := m[name]
	if f == nil {
		return 0, 0
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) || s.GetHistogram() == nil {
			continue
		}
		h := s.GetHistogram()
		return time.Duration(h.GetSampleSum() * float64(time.Second)), h.GetSampleCount()
	}
	return 0, 0
}

// Counter returns the value of counter name (its first series), or 0.
func (m Metrics) Counter(name string) float64 {
	f := m[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

// Gauge returns the value of gauge name (its first series), or 0.
func (m Metrics) Gauge(name string) float64 {
	f := m[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

func hasLabels(s *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// HistogramDelta is how much a histogram series grew between two scrapes.
func HistogramDelta(before, after Metrics, name string, labels ...string) (time.Duration, uint64) {
	s0, n0 := before.Histogram(name, labels...)
	s1, n1 := after.Histogram(name, labels...)
	return s1 - s0, n1 - n0
}
