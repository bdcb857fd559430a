// Command taskclient is what the end-to-end tests run inside a task to call
// berth's API with no keys configured, as the AWS CLI would: credentials
// from the container credentials endpoint
// (169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI), the endpoint from
// AWS_ENDPOINT_URL, the region from AWS_REGION. It prints one line per call:
//
//	CREDS <access key id> <secret access key> <session token>
//	LIST <cluster ARNs, space-separated> | LIST ERROR <message>
//	OTHER <failure reason> | OTHER FOUND | OTHER ERROR <message>
//
// for ListClusters and for DescribeClusters of the ARN given as argument
// (another account's cluster).
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	creds := endpointcreds.New("http://169.254.170.2" + os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"))
	v, err := creds.Retrieve(ctx)
	if err != nil {
		fmt.Println("CREDS ERROR", err)
		os.Exit(1)
	}
	fmt.Println("CREDS", v.AccessKeyID, v.SecretAccessKey, v.SessionToken)
	c := ecs.NewFromConfig(aws.Config{Region: os.Getenv("AWS_REGION"), Credentials: aws.NewCredentialsCache(creds),
		BaseEndpoint: aws.String(os.Getenv("AWS_ENDPOINT_URL"))})
	list, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		fmt.Println("LIST ERROR", err)
	} else {
		fmt.Println("LIST", strings.Join(list.ClusterArns, " "))
	}
	if len(os.Args) > 1 {
		d, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{os.Args[1]}})
		switch {
		case err != nil:
			fmt.Println("OTHER ERROR", err)
		case len(d.Failures) > 0:
			fmt.Println("OTHER", aws.ToString(d.Failures[0].Reason))
		default:
			fmt.Println("OTHER FOUND")
		}
	}
}
