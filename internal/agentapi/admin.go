package agentapi

import (
	"context"
	"net/http"
)

// PathSpotInterrupt is the operator's call that reclaims FARGATE_SPOT
// capacity on a host (`berth admin spot-interrupt HOST`); it takes the
// platform's join token, as agents of berth's own capacity do.
const PathSpotInterrupt = PathPrefix + "spot-interrupt"

// SpotInterruptRequest names the host whose Spot tasks are reclaimed.
type SpotInterruptRequest struct {
	NodeID string `json:"nodeId"`
}

// SpotInterruptResponse lists the tasks interrupted.
type SpotInterruptResponse struct {
	TaskArns []string `json:"taskArns"`
}

// SpotInterrupt reclaims the Spot capacity of a host.
func (c *Client) SpotInterrupt(ctx context.Context, node string) (SpotInterruptResponse, error) {
	var out SpotInterruptResponse
	err := c.do(ctx, http.MethodPost, PathSpotInterrupt, SpotInterruptRequest{NodeID: node}, &out)
	return out, err
}

// PathAccounts creates an account (POST, the join token): the operator's
// `berth admin create-account`.
const PathAccounts = "/_berth/admin/v1/accounts"

// Account is a new account and its first access key.
type Account struct {
	AccountID       string `json:"accountId"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// CreateAccount makes a new account.
func (c *Client) CreateAccount(ctx context.Context) (Account, error) {
	var out Account
	err := c.do(ctx, http.MethodPost, PathAccounts, nil, &out)
	return out, err
}
