package protocol

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/throttle"
)

// denyAfter allows the first n calls of each operation and refuses the rest,
// recording what it was asked.
type denyAfter struct {
	n    int
	mu   sync.Mutex
	seen map[string]int // "account/region/service:operation" → calls
}

func (d *denyAfter) AllowCall(account, region, service, operation string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = make(map[string]int)
	}
	k := account + "/" + region + "/" + service + ":" + operation
	d.seen[k]++
	return d.seen[k] <= d.n
}

func (d *denyAfter) calls(k string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[k]
}

// sdkError returns err's AWS error code and HTTP status.
func sdkError(err error) (string, int) {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	code, status := "", 0
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// TestThrottleShapes: a throttled call gets each protocol's own throttling
// error, as the SDK reads it, without the operation running; the error is
// counted under its code.
func TestThrottleShapes(t *testing.T) {
	lim := &denyAfter{n: 1}
	env := newQueryEnv(t, WithCallLimiter(lim))
	ctx := context.Background()
	creds := sdkCreds(testKey, testSecret, "")
	noRetry := func(o *retry.StandardOptions) { o.MaxAttempts = 1 }
	ecsC := ecs.New(ecs.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.srv.URL), Credentials: creds,
		Retryer: retry.NewStandard(noRetry)})
	ec2C := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.srv.URL), Credentials: creds,
		Retryer: retry.NewStandard(noRetry)})
	elbC := elb.New(elb.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.srv.URL), Credentials: creds,
		Retryer: retry.NewStandard(noRetry)})

	tests := []struct {
		name, key, service, operation string
		call                          func() error
		handlerCalls                  func() int64
		wantCode, wantMsg             string
		wantStatus                    int
	}{
		{name: "awsJson", key: testAccount + "/us-east-1/ecs:ListClusters", service: "ecs", operation: "ListClusters",
			call:     func() error { _, err := ecsC.ListClusters(ctx, &ecs.ListClustersInput{}); return err },
			wantCode: "ThrottlingException", wantMsg: "Rate exceeded", wantStatus: http.StatusBadRequest},
		{name: "EC2", key: testAccount + "/us-east-1/ec2:DescribeVpcs", service: "ec2", operation: "DescribeVpcs",
			call:         func() error { _, err := ec2C.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); return err },
			handlerCalls: env.ec2Calls.Load,
			wantCode:     "RequestLimitExceeded", wantMsg: "Request limit exceeded.", wantStatus: http.StatusServiceUnavailable},
		{name: "ELBv2", key: testAccount + "/us-east-1/elasticloadbalancing:DescribeLoadBalancers",
			service: "elasticloadbalancing", operation: "DescribeLoadBalancers",
			call:         func() error { _, err := elbC.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{}); return err },
			handlerCalls: env.elbCalls.Load,
			wantCode:     "Throttling", wantMsg: "Rate exceeded", wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("first call (within the limit): %v", err)
			}
			var before int64
			if tt.handlerCalls != nil {
				before = tt.handlerCalls()
			}
			err := tt.call()
			code, status := sdkError(err)
			if code != tt.wantCode || status != tt.wantStatus {
				t.Fatalf("second call: code %q status %d (%v), want %q %d", code, status, err, tt.wantCode, tt.wantStatus)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorMessage() != tt.wantMsg {
				t.Fatalf("message of %v, want %q", err, tt.wantMsg)
			}
			if tt.handlerCalls != nil && tt.handlerCalls() != before {
				t.Fatal("the handler ran for a throttled call")
			}
			if got := lim.calls(tt.key); got != 2 {
				t.Fatalf("limiter asked %d times about %s, want 2", got, tt.key)
			}
			n := counterValue(t, env.reg, tt.service, tt.operation, tt.wantCode)
			if n != 1 {
				t.Fatalf("berth_api_requests_total{%s,%s,%s} = %v, want 1", tt.service, tt.operation, tt.wantCode, n)
			}
		})
	}
}

// TestThrottleAfterAuthentication: an unauthenticated call or an unknown
// operation never takes a token (it cannot drain an account's bucket).
func TestThrottleAfterAuthentication(t *testing.T) {
	lim := &denyAfter{n: 0}
	srv, _, _, _ := newTestServer(t, WithCallLimiter(lim))
	ctx := context.Background()
	bad := ecs.New(ecs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: sdkCreds(testKey, "wrong-secret", ""), RetryMaxAttempts: 1})
	_, err := bad.ListClusters(ctx, &ecs.ListClustersInput{})
	if code, _ := sdkError(err); code != CodeInvalidSignature {
		t.Fatalf("bad signature: %v", err)
	}
	good := ecs.New(ecs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: sdkCreds(testKey, testSecret, ""), RetryMaxAttempts: 1})
	_, err = good.CreateCluster(ctx, &ecs.CreateClusterInput{}) // not an operation of the fake
	if code, _ := sdkError(err); code != CodeUnknownOperation {
		t.Fatalf("unknown operation: %v", err)
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.seen) != 0 {
		t.Fatalf("limiter asked about %v", lim.seen)
	}
}

// TestSDKRetriesAbsorbThrottling: with ListClusters at 5 a second and a
// burst of 1, ten calls in a row are throttled on the wire, and an SDK
// client's standard retryer (its backoff shortened so the test is quick)
// still gets every one through. Only counts are asserted, never times.
func TestSDKRetriesAbsorbThrottling(t *testing.T) {
	cfg, err := throttle.Config{}.Apply("ecs:ListClusters=5/1")
	if err != nil {
		t.Fatal(err)
	}
	srv, _, reg, _ := newTestServer(t, WithCallLimiter(throttle.NewPolicy(cfg, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := ecs.New(ecs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: sdkCreds(testKey, testSecret, ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			// Enough attempts that a loaded machine cannot exhaust them:
			// a token comes every 200 ms, a retry waits up to 100 ms.
			o.MaxAttempts = 50
			o.MaxBackoff = 100 * time.Millisecond
			// The client's own retry quota would end a long run of
			// throttled retries; the test is about the server.
			o.RateLimiter = ratelimit.None
		})})
	attempts := 0
	for i := range 10 {
		out, err := client.ListClusters(ctx, &ecs.ListClustersInput{})
		if err != nil {
			t.Fatalf("call %d failed despite retries: %v", i, err)
		}
		results, ok := retry.GetAttemptResults(out.ResultMetadata)
		if !ok {
			t.Fatal("no attempt results in the metadata")
		}
		attempts += len(results.Results)
	}
	throttled := counterValue(t, reg, "ecs", "ListClusters", CodeThrottling)
	ok := counterValue(t, reg, "ecs", "ListClusters", labelOK)
	if ok != 10 {
		t.Fatalf("%v calls succeeded on the server, want 10", ok)
	}
	if throttled == 0 || attempts <= 10 {
		t.Fatalf("no retry happened: %d attempts, %v throttled", attempts, throttled)
	}
	if float64(attempts) != ok+throttled {
		t.Fatalf("client made %d attempts, server saw %v OK and %v throttled", attempts, ok, throttled)
	}
	t.Logf("10 calls took %d attempts (%v throttled)", attempts, throttled)

	// The SDK's defaults (3 attempts, backoff up to 20 s) retry it too: a
	// ThrottlingException is a retryable throttle error to them.
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(&smithy.GenericAPIError{Code: CodeThrottling}).Bool() {
		t.Fatal("the SDK does not take ThrottlingException as a throttle")
	}
}
