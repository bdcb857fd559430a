package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthdev/berth/internal/accounts"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/iam"
)

// taskRoles is ECS's view of task roles (ecs.TaskRoles): IAM decides
// whether a role may be assumed, accounts mints, rotates and revokes the
// credentials.
type taskRoles struct {
	iam   *iam.Service
	accts *accounts.Accounts
}

func (t taskRoles) AssumeRole(ctx context.Context, account, roleRef, clusterArn string) (string, error) {
	arn, err := t.iam.AssumableByTasks(ctx, account, roleRef, clusterArn)
	if errors.Is(err, iam.ErrNotAssumable) {
		return "", fmt.Errorf("%w: %v", ecs.ErrRoleNotAssumable, err)
	}
	return arn, err
}

func (t taskRoles) Credentials(ctx context.Context, account, roleArn, taskArn, taskID string) (agentapi.TaskCredentials, error) {
	s, err := t.accts.TaskSession(ctx, accounts.TaskSessionRequest{AccountID: account, RoleArn: roleArn, TaskArn: taskArn, TaskID: taskID})
	if err != nil {
		return agentapi.TaskCredentials{}, err
	}
	return agentapi.TaskCredentials{RoleArn: s.RoleArn, AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey,
		Token: s.SessionToken, Expiration: s.Expiration}, nil
}

func (t taskRoles) Revoke(ctx context.Context, taskID string) error {
	return t.accts.RevokeTask(ctx, taskID)
}
