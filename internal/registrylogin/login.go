// Package registrylogin is the client side of ECR's registry auth: it turns
// GetAuthorizationToken into the HTTP Basic credentials an OCI client
// presents, as `aws ecr get-login-password | docker login` does, creating the
// repositories first because ECR does not create them on push.
package registrylogin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Login makes sure the repositories exist (an existing one is fine) and
// returns the registry credentials GetAuthorizationToken gives.
func Login(ctx context.Context, c *ecr.Client, repos ...string) (authn.Authenticator, error) {
	for _, r := range repos {
		_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(r)})
		var exists *ecrtypes.RepositoryAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return nil, fmt.Errorf("create repository %s: %w", r, err)
		}
	}
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("get registry token: %w", err)
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("get registry token: no authorization data")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("decode registry token: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errors.New("decode registry token: not user:password")
	}
	return &authn.Basic{Username: user, Password: pass}, nil
}
