package bench

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/devenv"
)

// Server is a running `berth server` (the control plane alone, on its
// embedded etcd) with aws-sdk-go-v2 clients of its account 000000000000.
type Server struct {
	*devenv.Env
	// AgentToken is the join token of berth's own hosts.
	AgentToken string
	ECS        *ecs.Client
	EC2        *ec2.Client
}

// serverPrinted is what `berth server` prints once it serves: the account's
// root key and the agent join token.
var serverPrinted = regexp.MustCompile(`access key id (\S+) secret access key (\S+)\s+agent join token (\S+)`)

// StartServer starts `berth server` on a free loopback port in a fresh data
// dir with more flags args (e.g. "--throttle", "off") and waits until it
// serves. The harness stops it when the benchmark ends.
func (h *Harness) StartServer(ctx context.Context, args ...string) (*Server, error) {
	env, err := h.startEnv("server", args)
	if err != nil {
		return nil, err
	}
	var m []string
	if err := env.WaitFor(ctx, func() bool {
		m = serverPrinted.FindStringSubmatch(env.Log())
		return env.Healthy() && m != nil
	}, 20*time.Millisecond, time.Minute); err != nil {
		return nil, fmt.Errorf("berth server: %w", err)
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(env.URL),
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], "")}
	h.Log.Info("berth server ready", "endpoint", env.URL, "data_dir", env.DataDir)
	return &Server{Env: env, AgentToken: m[3], ECS: ecs.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg)}, nil
}
