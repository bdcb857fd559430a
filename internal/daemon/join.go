package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berthdev/berth/internal/agentapi"
)

// Joining a user's cluster: an agent started with a cluster (`berth agent
// --cluster NAME`) registers its host as a container instance of that
// cluster with the user's own credentials, and then acts with the node
// token the control plane returns; it keeps the instance's ARN in its data
// dir so that a restarted agent is the same instance.

// Credentials are an AWS access key (from the usual environment variables).
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// CredentialsFromEnv reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN.
func CredentialsFromEnv() (Credentials, error) {
	c := Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, fmt.Errorf("joining a cluster needs the cluster owner's credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return c, nil
}

// sigV4Signer signs agent-protocol requests as the ECS API's are signed.
func sigV4Signer(c Credentials, region string) agentapi.Signer {
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return func(req *http.Request, body []byte) error {
		sum := sha256.Sum256(body)
		if c.SessionToken != "" {
			req.Header.Set("X-Amz-Security-Token", c.SessionToken)
		}
		return signer.SignHTTP(req.Context(), creds, req, hex.EncodeToString(sum[:]), "ecs", region, time.Now())
	}
}

// joinCluster registers the host, retrying while the server cannot be
// reached; a refusal (wrong credentials, no such cluster) is returned.
func joinCluster(ctx context.Context, cfg AgentConfig, client *agentapi.Client, req agentapi.JoinRequest) (agentapi.JoinResponse, error) {
	arnFile := filepath.Join(cfg.DataDir, "container-instance-arn")
	if b, err := os.ReadFile(arnFile); err == nil {
		req.ContainerInstanceArn = strings.TrimSpace(string(b))
	}
	sign := sigV4Signer(cfg.Credentials, cfg.Region)
	delay := 200 * time.Millisecond
	for {
		resp, err := client.Join(ctx, req, sign)
		if err == nil {
			if err := os.WriteFile(arnFile, []byte(resp.ContainerInstanceArn+"\n"), 0o600); err != nil {
				return resp, fmt.Errorf("remember the container instance: %w", err)
			}
			return resp, nil
		}
		// 4xx answers are final; anything else (the server not up yet) is retried.
		var refused *agentapi.StatusError
		if errors.As(err, &refused) && refused.Code >= 400 && refused.Code < 500 {
			return resp, fmt.Errorf("join cluster %s: %w", req.Cluster, err)
		}
		cfg.Logger.Warn("joining the cluster; retrying", "err", err)
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
