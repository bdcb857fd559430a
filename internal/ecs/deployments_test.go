package ecs

import (
	"testing"
	"time"
)

func TestBreakerThreshold(t *testing.T) {
	for desired, want := range map[int]int{0: 3, 1: 3, 5: 3, 6: 3, 7: 4, 10: 5, 399: 200, 400: 200, 1000: 200} {
		if got := breakerThreshold(desired); got != want {
			t.Errorf("threshold(%d) = %d, want %d", desired, got, want)
		}
	}
}

func TestDeploymentTransitions(t *testing.T) {
	now := time.Now()
	d := deploymentRecord{Deployment: Deployment{Status: depPrimary, RolloutState: rolloutInProgress}}
	if d.transition(evDrained, now) {
		t.Fatal("a PRIMARY does not drain")
	}
	if !d.transition(evBreaker, now) || d.Status != depPrimary || d.RolloutState != rolloutFailed {
		t.Fatalf("breaker: %+v", d)
	}
	if d.transition(evSteady, now) {
		t.Fatal("a FAILED rollout does not complete")
	}
	if !d.transition(evSuperseded, now) || d.Status != depActive || !d.transition(evDrained, now) || d.Status != depInactive {
		t.Fatalf("superseded and drained: %+v", d)
	}
}

func TestBoundsAlwaysLeaveRoom(t *testing.T) {
	r := serviceRecord{Service: ECSService{DesiredCount: 3, DeploymentConfiguration: &DeploymentConfiguration{
		MinimumHealthyPercent: ptr(100), MaximumPercent: ptr(100)}}}
	if lo, hi := r.bounds(); lo != 2 || hi != 3 {
		t.Fatalf("100/100 of 3: %d..%d, want 2..3", lo, hi)
	}
	r.Service.DeploymentConfiguration = nil
	if lo, hi := r.bounds(); lo != 3 || hi != 6 {
		t.Fatalf("defaults of 3: %d..%d, want 3..6", lo, hi)
	}
}

func ptr[T any](v T) *T { return &v }
