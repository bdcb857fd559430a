package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// envCreds gives the registry credentials as USER:PASSWORD, or "none" to
// run the registry anonymously; it wins over the ECR API.
const envCreds = "BERTH_CONFORMANCE_CREDS"

// ECR's awsJson1_1 target prefix and SigV4 signing name.
const (
	ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921"
	ecrSigningName  = "ecr"
)

// errNoECRAPI says the server has no ECR API, so no registry credentials.
var errNoECRAPI = errors.New("the server has no ECR API")

// ecrAPI calls berth's ECR API with the server's root keys.
type ecrAPI struct {
	endpoint string
	region   string
	creds    aws.Credentials
	http     *http.Client
}

// newECRAPI calls the ECR API at endpoint with keys, signing for region.
func newECRAPI(endpoint string, keys aws.Credentials, region string) *ecrAPI {
	return &ecrAPI{endpoint: endpoint, region: region, creds: keys, http: &http.Client{Timeout: 10 * time.Second}}
}

// apiError is an AWS JSON error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// call makes one SigV4-signed awsJson1_1 ECR call. An unknown operation
// means the ECR API is not there: errNoECRAPI.
func (a *ecrAPI) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("ecr %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(a.endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("ecr %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", ecrTargetPrefix+"."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, a.creds, req, hex.EncodeToString(sum[:]), ecrSigningName, a.region, time.Now()); err != nil {
		return fmt.Errorf("ecr %s: sign: %w", op, err)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("ecr %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("ecr %s: read answer: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
			Msg     string `json:"Message"`
		}
		_ = json.Unmarshal(b, &e)
		code := resp.Header.Get("X-Amzn-ErrorType")
		if code == "" {
			code = e.Type
		}
		code, _, _ = strings.Cut(code, ":")
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if code == "UnknownOperationException" {
			return fmt.Errorf("ecr %s: %w", op, errNoECRAPI)
		}
		return fmt.Errorf("ecr %s: %w", op, &apiError{Status: resp.StatusCode, Code: code, Message: e.Message + e.Msg})
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("ecr %s: decode answer: %w", op, err)
	}
	return nil
}

// loginPassword asks GetAuthorizationToken for registry credentials, as
// `aws ecr get-login-password` does: the token is base64 of "AWS:<password>".
func (a *ecrAPI) loginPassword(ctx context.Context) (user, pass string, err error) {
	var out struct {
		AuthorizationData []struct {
			AuthorizationToken string `json:"authorizationToken"`
		} `json:"authorizationData"`
	}
	if err := a.call(ctx, "GetAuthorizationToken", struct{}{}, &out); err != nil {
		return "", "", err
	}
	if len(out.AuthorizationData) == 0 {
		return "", "", errors.New("ecr GetAuthorizationToken: no authorizationData")
	}
	raw, err := base64.StdEncoding.DecodeString(out.AuthorizationData[0].AuthorizationToken)
	if err != nil {
		return "", "", fmt.Errorf("ecr GetAuthorizationToken: token is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return "", "", errors.New("ecr GetAuthorizationToken: token is not USER:PASSWORD")
	}
	return user, pass, nil
}

// createRepository creates a repository; one that exists already is fine.
func (a *ecrAPI) createRepository(ctx context.Context, name string) error {
	err := a.call(ctx, "CreateRepository", map[string]string{"repositoryName": name}, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "RepositoryAlreadyExistsException" {
		return nil
	}
	return err
}

// registryAuth is how the suites authenticate, and how it was decided.
type registryAuth struct {
	Username, Password string
	Source             string // where the credentials came from, for the log
	// ECR is the server's ECR API, nil if it has none.
	ECR *ecrAPI
}

// discoverAuth picks the suites' credentials for a server whose registry
// demands them: $BERTH_CONFORMANCE_CREDS if set, else a token from the
// server's ECR GetAuthorizationToken. Without either it returns
// errNoECRAPI: the server cannot hand out registry credentials yet.
func discoverAuth(ctx context.Context, api *ecrAPI) (registryAuth, error) {
	ra := registryAuth{ECR: api}
	user, pass, err := api.loginPassword(ctx)
	switch {
	case errors.Is(err, errNoECRAPI):
		ra.ECR = nil
	case err != nil:
		return registryAuth{}, err
	}
	if v := os.Getenv(envCreds); v != "" {
		u, p, ok := strings.Cut(v, ":")
		if !ok || u == "" {
			return registryAuth{}, fmt.Errorf("%s: want USER:PASSWORD or none", envCreds)
		}
		ra.Username, ra.Password, ra.Source = u, p, "$"+envCreds
		return ra, nil
	}
	if ra.ECR == nil {
		return registryAuth{}, errNoECRAPI
	}
	ra.Username, ra.Password, ra.Source = user, pass, "ECR GetAuthorizationToken"
	return ra, nil
}

// probeV2 answers GET /v2/ with the given Basic credentials (none if user
// is ""): the status code.
func probeV2(ctx context.Context, registryURL, user, pass string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, registryURL+"/v2/", nil)
	if err != nil {
		return 0, fmt.Errorf("probe /v2/: %w", err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("probe /v2/: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
