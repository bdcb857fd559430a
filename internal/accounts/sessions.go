package accounts

// Temporary credentials: the access key id, secret and session token a task
// role hands out (ECS's task IAM role credentials). They are access keys of
// the task's account that carry a session token, expire, and die with the
// task.
//
// Storage (see internal/store/keys.go):
//
//	accounts/sessions/<access-key-id>          the Session, under a lease that ends an hour after it expires
//	accounts/task-sessions/<task-id>/<key-id>  index: the sessions minted for a task (same lease)
//
// The secret itself is stored, not a hash of it: SigV4 is an HMAC keyed by
// the secret, so whoever verifies a signature must hold the secret (root
// keys are stored the same way). The session token is stored too, so that an
// agent asking again (a restart, a second container) gets the same set
// rather than a new one per ask; it is compared in constant time. etcd is
// the trust boundary for both, as it already is for root keys.
//
// Lifecycle: TaskSession returns the task's newest set while it has more than
// SessionRefreshWindow left, else mints a new one (the old stays valid until
// its own expiry: rotation, as ECS does it). RevokeTask deletes every set of
// a task at once (the task stopped). An expired set is answered
// ExpiredToken until its lease removes it an hour later; after that it is
// simply unknown.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

const (
	// DefaultSessionDuration is how long a task's credentials last (ECS: 6 h).
	DefaultSessionDuration = 6 * time.Hour
	// SessionRefreshWindow: a set with less than this left is replaced by a
	// new one when the agent asks again.
	SessionRefreshWindow = 15 * time.Minute
	// sessionGrace is how long an expired set is kept, to be told apart
	// (ExpiredToken) from one never issued.
	sessionGrace = time.Hour
	// SessionKeyPrefix begins the access key id of temporary credentials.
	SessionKeyPrefix = "ASIA"
)

// Session is one set of temporary credentials as stored.
type Session struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	SessionToken    string    `json:"sessionToken"`
	AccountID       string    `json:"accountId"`
	RoleArn         string    `json:"roleArn"`
	TaskArn         string    `json:"taskArn"`
	TaskID          string    `json:"taskId"`
	IssuedAt        time.Time `json:"issuedAt"`
	Expiration      time.Time `json:"expiration"`
}

// TaskSessionRequest names the task and role a set of credentials is for.
type TaskSessionRequest struct {
	AccountID string
	RoleArn   string
	TaskArn   string
	TaskID    string // unique across accounts (ECS task ids are random)
}

func sessionKey(akid string) string { return store.Key("accounts", "sessions", akid) }

func taskSessionPrefix(taskID string) string {
	return store.Prefix("accounts", "task-sessions", taskID)
}

func (a *Accounts) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Accounts) sessionDuration() time.Duration {
	if a.SessionDuration > 0 {
		return a.SessionDuration
	}
	return DefaultSessionDuration
}

// LookupSession implements protocol.SessionAuthenticator: the secret and
// account of temporary credentials whose session token matches.
func (a *Accounts) LookupSession(ctx context.Context, accessKeyID, token string) (string, string, error) {
	if !strings.HasPrefix(accessKeyID, SessionKeyPrefix) {
		return "", "", protocol.ErrUnknownKey
	}
	var s Session
	if _, err := a.st.Get(ctx, sessionKey(accessKeyID), &s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", "", protocol.ErrUnknownKey
		}
		return "", "", err
	}
	if subtle.ConstantTimeCompare([]byte(s.SessionToken), []byte(token)) != 1 {
		return "", "", protocol.ErrUnknownKey
	}
	if !a.now().Before(s.Expiration) {
		return "", "", protocol.ErrExpiredToken
	}
	return s.SecretAccessKey, s.AccountID, nil
}

// SessionRole returns the role and session name (the task id) of the
// temporary credentials accessKeyID; "" for a key that is not one.
func (a *Accounts) SessionRole(ctx context.Context, accessKeyID string) (roleArn, sessionName string, err error) {
	if !strings.HasPrefix(accessKeyID, SessionKeyPrefix) {
		return "", "", nil
	}
	var s Session
	if _, err := a.st.Get(ctx, sessionKey(accessKeyID), &s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", "", nil
		}
		return "", "", err
	}
	return s.RoleArn, s.TaskID, nil
}

// TaskSession returns the current credentials of a task for its role: the
// newest set while it has more than SessionRefreshWindow left, else a new
// one.
func (a *Accounts) TaskSession(ctx context.Context, req TaskSessionRequest) (Session, error) {
	if req.TaskID == "" || req.AccountID == "" || req.RoleArn == "" {
		return Session{}, fmt.Errorf("task session: account, role and task id are required")
	}
	now := a.now()
	var best Session
	err := a.st.List(ctx, taskSessionPrefix(req.TaskID), func(key string, _ []byte) error {
		akid := key[strings.LastIndexByte(key, '/')+1:]
		var s Session
		if _, err := a.st.Get(ctx, sessionKey(akid), &s); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil // revoked meanwhile, or its lease ran out
			}
			return err
		}
		if s.RoleArn == req.RoleArn && s.AccountID == req.AccountID && s.Expiration.After(best.Expiration) {
			best = s
		}
		return nil
	})
	if err != nil {
		return Session{}, fmt.Errorf("task %s sessions: %w", req.TaskID, err)
	}
	if best.AccessKeyID != "" && best.Expiration.Sub(now) > SessionRefreshWindow {
		return best, nil
	}
	return a.mint(ctx, req, now)
}

func (a *Accounts) mint(ctx context.Context, req TaskSessionRequest, now time.Time) (Session, error) {
	s := Session{
		AccessKeyID: SessionKeyPrefix + randomString(16, upperAlnum), SecretAccessKey: randomString(40, secretChars),
		SessionToken: newSessionToken(), AccountID: req.AccountID, RoleArn: req.RoleArn, TaskArn: req.TaskArn,
		TaskID: req.TaskID, IssuedAt: now.UTC().Truncate(time.Second),
	}
	s.Expiration = s.IssuedAt.Add(a.sessionDuration())
	b, err := json.Marshal(s)
	if err != nil {
		return Session{}, fmt.Errorf("encode session: %w", err)
	}
	lease, err := a.st.C.Grant(ctx, int64((a.sessionDuration()+sessionGrace)/time.Second))
	if err != nil {
		return Session{}, fmt.Errorf("session lease: %w", err)
	}
	key := sessionKey(s.AccessKeyID)
	resp, err := a.st.C.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).Then(
		store.OpPutBytes(key, b, clientv3.WithLease(lease.ID)),
		clientv3.OpPut(taskSessionPrefix(req.TaskID)+s.AccessKeyID, "", clientv3.WithLease(lease.ID)),
	).Commit()
	if err != nil {
		return Session{}, fmt.Errorf("store session: %w", err)
	}
	if !resp.Succeeded {
		return Session{}, fmt.Errorf("store session: access key id %s taken", s.AccessKeyID)
	}
	return s, nil
}

// RevokeTask deletes every set of credentials minted for the task: from
// now on they are unknown (UnrecognizedClientException, as AWS answers a
// revoked session's token).
func (a *Accounts) RevokeTask(ctx context.Context, taskID string) error {
	if taskID == "" {
		return nil
	}
	prefix := taskSessionPrefix(taskID)
	resp, err := a.st.C.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return fmt.Errorf("revoke task %s: %w", taskID, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, 0, len(resp.Kvs)+1)
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		ops = append(ops, clientv3.OpDelete(sessionKey(k[strings.LastIndexByte(k, '/')+1:])))
	}
	ops = append(ops, clientv3.OpDelete(prefix, clientv3.WithPrefix()))
	if _, err := a.st.C.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("revoke task %s: %w", taskID, err)
	}
	return nil
}

// newSessionToken returns an opaque session token: 96 random bytes,
// base64, about the length of AWS's.
func newSessionToken() string {
	b := make([]byte, 96)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥1.24).
	return base64.StdEncoding.EncodeToString(b)
}
