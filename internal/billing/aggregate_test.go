package billing

import (
	"math"
	"testing"
	"time"
)

func TestPeriods(t *testing.T) {
	d := func(s string) time.Time { return *at(s) }
	tests := []struct {
		gran       string
		start, end string
		want       []string // starts
	}{
		{granDaily, "2026-11-25T00:00:00Z", "2026-11-28T00:00:00Z", []string{"2026-11-25", "2026-11-26", "2026-11-27"}},
		{granHourly, "2026-11-25T22:00:00Z", "2026-11-26T01:00:00Z", []string{"2026-11-25T22", "2026-11-25T23", "2026-11-26T00"}},
		{granMonthly, "2026-10-15T00:00:00Z", "2026-12-02T00:00:00Z", []string{"2026-10-15", "2026-11-01", "2026-12-01"}},
	}
	for _, tc := range tests {
		ps := periods(d(tc.start), d(tc.end), tc.gran)
		if len(ps) != len(tc.want) {
			t.Fatalf("%s: %d periods, want %d", tc.gran, len(ps), len(tc.want))
		}
		for i, p := range ps {
			format := time.DateOnly
			if tc.gran == granHourly {
				format = "2006-01-02T15"
			}
			if p.Start.Format(format) != tc.want[i] {
				t.Errorf("%s period %d starts %s, want %s", tc.gran, i, p.Start, tc.want[i])
			}
		}
		if !ps[len(ps)-1].End.Equal(d(tc.end)) {
			t.Errorf("%s: last period ends %s, want %s", tc.gran, ps[len(ps)-1].End, tc.end)
		}
	}
}

func usageOf(cluster, service string, pull, stop string, cpu, mem int) Usage {
	group := "family:web"
	if service != "" {
		group = "service:" + service
	}
	return Meter(Task{Account: "a", Region: "us-east-1", TaskID: cluster + service + pull, Cluster: cluster, Family: "web", Group: group,
		CPU: cpu, MemoryMiB: mem, PullStartedAt: at(pull), StoppedAt: at(stop)}, &DefaultRates, time.Now())
}

func TestSplitAcrossHoursAndDays(t *testing.T) {
	// 1 vCPU, 2 GB from 23:30 to 01:30: a quarter, a half and a quarter by
	// hour; a quarter and three quarters by day.
	u := usageOf("c", "", "2026-11-25T23:30:00Z", "2026-11-26T01:30:00Z", 1024, 2048)
	total := u.Cost()
	hours := aggregate([]Usage{u}, periods(*at("2026-11-25T23:00:00Z"), *at("2026-11-26T02:00:00Z"), granHourly), nil, nil)
	for i, want := range []float64{0.25, 0.5, 0.25} {
		if got := hours[i][""].cost; math.Abs(got-want*total) > 1e-12 {
			t.Errorf("hour %d: %v, want %v", i, got, want*total)
		}
	}
	days := aggregate([]Usage{u}, periods(*at("2026-11-25T00:00:00Z"), *at("2026-11-27T00:00:00Z"), granDaily), nil, nil)
	for i, f := range []float64{0.25, 0.75} {
		if got := days[i][""].cost; math.Abs(got-f*total) > 1e-12 {
			t.Errorf("day %d: %v, want %v", i, got, f*total)
		}
		// 2 vCPU-hours and 4 GB-hours in all.
		if got := days[i][""].quantity; math.Abs(got-f*6) > 1e-12 {
			t.Errorf("day %d quantity %v, want %v", i, got, f*6)
		}
	}
	// Outside the range: nothing.
	none := aggregate([]Usage{u}, periods(*at("2026-11-27T00:00:00Z"), *at("2026-11-28T00:00:00Z"), granDaily), nil, nil)
	if len(none[0]) != 0 {
		t.Errorf("usage outside its run: %v", none[0])
	}
	// The one-minute minimum of a 2 s run lies in its hour.
	short := usageOf("c", "", "2026-11-25T23:59:59Z", "2026-11-26T00:00:01Z", 256, 512)
	split := aggregate([]Usage{short}, periods(*at("2026-11-25T23:00:00Z"), *at("2026-11-26T01:00:00Z"), granHourly), nil, nil)
	if a, b := split[0][""].cost, split[1][""].cost; math.Abs(a-b) > 1e-15 || math.Abs(a+b-short.Cost()) > 1e-15 {
		t.Errorf("split of a short run: %v + %v, want halves of %v", a, b, short.Cost())
	}
}

func TestGroupingAndFilters(t *testing.T) {
	usage := []Usage{
		usageOf("prod", "api", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z", 1024, 2048),
		usageOf("prod", "", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z", 256, 512),
		usageOf("dev", "", "2026-11-26T10:00:00Z", "2026-11-26T11:00:00Z", 512, 1024),
	}
	day := periods(*at("2026-11-26T00:00:00Z"), *at("2026-11-27T00:00:00Z"), granDaily)
	cost := func(i int) float64 { return usage[i].Cost() }
	tests := []struct {
		name   string
		groups []groupDefinition
		filter *expression
		want   map[string]float64
	}{
		{name: "by cluster tag", groups: []groupDefinition{{"TAG", TagCluster}},
			want: map[string]float64{"aws:ecs:clusterName$prod": cost(0) + cost(1), "aws:ecs:clusterName$dev": cost(2)}},
		{name: "by cluster and service", groups: []groupDefinition{{"TAG", TagCluster}, {"TAG", TagService}},
			want: map[string]float64{"aws:ecs:clusterName$prod\x00aws:ecs:serviceName$api": cost(0),
				"aws:ecs:clusterName$prod\x00aws:ecs:serviceName$": cost(1), "aws:ecs:clusterName$dev\x00aws:ecs:serviceName$": cost(2)}},
		{name: "by service dimension", groups: []groupDefinition{{"DIMENSION", "SERVICE"}},
			want: map[string]float64{ServiceName: cost(0) + cost(1) + cost(2)}},
		{name: "by usage type, one cluster", groups: []groupDefinition{{"DIMENSION", "USAGE_TYPE"}},
			filter: &expression{Tags: &valuesFilter{Key: TagCluster, Values: []string{"dev"}}},
			want:   map[string]float64{"USE1-Fargate-vCPU-Hours:perCPU": 0.5 * 0.04048, "USE1-Fargate-GB-Hours": 1 * 0.004445}},
		{name: "and, not", filter: &expression{And: []expression{
			{Dimensions: &valuesFilter{Key: "SERVICE", Values: []string{ServiceName}}},
			{Not: &expression{Tags: &valuesFilter{Key: TagService, MatchOptions: []string{"ABSENT"}}}}}},
			want: map[string]float64{"": cost(0)}},
		{name: "another service", filter: &expression{Dimensions: &valuesFilter{Key: "SERVICE", Values: []string{"Amazon Elastic Compute Cloud - Compute"}}},
			want: map[string]float64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := aggregate(usage, day, tc.groups, tc.filter)[0]
			if len(got) != len(tc.want) {
				t.Fatalf("groups %v, want %v", sortedKeys(got), tc.want)
			}
			for k, v := range tc.want {
				if got[k] == nil || math.Abs(got[k].cost-v) > 1e-12 {
					t.Errorf("group %q: %+v, want cost %v", k, got[k], v)
				}
			}
		})
	}
}

func TestAmount(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1.5: "1.5", 0.000205708333: "0.0002057083", 12: "12"} {
		if got := amount(v); got != want {
			t.Errorf("amount(%v) = %s, want %s", v, got, want)
		}
	}
}
