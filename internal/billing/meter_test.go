package billing

import (
	"math"
	"testing"
	"time"
)

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestMeter(t *testing.T) {
	base := Task{Account: "000000000000", Region: "us-east-1", TaskID: "t1", Cluster: "c", Family: "web",
		Group: "family:web", CPU: 256, MemoryMiB: 512}
	tests := []struct {
		name        string
		mod         func(*Task)
		seconds     int64
		from        string
		vcpuRate    float64
		gbRate      float64
		ephemeralGB int
		types       []string
	}{
		{name: "short run billed a minute", mod: func(t *Task) {
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T10:00:02Z")
		}, seconds: 60, from: "pullStartedAt", vcpuRate: 0.04048, gbRate: 0.004445,
			types: []string{"USE1-Fargate-vCPU-Hours:perCPU", "USE1-Fargate-GB-Hours"}},
		{name: "rounded up to the second", mod: func(t *Task) {
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T10:01:30.001Z")
		}, seconds: 91, from: "pullStartedAt", vcpuRate: 0.04048, gbRate: 0.004445},
		{name: "exact seconds stay", mod: func(t *Task) {
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T12:00:00Z")
		}, seconds: 7200, from: "pullStartedAt", vcpuRate: 0.04048, gbRate: 0.004445},
		{name: "float noise of stored milliseconds", mod: func(t *Task) {
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00.112999916Z"), at("2026-11-26T10:01:07.113000001Z")
		}, seconds: 67, from: "pullStartedAt", vcpuRate: 0.04048, gbRate: 0.004445},
		{name: "no pull: from containers' start", mod: func(t *Task) {
			t.StartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T10:05:00Z")
		}, seconds: 300, from: "startedAt", vcpuRate: 0.04048, gbRate: 0.004445},
		{name: "never pulled nor started: free", mod: func(t *Task) {
			t.CreatedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T10:05:00Z")
		}},
		{name: "EC2 launch type: the user's capacity", mod: func(t *Task) {
			t.LaunchType = "EC2"
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T11:00:00Z")
		}},
		{name: "spot", mod: func(t *Task) {
			t.CapacityProvider = CapacityFargateSpot
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T11:00:00Z")
		}, seconds: 3600, from: "pullStartedAt", vcpuRate: 0.012144, gbRate: 0.0013335,
			types: []string{"USE1-SpotUsage-Fargate-vCPU-Hours:perCPU", "USE1-SpotUsage-Fargate-GB-Hours"}},
		{name: "arm", mod: func(t *Task) {
			t.Architecture = ArchARM
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T11:00:00Z")
		}, seconds: 3600, from: "pullStartedAt", vcpuRate: 0.03238, gbRate: 0.00356,
			types: []string{"USE1-Fargate-ARM-vCPU-Hours:perCPU", "USE1-Fargate-ARM-GB-Hours"}},
		{name: "ephemeral storage above 20 GB", mod: func(t *Task) {
			t.EphemeralGiB = 50
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T11:00:00Z")
		}, seconds: 3600, from: "pullStartedAt", vcpuRate: 0.04048, gbRate: 0.004445, ephemeralGB: 30,
			types: []string{"USE1-Fargate-vCPU-Hours:perCPU", "USE1-Fargate-GB-Hours", "USE1-Fargate-EphemeralStorage-GB-Hours"}},
		{name: "20 GB of storage is free", mod: func(t *Task) {
			t.EphemeralGiB = 20
			t.PullStartedAt, t.StoppedAt = at("2026-11-26T10:00:00Z"), at("2026-11-26T11:00:00Z")
		}, seconds: 3600, from: "pullStartedAt", vcpuRate: 0.04048, gbRate: 0.004445},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := base
			tc.mod(&task)
			u := Meter(task, &DefaultRates, time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC))
			if u.BilledSeconds != tc.seconds || u.StartedFrom != tc.from {
				t.Fatalf("billed %d s from %q, want %d s from %q", u.BilledSeconds, u.StartedFrom, tc.seconds, tc.from)
			}
			hours := float64(tc.seconds) / 3600
			want := 0.25*hours*tc.vcpuRate + 0.5*hours*tc.gbRate + float64(tc.ephemeralGB)*hours*0.000111
			if !near(u.Cost(), want) {
				t.Errorf("cost %.12f, want %.12f", u.Cost(), want)
			}
			if !near(u.quantity(kindVCPU), 0.25*hours) || !near(u.quantity(kindMemory), 0.5*hours) {
				t.Errorf("quantities %v %v", u.quantity(kindVCPU), u.quantity(kindMemory))
			}
			for i, ut := range tc.types {
				if i >= len(u.Lines) || u.Lines[i].UsageType != ut {
					t.Errorf("lines %+v, want usage types %v", u.Lines, tc.types)
					break
				}
			}
			if len(tc.types) > 0 && len(u.Lines) != len(tc.types) {
				t.Errorf("%d lines, want %d", len(u.Lines), len(tc.types))
			}
		})
	}
}

func TestMeterMinimumChargeExactly(t *testing.T) {
	// 0.25 vCPU and 0.5 GB for the one-minute minimum.
	u := Meter(Task{CPU: 256, MemoryMiB: 512, PullStartedAt: at("2026-11-26T10:00:00Z"), StoppedAt: at("2026-11-26T10:00:02Z")},
		&DefaultRates, time.Now())
	want := 0.25*60/3600*0.04048 + 0.5*60/3600*0.004445
	if !near(u.Cost(), want) || amount(u.Cost()) != "0.0002057083" {
		t.Fatalf("cost %s, want %.10f", amount(u.Cost()), want)
	}
}

func TestMeterTags(t *testing.T) {
	u := Meter(Task{Cluster: "prod", Family: "web", Group: "service:api", Tags: map[string]string{"team": "a"},
		StartedAt: at("2026-11-26T10:00:00Z"), StoppedAt: at("2026-11-26T10:00:02Z")}, &DefaultRates, time.Now())
	want := map[string]string{TagCluster: "prod", TagFamily: "web", TagService: "api", "team": "a"}
	for k, v := range want {
		if u.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q (%v)", k, u.Tags[k], v, u.Tags)
		}
	}
	u = Meter(Task{Cluster: "prod", Group: "family:web"}, &DefaultRates, time.Now())
	if _, ok := u.Tags[TagService]; ok {
		t.Errorf("a task outside a service has a service tag: %v", u.Tags)
	}
}
