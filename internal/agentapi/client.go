package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Paths of the agent protocol on the control plane's endpoint.
const (
	PathPrefix    = "/_berth/agent/v1/"
	PathRegister  = PathPrefix + "register"
	PathHeartbeat = PathPrefix + "heartbeat"
	PathTasks     = PathPrefix + "tasks"
	PathReport    = PathPrefix + "report"
	PathRegistry  = PathPrefix + "registry-auth"
)

// ErrorBody is the reply of a failed agent call.
type ErrorBody struct {
	Error string `json:"error"`
}

// Client is an agent's connection to the control plane.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:4566
	Token   string // join token, sent as a bearer token
	HTTP    *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, in, out, nil)
}

// Signer authenticates a request in place (Join: SigV4 with the user's
// credentials); body is the request's body.
type Signer func(req *http.Request, body []byte) error

// send is do with the request authenticated by sign instead of the token.
func (c *Client) send(ctx context.Context, method, path string, in, out any, sign Signer) error {
	var b []byte
	if in != nil {
		var err error
		if b, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		if err := sign(req, b); err != nil {
			return fmt.Errorf("sign %s: %w", path, err)
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		_ = json.Unmarshal(b, &e)
		return &StatusError{Method: method, Path: path, Status: resp.Status, Code: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode reply: %w", method, path, err)
		}
	}
	return nil
}

// Join registers this host as a container instance of a user's cluster,
// with the request signed by sign (the user's credentials); the answer's
// token then authenticates the host's other calls.
func (c *Client) Join(ctx context.Context, r JoinRequest, sign Signer) (JoinResponse, error) {
	var out JoinResponse
	err := c.send(ctx, http.MethodPost, PathJoin, r, &out, sign)
	return out, err
}

// Register announces the node.
func (c *Client) Register(ctx context.Context, r RegisterRequest) (RegisterResponse, error) {
	var out RegisterResponse
	err := c.do(ctx, http.MethodPost, PathRegister, r, &out)
	return out, err
}

// Heartbeat keeps the node's registration alive.
func (c *Client) Heartbeat(ctx context.Context, r RegisterRequest) error {
	return c.do(ctx, http.MethodPost, PathHeartbeat, r, nil)
}

// Tasks returns the tasks placed on node. With since > 0 it waits up to wait
// for a change after that revision before answering.
func (c *Client) Tasks(ctx context.Context, node string, since int64, wait time.Duration) (TasksResponse, error) {
	q := url.Values{"node": {node}, "since": {strconv.FormatInt(since, 10)}, "wait": {wait.String()}}
	var out TasksResponse
	err := c.do(ctx, http.MethodGet, PathTasks+"?"+q.Encode(), nil, &out)
	return out, err
}

// Report sends one state transition of a task.
func (c *Client) Report(ctx context.Context, r StateReport) error {
	return c.do(ctx, http.MethodPost, PathReport, r, nil)
}

// RegistryAuth gets credentials of a task's account for the control plane's
// registry.
func (c *Client) RegistryAuth(ctx context.Context, r RegistryAuthRequest) (RegistryAuth, error) {
	var out RegistryAuth
	err := c.do(ctx, http.MethodPost, PathRegistry, r, &out)
	return out, err
}

// TargetHealth reports the health of the targets of one load balancer the
// node runs.
func (c *Client) TargetHealth(ctx context.Context, r TargetHealthReport) error {
	return c.do(ctx, http.MethodPost, PathTargetHealth, r, nil)
}

// StatusError is the control plane's refusal of an agent call.
type StatusError struct {
	Method, Path, Status, Message string
	Code                          int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.Path, e.Status, e.Message)
}
