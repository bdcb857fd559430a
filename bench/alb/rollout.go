package alb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// The rollout: a service of rolloutTasks tasks behind the ALB's port 81 is
// updated to a task definition revision whose backend answers newBody
// instead of oldBody, while a client polls the ALB every poll.
const (
	rolloutTasks = 3
	oldBody      = "v1"
	newBody      = "v2"
	window       = 50 // consecutive new answers that count as "all new"
	serviceName  = "rollout"
)

// poll is one request of the rollout's client.
type poll struct {
	at     time.Duration // since UpdateService was sent
	status int           // 0: transport error
	body   string
}

// rolloutResult is what the rollout measured.
type rolloutResult struct {
	firstNew time.Duration // first new answer
	allNew   time.Duration // start of the first window of new answers only
	steady   time.Duration // DescribeServices: one deployment, COMPLETED
	polls    int
	old      int // old answers after allNew
	non200   int // answers other than 200
	errs     int // transport errors
	other    int // 200s with neither body
}

// rollout runs the service, waits until it serves, updates it and times
// the switch.
func (s *stack) rollout(ctx context.Context, interval time.Duration) (rolloutResult, error) {
	var r rolloutResult
	tgArn, err := s.targetGroup(ctx, "bench-rollout", rolloutPort)
	if err != nil {
		return r, err
	}
	td1, err := s.taskDef(ctx, taskCPU, taskMemory, oldBody)
	if err != nil {
		return r, err
	}
	if _, err := s.dev.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(serviceName),
		TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(rolloutTasks), LaunchType: types.LaunchTypeFargate,
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200)},
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tgArn), ContainerName: aws.String("web"),
			ContainerPort: aws.Int32(backendPort)}},
		NetworkConfiguration: s.network()}); err != nil {
		return r, fmt.Errorf("CreateService: %w", err)
	}
	if _, err := s.waitSteady(ctx, td1, 3*time.Minute); err != nil {
		return r, fmt.Errorf("service before the update: %w", err)
	}
	if err := s.waitHealthy(ctx, tgArn, rolloutTasks, 2*time.Minute); err != nil {
		return r, err
	}
	url := fmt.Sprintf("http://%s:%d/", s.lbAddr, rolloutPort)
	if err := waitServes(ctx, url); err != nil {
		return r, err
	}
	td2, err := s.taskDef(ctx, taskCPU, taskMemory, newBody)
	if err != nil {
		return r, err
	}

	pctx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	var polls []poll
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(1)
	go func() { defer wg.Done(); polls = pollALB(pctx, url, interval, t0) }()
	if _, err := s.dev.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(serviceName),
		TaskDefinition:          aws.String(td2),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200)},
	}); err != nil {
		stopPolls()
		wg.Wait()
		return r, fmt.Errorf("UpdateService: %w", err)
	}
	steadyAt, err := s.waitSteady(ctx, td2, 5*time.Minute)
	if err == nil {
		// Keep polling a little past steady: a late old answer would show.
		err = sleep(ctx, 2*time.Second)
	}
	stopPolls()
	wg.Wait()
	if err != nil {
		return r, fmt.Errorf("service after the update: %w", err)
	}
	r = analyzeRollout(polls)
	r.steady = steadyAt.Sub(t0)
	if r.allNew < 0 {
		return r, fmt.Errorf("no %d consecutive %q answers in %d polls through the ALB", window, newBody, len(polls))
	}
	return r, nil
}

// waitSteady polls DescribeServices until the service has one deployment,
// of td, COMPLETED, with all its tasks running; it returns when it saw that.
func (s *stack) waitSteady(ctx context.Context, td string, timeout time.Duration) (time.Time, error) {
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		out, err := s.dev.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{serviceName}})
		now := time.Now()
		if err != nil {
			return now, fmt.Errorf("DescribeServices: %w", err)
		}
		if len(out.Services) == 1 {
			svc := out.Services[0]
			var ds []string
			for _, d := range svc.Deployments {
				ds = append(ds, fmt.Sprintf("%s %s %s running %d", aws.ToString(d.Status), aws.ToString(d.TaskDefinition), d.RolloutState, d.RunningCount))
			}
			last = strings.Join(ds, "; ")
			if len(svc.Deployments) == 1 {
				d := svc.Deployments[0]
				if aws.ToString(d.TaskDefinition) == td && d.RolloutState == types.DeploymentRolloutStateCompleted && d.RunningCount == rolloutTasks {
					return now, nil
				}
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return time.Now(), err
		}
	}
	return time.Now(), fmt.Errorf("service not steady on %s after %s: %s", td, timeout, last)
}

// pollALB sends GET url every interval (keep-alive) until ctx ends.
func pollALB(ctx context.Context, url string, interval time.Duration, t0 time.Time) []poll {
	c := &http.Client{Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	var out []poll
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p := poll{at: time.Since(t0)}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if ctx.Err() != nil {
			return out
		}
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				p.status, p.body = resp.StatusCode, strings.TrimSpace(string(b))
			}
		}
		out = append(out, p)
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

// analyzeRollout finds the switch in a rollout's polls. allNew is -1 when
// no window of new answers came.
func analyzeRollout(ps []poll) rolloutResult {
	r := rolloutResult{polls: len(ps), firstNew: -1, allNew: -1}
	run := 0
	for i, p := range ps {
		switch {
		case p.status == 0:
			r.errs++
		case p.status != http.StatusOK:
			r.non200++
		case p.body != newBody && p.body != oldBody:
			r.other++
		}
		isNew := p.status == http.StatusOK && p.body == newBody
		if isNew && r.firstNew < 0 {
			r.firstNew = p.at
		}
		if r.allNew >= 0 {
			if !isNew {
				r.old++
			}
			continue
		}
		if isNew {
			run++
		} else {
			run = 0
		}
		if run == window {
			r.allNew = ps[i-window+1].at
		}
	}
	return r
}
