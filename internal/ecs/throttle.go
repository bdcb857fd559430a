package ecs

import "github.com/berthdev/berth/internal/protocol"

// LaunchLimiter is the Fargate task launch rate (throttle.Policy implements
// it): AWS gives each account a bucket per Region that every Fargate task
// launch draws a token from, whether RunTask or a service launched it
// (burst 100, 20 a second). Tasks of the EC2 launch type do not count, as
// on AWS; nor does StartTask, which only places on container instances.
type LaunchLimiter interface {
	// TakeLaunches takes n tokens, all or none, and reports whether it did.
	TakeLaunches(account, region string, n int) bool
	// TakeLaunchesUpTo takes as many tokens as there are, up to n, and
	// returns how many.
	TakeLaunchesUpTo(account, region string, n int) int
}

// countsAsLaunch reports whether a task of launchType draws on the launch
// bucket.
func countsAsLaunch(launchType string) bool { return launchType != compatEC2 }

// takeRunTaskLaunches takes RunTask's count tokens, or fails the whole call
// with ThrottlingException as ECS does (a call cannot launch some of its
// tasks for want of tokens). It is called after validation, so a request
// that would fail anyway takes nothing, and before anything is stored.
func (s *Service) takeRunTaskLaunches(sc scope, launchType string, count int) error {
	if s.cfg.LaunchLimiter == nil || !countsAsLaunch(launchType) {
		return nil
	}
	if !s.cfg.LaunchLimiter.TakeLaunches(sc.account, sc.region, count) {
		return protocol.Throttled()
	}
	return nil
}

// serviceLaunches is how many of the want tasks a service may launch in
// this pass. A service is never failed for the launch rate: it launches what
// the bucket allows now, and the next pass (woken by the scheduler's tick)
// launches more. The tokens of a pass whose commit then fails are lost,
// which only slows that account a little.
func (s *Service) serviceLaunches(sc scope, launchType string, want int) int {
	if s.cfg.LaunchLimiter == nil || !countsAsLaunch(launchType) || want <= 0 {
		return want
	}
	return s.cfg.LaunchLimiter.TakeLaunchesUpTo(sc.account, sc.region, want)
}
