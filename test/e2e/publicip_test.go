package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestPublicIP runs a web task with assignPublicIp ENABLED: its ENI shows a
// public address from the dev pool (loopback), which the host reaches only
// once the task's group admits 0.0.0.0/0 — a rule for the VPC's own CIDR
// does not admit the host. The public IP survives a kill -9 of berth.
func TestPublicIP(t *testing.T) {
	e := startDev(t)
	ctx := e.ctx()
	var vpcID string
	subnets, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.subnets()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	vpcID = aws.ToString(subnets.Subnets[0].VpcId)
	sg, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("public-web"),
		Description: aws.String("web"), VpcId: aws.String(vpcID)})
	if err != nil {
		t.Fatal(err)
	}
	group := aws.ToString(sg.GroupId)
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("pub")}); err != nil {
		t.Fatal(err)
	}
	web := e.container("main", "sh", "-c", "mkdir -p /www && echo public-hello > /www/index.html && exec httpd -f -p 8080 -h /www")
	web.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080), Protocol: types.TransportProtocolTcp}}
	td := e.registerTask("pubweb", "256", "512", web)
	run, err := e.ECS.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("pub"), TaskDefinition: aws.String(td),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: e.subnets()[:1], SecurityGroups: []string{group}, AssignPublicIp: types.AssignPublicIpEnabled}}})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, run)
	}
	task := e.waitStatus("pub", aws.ToString(run.Tasks[0].TaskArn), "RUNNING", time.Minute)
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Fatalf("task: %s", aws.ToString(task.StoppedReason))
	}
	enis, err := e.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{group}}}})
	if err != nil || len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("DescribeNetworkInterfaces: %v %+v", err, enis)
	}
	eni := enis.NetworkInterfaces[0]
	if eni.Association == nil || !strings.HasPrefix(aws.ToString(eni.Association.PublicIp), "127.100.") {
		t.Fatalf("ENI association: %+v", eni.Association)
	}
	url := "http://" + aws.ToString(eni.Association.PublicIp) + ":8080/"
	client := &http.Client{Timeout: 1500 * time.Millisecond}
	get := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	authorize := func(cidr string) {
		t.Helper()
		if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(group),
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8080), ToPort: aws.Int32(8080), CidrIp: aws.String(cidr)}); err != nil {
			t.Fatal(err)
		}
	}
	if body, err := get(); err == nil {
		t.Fatalf("the host reached the public IP with no rule admitting it: %q", body)
	}
	authorize("172.31.0.0/16")
	time.Sleep(time.Second) // the rule is in force by now
	if body, err := get(); err == nil {
		t.Fatalf("a rule for the VPC's CIDR admitted the host: %q", body)
	}
	authorize("0.0.0.0/0")
	var body string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if body, err = get(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || strings.TrimSpace(body) != "public-hello" {
		t.Fatalf("GET %s with 0.0.0.0/0 admitted: %q %v", url, body, err)
	}

	// kill -9 of berth: the task keeps running; the restarted agent adopts
	// it and brings its public IP back (the address stays the task's).
	e.kill()
	e.start()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if body, err = get(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || strings.TrimSpace(body) != "public-hello" {
		t.Fatalf("GET %s after a restart of berth: %q %v", url, body, err)
	}
}
