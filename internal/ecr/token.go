//lint:file-ignore ST1005 these are the registry's messages to users, in ECR's wording.

package ecr

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// Registry passwords. GetAuthorizationToken hands out
//
//	password = "berth1." + b64(claims) + "." + b64(HMAC-SHA256(key, "berth1." + b64(claims)))
//
// with b64 unpadded base64url and claims the JSON {"a":account,"r":region,
// "e":expiry in Unix seconds}. The key is 32 random bytes made once and
// kept in etcd (tokenSecretKey), so every server replica verifies every
// replica's tokens and they survive restarts. A token names one account in
// one region, as ECR's do; it cannot be revoked before it expires.
const tokenPrefix = "berth1."

// tokenSecretKey is where the signing key lives.
var tokenSecretKey = store.Key("ecr", "token-secret")

type tokenClaims struct {
	Account string `json:"a"`
	Region  string `json:"r"`
	Expiry  int64  `json:"e"`
}

type tokenSecret struct {
	Key []byte `json:"key"`
}

// Token verification failures, as the registry words them.
var (
	errTokenInvalid = errors.New("Your authorization token is invalid.")
	errTokenExpired = errors.New("Your authorization token has expired. Reauthenticate and try again.")
)

// signingKey returns the token key, creating it the first time any replica
// asks.
func (s *Service) signingKey(ctx context.Context) ([]byte, error) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	if s.secret != nil {
		return s.secret, nil
	}
	var sec tokenSecret
	_, err := s.st.Get(ctx, tokenSecretKey, &sec)
	if errors.Is(err, store.ErrNotFound) {
		fresh := tokenSecret{Key: make([]byte, 32)}
		_, _ = rand.Read(fresh.Key) // crypto/rand.Read never fails (Go ≥1.24).
		if err = s.st.Create(ctx, tokenSecretKey, fresh); err == nil || errors.Is(err, store.ErrExists) {
			_, err = s.st.Get(ctx, tokenSecretKey, &sec) // another replica may have won
		}
	}
	if err != nil {
		return nil, fmt.Errorf("registry token key: %w", err)
	}
	if len(sec.Key) < 32 {
		return nil, fmt.Errorf("registry token key at %s is %d bytes, want 32", tokenSecretKey, len(sec.Key))
	}
	s.secret = sec.Key
	return s.secret, nil
}

// mintToken returns a registry password for sc valid until expiry.
func (s *Service) mintToken(ctx context.Context, sc scope, expiry time.Time) (string, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(tokenClaims{Account: sc.account, Region: sc.region, Expiry: expiry.Unix()})
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	signed := tokenPrefix + base64.RawURLEncoding.EncodeToString(claims)
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac(key, signed)), nil
}

// verifyToken checks a registry password and returns the scope it grants.
func (s *Service) verifyToken(ctx context.Context, password string) (scope, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return scope{}, err
	}
	i := strings.LastIndexByte(password, '.')
	if !strings.HasPrefix(password, tokenPrefix) || i < len(tokenPrefix) {
		return scope{}, errTokenInvalid
	}
	signed, sig := password[:i], password[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, signed)) {
		return scope{}, errTokenInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(signed[len(tokenPrefix):])
	if err != nil {
		return scope{}, errTokenInvalid
	}
	var c tokenClaims
	if err := json.Unmarshal(raw, &c); err != nil || c.Account == "" || c.Region == "" {
		return scope{}, errTokenInvalid
	}
	if !s.cfg.Now().Before(time.Unix(c.Expiry, 0)) {
		return scope{}, errTokenExpired
	}
	return scope{account: c.Account, region: c.Region}, nil
}

func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func (s *Service) getAuthorizationToken(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		RegistryIds []string `json:"registryIds"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	for _, id := range in.RegistryIds {
		if id != sc.account {
			return nil, invalidParam("Invalid parameter at 'registryIds' failed to satisfy constraint: 'registry %s does not belong to the caller's account %s'", id, sc.account)
		}
	}
	exp := s.cfg.Now().Add(s.cfg.TokenTTL)
	tok, err := s.mintToken(ctx, sc, exp)
	if err != nil {
		return nil, err
	}
	ep := endpointOf(ctx)
	type authData struct {
		AuthorizationToken string  `json:"authorizationToken"`
		ExpiresAt          float64 `json:"expiresAt"`
		ProxyEndpoint      string  `json:"proxyEndpoint"`
	}
	return map[string][]authData{"authorizationData": {{
		AuthorizationToken: base64.StdEncoding.EncodeToString([]byte("AWS:" + tok)),
		ExpiresAt:          float64(exp.Unix()),
		ProxyEndpoint:      ep.Scheme + "://" + ep.Host,
	}}}, nil
}

// RegistryPassword mints a registry password for an account and region,
// valid for ttl: what a host agent presents to pull a task's images with
// the task's own account, never with a platform-wide key.
func (s *Service) RegistryPassword(ctx context.Context, account, region string, ttl time.Duration) (string, time.Time, error) {
	expiry := time.Now().Add(ttl)
	pw, err := s.mintToken(ctx, scope{account: account, region: region}, expiry)
	return pw, expiry, err
}
