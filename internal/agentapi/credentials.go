package agentapi

import (
	"context"
	"net/http"
	"time"
)

// Task IAM role credentials: the control plane mints temporary credentials
// for a task whose definition names a taskRoleArn (scoped to the task's
// account and role, expiring, rotated), and the agent serves them to that
// task's containers at 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
// (/v2/credentials/<TaskSpec.CredentialsID>), as the ECS agent does.

// PathTaskCredentials is where an agent fetches the current credentials of
// a task placed on it (POST, a TaskCredentialsRequest; 404 when the task
// has no role, is not on that node, or is stopped).
const PathTaskCredentials = PathPrefix + "task-credentials"

// TaskCredentialsRequest names the task whose credentials an agent wants.
type TaskCredentialsRequest struct {
	NodeID  string `json:"nodeId"`
	TaskArn string `json:"taskArn"`
}

// TaskCredentials are a task role's temporary credentials, in the JSON
// shape the AWS SDKs read from the container credentials endpoint.
type TaskCredentials struct {
	RoleArn         string    `json:"RoleArn"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	Token           string    `json:"Token"`
	Expiration      time.Time `json:"Expiration"`
}

// TaskCredentials fetches the current credentials of a task on the node.
func (c *Client) TaskCredentials(ctx context.Context, r TaskCredentialsRequest) (TaskCredentials, error) {
	var out TaskCredentials
	err := c.do(ctx, http.MethodPost, PathTaskCredentials, r, &out)
	return out, err
}
