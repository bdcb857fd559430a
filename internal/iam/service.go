// Package iam owns berth's minimal IAM: roles with their trust policies
// (CreateRole, GetRole, DeleteRole, ListRoles over the query protocol,
// version 2010-05-08), the check ECS makes before a task may use a role
// (AssumableByTasks: the role exists in the task's account and its trust
// policy lets ecs-tasks.amazonaws.com assume it), and STS's
// GetCallerIdentity (version 2011-06-15), which tells a caller signing with
// a task role's credentials that it is that role.
//
// IAM is global: a role belongs to its account, not to a region, and is
// stored under iam/<account>/roles/<lower-case name> (names are unique
// regardless of case, as in IAM). The temporary credentials themselves are
// internal/accounts' (they are access keys); this package only decides
// whether a role may be assumed.
package iam

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"time"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// IAM and STS API identities on the query protocol.
const (
	APIVersion   = "2010-05-08"
	SigningName  = "iam"
	XMLNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"

	STSVersion      = "2011-06-15"
	STSSigningName  = "sts"
	STSXMLNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// Sessions tells temporary credentials apart from root keys;
// *accounts.Accounts implements it.
type Sessions interface {
	// SessionRole returns the role and session name of the temporary
	// credentials accessKeyID, "" for a key that is not one.
	SessionRole(ctx context.Context, accessKeyID string) (roleArn, sessionName string, err error)
}

// Config configures the IAM service.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Sessions resolves task-role credentials for GetCallerIdentity (nil:
	// every caller is its account's root).
	Sessions Sessions
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// Service implements IAM roles and STS GetCallerIdentity.
type Service struct {
	cfg Config
	st  *store.Store
	log *slog.Logger
}

// New creates the IAM service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("new iam service: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger}, nil
}

// QueryService returns the IAM actions for the protocol router.
func (s *Service) QueryService() protocol.QueryService {
	return protocol.QueryService{
		Version:           APIVersion,
		SigningName:       SigningName,
		XMLNamespace:      XMLNamespace,
		Style:             protocol.StyleStandard,
		InternalErrorCode: "ServiceFailure",
		Ops: map[string]protocol.QueryHandler{
			"CreateRole": s.op(s.createRole),
			"GetRole":    s.op(s.getRole),
			"DeleteRole": s.op(s.deleteRole),
			"ListRoles":  s.op(s.listRoles),
		},
	}
}

// STSQueryService returns STS's GetCallerIdentity for the protocol router.
func (s *Service) STSQueryService() protocol.QueryService {
	return protocol.QueryService{
		Version:      STSVersion,
		SigningName:  STSSigningName,
		XMLNamespace: STSXMLNamespace,
		Style:        protocol.StyleStandard,
		Ops: map[string]protocol.QueryHandler{
			"GetCallerIdentity": s.getCallerIdentity,
		},
	}
}

// opFunc is an IAM action of the caller's account.
type opFunc func(ctx context.Context, account string, p url.Values) (any, error)

func (s *Service) op(fn opFunc) protocol.QueryHandler {
	return func(ctx context.Context, p url.Values) (any, error) {
		id, ok := protocol.IdentityFrom(ctx)
		if !ok || id.AccountID == "" {
			return nil, errAccessDenied()
		}
		return fn(ctx, id.AccountID, p)
	}
}

const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newUniqueID returns an IAM unique id: prefix ("AROA" for a role) and
// random characters, 21 in all.
func newUniqueID(prefix string) string {
	b := make([]byte, 21-len(prefix))
	max := big.NewInt(int64(len(upperAlnum)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = upperAlnum[v.Int64()]
	}
	return prefix + string(b)
}
