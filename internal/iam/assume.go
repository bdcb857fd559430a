package iam

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// ECSTasksPrincipal is the service principal task roles must trust.
const ECSTasksPrincipal = "ecs-tasks.amazonaws.com"

// AssumableByTasks resolves roleRef (a role ARN, or a role name in
// account) to the role's ARN if ecs-tasks.amazonaws.com may assume it for
// a task of account: the role exists in that account and its trust policy
// allows it (sourceArn is the aws:SourceArn condition value, the task's
// cluster). Otherwise the error wraps ErrNotAssumable; any other error is an
// internal failure.
func (s *Service) AssumableByTasks(ctx context.Context, account, roleRef, sourceArn string) (string, error) {
	name, ok := roleNameOf(account, roleRef)
	if !ok {
		return "", fmt.Errorf("role %s of account %s: %w", roleRef, account, ErrNotAssumable)
	}
	rec, _, err := s.getRoleRecord(ctx, account, name)
	if isNoSuchEntity(err) {
		return "", fmt.Errorf("role %s: no such role: %w", roleRef, ErrNotAssumable)
	}
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(roleRef, "arn:") && rec.Arn != roleRef {
		return "", fmt.Errorf("role %s: no such role (the account's %s has another path): %w", roleRef, rec.Arn, ErrNotAssumable)
	}
	pol, err := parseTrustPolicy(rec.AssumeRolePolicy)
	if err != nil {
		return "", fmt.Errorf("role %s: trust policy: %v: %w", rec.Arn, err, ErrNotAssumable)
	}
	if !pol.allows(assumeRequest{Service: ECSTasksPrincipal, SourceAccount: account, SourceArn: sourceArn}) {
		return "", fmt.Errorf("role %s: its trust policy does not let %s assume it: %w", rec.Arn, ECSTasksPrincipal, ErrNotAssumable)
	}
	return rec.Arn, nil
}

// roleNameOf returns the role name roleRef names in account: the last
// segment of arn:aws:iam::ACCOUNT:role/[PATH/]NAME, or roleRef itself when
// it is a plain name. ok is false for another account's ARN or a malformed
// reference.
func roleNameOf(account, roleRef string) (string, bool) {
	if !strings.HasPrefix(roleRef, "arn:") {
		return roleRef, roleNameRE.MatchString(roleRef) && len(roleRef) <= 64
	}
	rest, ok := strings.CutPrefix(roleRef, "arn:aws:iam::")
	if !ok {
		return "", false
	}
	acct, res, ok := strings.Cut(rest, ":")
	if !ok || acct != account || !strings.HasPrefix(res, "role/") {
		return "", false
	}
	name := res[strings.LastIndexByte(res, '/')+1:]
	return name, name != "" && roleNameRE.MatchString(name) && len(name) <= 64
}

type callerIdentityResult struct {
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
	Arn     string `xml:"Arn"`
}

// getCallerIdentity is STS GetCallerIdentity: a root key is
// arn:aws:iam::ACCOUNT:root; a task role's credentials are
// arn:aws:sts::ACCOUNT:assumed-role/ROLE/TASK-ID with user id
// ROLE-ID:TASK-ID, as AWS shows an assumed role's session.
func (s *Service) getCallerIdentity(ctx context.Context, _ url.Values) (any, error) {
	id, ok := protocol.IdentityFrom(ctx)
	if !ok || id.AccountID == "" {
		return nil, errAccessDenied()
	}
	out := callerIdentityResult{UserID: id.AccountID, Account: id.AccountID, Arn: "arn:aws:iam::" + id.AccountID + ":root"}
	if s.cfg.Sessions == nil {
		return out, nil
	}
	roleArn, session, err := s.cfg.Sessions.SessionRole(ctx, id.AccessKeyID)
	if err != nil {
		return nil, fmt.Errorf("caller identity: %w", err)
	}
	if roleArn == "" {
		return out, nil
	}
	name := roleArn[strings.LastIndexByte(roleArn, '/')+1:]
	out.Arn = "arn:aws:sts::" + id.AccountID + ":assumed-role/" + name + "/" + session
	out.UserID = session
	if rec, _, err := s.getRoleRecord(ctx, id.AccountID, name); err == nil {
		out.UserID = rec.RoleID + ":" + session
	} else if !isNoSuchEntity(err) {
		return nil, err
	}
	return out, nil
}

// isNoSuchEntity reports whether err is IAM's NoSuchEntity.
func isNoSuchEntity(err error) bool {
	var e *protocol.Error
	return errors.As(err, &e) && e.Code == codeNoSuchEntity
}
