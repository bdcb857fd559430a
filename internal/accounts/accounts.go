// Package accounts owns who may call berth: accounts and their access keys
// (the protocol router's Authenticator), the dev account `berth dev` creates,
// and the join token agents present.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// DevAccountID is the account every berth server starts with.
const DevAccountID = "000000000000"

// Key is an access key as stored.
type Key struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	AccountID       string `json:"accountId"`
}

// Accounts authenticates access keys against the store.
type Accounts struct {
	st *store.Store
	// AllowTestKey accepts the conventional test/test pair for the dev
	// account. Only `berth dev` on a loopback listener sets it.
	AllowTestKey bool
	// SessionDuration is how long temporary credentials last (default
	// DefaultSessionDuration); Now is the clock (tests replace both).
	SessionDuration time.Duration
	Now             func() time.Time

	// tokenMu guards the agents' join token as last read (every agent
	// request checks it: hundreds a second with many hosts).
	tokenMu   sync.Mutex
	token     string
	tokenRead time.Time
}

// New returns the accounts kept in st.
func New(st *store.Store) *Accounts { return &Accounts{st: st} }

// Lookup implements protocol.Authenticator.
func (a *Accounts) Lookup(ctx context.Context, accessKeyID string) (string, string, error) {
	if a.AllowTestKey && accessKeyID == "test" {
		return "test", DevAccountID, nil
	}
	var k Key
	if _, err := a.st.Get(ctx, store.Key("accounts", "keys", accessKeyID), &k); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", "", protocol.ErrUnknownKey
		}
		return "", "", err
	}
	return k.SecretAccessKey, k.AccountID, nil
}

// EnsureRootKey returns the first access key of account 000000000000,
// creating it the first time.
func (a *Accounts) EnsureRootKey(ctx context.Context) (Key, error) {
	pointer := store.Key("accounts", "dev-key")
	var k Key
	if _, err := a.st.Get(ctx, pointer, &k); err == nil {
		return k, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return k, err
	}
	k = Key{AccessKeyID: "AKIA" + randomString(16, upperAlnum), SecretAccessKey: randomString(40, secretChars), AccountID: DevAccountID}
	if err := a.st.Create(ctx, pointer, k); err != nil {
		if errors.Is(err, store.ErrExists) {
			_, err = a.st.Get(ctx, pointer, &k)
			return k, err
		}
		return k, err
	}
	if err := a.st.Put(ctx, store.Key("accounts", "keys", k.AccessKeyID), k); err != nil {
		return k, fmt.Errorf("store dev key: %w", err)
	}
	return k, nil
}

type agentToken struct {
	Token string `json:"token"`
}

// EnsureAgentToken returns the join token agents present, creating it the first time.
func (a *Accounts) EnsureAgentToken(ctx context.Context) (string, error) {
	key := store.Key("agent-token")
	var t agentToken
	if _, err := a.st.Get(ctx, key, &t); err == nil {
		return t.Token, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	t.Token = "berth-agent-" + randomString(40, secretChars[:62])
	if err := a.st.Create(ctx, key, t); err != nil && !errors.Is(err, store.ErrExists) {
		return "", err
	}
	_, err := a.st.Get(ctx, key, &t)
	return t.Token, err
}

// AgentTokenValid reports whether token is the agents' join token.
// The token is read from the store at most every agentTokenTTL: it is made
// once and never rewritten by berth, so this only bounds how long a token
// removed by hand keeps working.
func (a *Accounts) AgentTokenValid(ctx context.Context, token string) bool {
	a.tokenMu.Lock()
	known, fresh := a.token, time.Since(a.tokenRead) < agentTokenTTL
	a.tokenMu.Unlock()
	if !fresh {
		var t agentToken
		if _, err := a.st.Get(ctx, store.Key("agent-token"), &t); err != nil && !errors.Is(err, store.ErrNotFound) {
			return false
		}
		known = t.Token
		if known != "" {
			a.tokenMu.Lock()
			a.token, a.tokenRead = known, time.Now()
			a.tokenMu.Unlock()
		}
	}
	return known != "" && subtle.ConstantTimeCompare([]byte(known), []byte(token)) == 1
}

// agentTokenTTL is how long AgentTokenValid trusts the token it read.
const agentTokenTTL = 10 * time.Second

const (
	upperAlnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// CreateAccount makes a new account with a random 12-digit id (never the
// dev account's) and its first access key. Accounts exist only through
// their keys: every service scopes what it stores by the account id.
func (a *Accounts) CreateAccount(ctx context.Context) (Key, error) {
	for range 10 {
		id := randomString(12, "0123456789")
		if id == DevAccountID || id[0] == '0' {
			continue
		}
		if err := a.st.Create(ctx, store.Key("accounts", "ids", id), struct{}{}); errors.Is(err, store.ErrExists) {
			continue
		} else if err != nil {
			return Key{}, err
		}
		k := Key{AccessKeyID: "AKIA" + randomString(16, upperAlnum), SecretAccessKey: randomString(40, secretChars), AccountID: id}
		if err := a.st.Create(ctx, store.Key("accounts", "keys", k.AccessKeyID), k); err != nil {
			return Key{}, fmt.Errorf("store key of account %s: %w", id, err)
		}
		return k, nil
	}
	return Key{}, errors.New("no free account id after 10 tries")
}
