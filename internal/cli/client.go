package cli

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// awsConfig is how the human verbs reach berth: the endpoint and keys from the
// flags, the usual AWS environment variables, or the env file `berth dev`
// leaves in its data dir, in that order.
func (g *globalFlags) awsConfig() aws.Config {
	fileEnv := readEnvFile(filepath.Join(g.dataDir, "env"))
	get := func(k string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return fileEnv[k]
	}
	endpoint := g.endpoint
	if endpoint == "" {
		endpoint = get("AWS_ENDPOINT_URL")
	}
	if endpoint == "" {
		endpoint = "http://127.0.0.1:4566"
	}
	akid, secret := get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
	if akid == "" {
		akid, secret = "test", "test"
	}
	return aws.Config{
		Region:       g.regionOr(),
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, get("AWS_SESSION_TOKEN")),
	}
}

func (g *globalFlags) ecs() *ecs.Client { return ecs.NewFromConfig(g.awsConfig()) }

func (g *globalFlags) ec2() *ec2.Client { return ec2.NewFromConfig(g.awsConfig()) }

func readEnvFile(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// ensureCluster creates the cluster if needed (CreateCluster is idempotent).
func ensureCluster(ctx context.Context, c *ecs.Client, name string) error {
	_, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)})
	return err
}
