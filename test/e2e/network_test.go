package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// cliNet is the part of describe-tasks the network tests read.
type cliNetTask struct {
	TaskArn          string `json:"taskArn"`
	LastStatus       string `json:"lastStatus"`
	StopCode         string `json:"stopCode"`
	StoppedReason    string `json:"stoppedReason"`
	AvailabilityZone string `json:"availabilityZone"`
	Attachments      []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Details []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"details"`
	} `json:"attachments"`
	Containers []cliContainer `json:"containers"`
}

// detail returns an ENI attachment detail ("privateIPv4Address" …).
func (t cliNetTask) detail(name string) string {
	for _, a := range t.Attachments {
		for _, d := range a.Details {
			if d.Name == name {
				return d.Value
			}
		}
	}
	return ""
}

// vpcKit drives EC2 networking and awsvpc tasks with the real AWS CLI.
type vpcKit struct {
	t       *testing.T
	e       *devEnv
	cli     *awsCLI
	cluster string
}

func newVPCKit(t *testing.T, e *devEnv, cluster string) *vpcKit {
	k := &vpcKit{t: t, e: e, cli: newAWSCLI(t, e), cluster: cluster}
	k.cli.call(nil, "ecs", "create-cluster", "--cluster-name", cluster)
	return k
}

func (k *vpcKit) createVPC(cidr string) string {
	k.t.Helper()
	var out struct {
		Vpc struct {
			VpcId     string `json:"VpcId"`
			CidrBlock string `json:"CidrBlock"`
			State     string `json:"State"`
		} `json:"Vpc"`
	}
	k.cli.call(&out, "ec2", "create-vpc", "--cidr-block", cidr)
	if !strings.HasPrefix(out.Vpc.VpcId, "vpc-") || out.Vpc.CidrBlock != cidr {
		k.t.Fatalf("create-vpc replied %+v", out.Vpc)
	}
	return out.Vpc.VpcId
}

func (k *vpcKit) createSubnet(vpc, cidr, az string) string {
	k.t.Helper()
	var out struct {
		Subnet struct {
			SubnetId                string `json:"SubnetId"`
			AvailabilityZone        string `json:"AvailabilityZone"`
			AvailableIpAddressCount int    `json:"AvailableIpAddressCount"`
		} `json:"Subnet"`
	}
	k.cli.call(&out, "ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", cidr, "--availability-zone", az)
	if !strings.HasPrefix(out.Subnet.SubnetId, "subnet-") || out.Subnet.AvailabilityZone != az {
		k.t.Fatalf("create-subnet replied %+v", out.Subnet)
	}
	return out.Subnet.SubnetId
}

func (k *vpcKit) createGroup(vpc, name string) string {
	k.t.Helper()
	var out struct {
		GroupId string `json:"GroupId"`
	}
	k.cli.call(&out, "ec2", "create-security-group", "--vpc-id", vpc, "--group-name", name, "--description", name+" tasks")
	if !strings.HasPrefix(out.GroupId, "sg-") {
		k.t.Fatalf("create-security-group replied %+v", out)
	}
	return out.GroupId
}

func (k *vpcKit) availableIPs(subnet string) int {
	k.t.Helper()
	var out struct {
		Subnets []struct {
			AvailableIpAddressCount int `json:"AvailableIpAddressCount"`
		} `json:"Subnets"`
	}
	k.cli.call(&out, "ec2", "describe-subnets", "--subnet-ids", subnet)
	if len(out.Subnets) != 1 {
		k.t.Fatalf("describe-subnets %s: %+v", subnet, out)
	}
	return out.Subnets[0].AvailableIpAddressCount
}

// register registers a one-container awsvpc definition running sh -c script.
func (k *vpcKit) register(family, script string, ports ...int) {
	k.t.Helper()
	def := cliTaskDef(family, k.e.Image, "sh", "-c", script)
	if len(ports) > 0 {
		var pms []map[string]any
		for _, p := range ports {
			pms = append(pms, map[string]any{"containerPort": p, "protocol": "tcp"})
		}
		def["containerDefinitions"].([]map[string]any)[0]["portMappings"] = pms
	}
	k.cli.register(family, def)
}

// run runs one task of family in the subnets and groups, with environment
// overrides, and returns its ARN.
func (k *vpcKit) run(family string, subnets, groups []string, env map[string]string, extra ...string) string {
	k.t.Helper()
	var out struct {
		Tasks    []cliNetTask `json:"tasks"`
		Failures []cliFailure `json:"failures"`
	}
	k.cli.call(&out, append(k.runArgs(family, subnets, groups, env), extra...)...)
	if len(out.Tasks) != 1 || len(out.Failures) != 0 {
		k.t.Fatalf("run-task %s: %+v", family, out)
	}
	return out.Tasks[0].TaskArn
}

func (k *vpcKit) runArgs(family string, subnets, groups []string, env map[string]string) []string {
	netCfg := "awsvpcConfiguration={subnets=[" + strings.Join(subnets, ",") + "]"
	if len(groups) > 0 {
		netCfg += ",securityGroups=[" + strings.Join(groups, ",") + "]"
	}
	netCfg += ",assignPublicIp=DISABLED}"
	args := []string{"ecs", "run-task", "--cluster", k.cluster, "--task-definition", family,
		"--launch-type", "FARGATE", "--network-configuration", netCfg}
	if len(env) > 0 {
		var kv []string
		for name, v := range env {
			kv = append(kv, `{"name":"`+name+`","value":"`+v+`"}`)
		}
		args = append(args, "--overrides", `{"containerOverrides":[{"name":"main","environment":[`+strings.Join(kv, ",")+`]}]}`)
	}
	return args
}

func (k *vpcKit) describe(arn string) cliNetTask {
	k.t.Helper()
	var out struct {
		Tasks []cliNetTask `json:"tasks"`
	}
	k.cli.call(&out, "ecs", "describe-tasks", "--cluster", k.cluster, "--tasks", arn)
	if len(out.Tasks) != 1 {
		k.t.Fatalf("describe-tasks %s: %+v", arn, out)
	}
	return out.Tasks[0]
}

// wait polls until the task is status (or STOPPED).
func (k *vpcKit) wait(arn, status string, timeout time.Duration) cliNetTask {
	k.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		task := k.describe(arn)
		if task.LastStatus == status || task.LastStatus == "STOPPED" {
			return task
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("task %s: still %s after %s, want %s", arn, task.LastStatus, timeout, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exitCode runs a task to completion and returns its container's exit code.
func (k *vpcKit) exitCode(family string, subnets, groups []string, env map[string]string) int {
	k.t.Helper()
	arn := k.run(family, subnets, groups, env)
	task := k.wait(arn, "STOPPED", time.Minute)
	if len(task.Containers) != 1 || task.Containers[0].ExitCode == nil {
		k.t.Fatalf("task %s stopped without an exit code: %s %s", arn, task.StopCode, task.StoppedReason)
	}
	return *task.Containers[0].ExitCode
}

// fetchScript fetches http://$TARGET:8080/ up to $TRIES times, 0.2 s apart,
// each attempt cut after 2 s (busybox 1.35's static wget crashes on -T): exit 0 on the first success.
const fetchScript = `i=0; while [ $i -lt $TRIES ]; do timeout 2 wget -q -O - http://$TARGET:8080/ && exit 0; i=$((i+1)); sleep 0.2; done; exit 1`

// webScript serves a page on 8080 after printing eth0's address.
const webScript = `ip -4 -o addr show dev eth0; mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www`

var inetRE = regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/(\d+)`)

// TestAWSVPCSecurityGroups is the acceptance, with the real AWS CLI:
// a VPC with two subnets in two zones and two groups; a web task in sg-web;
// a client in sg-client reaches it only while sg-web admits sg-client; a
// client in another VPC (same CIDR) never does.
func TestAWSVPCSecurityGroups(t *testing.T) {
	e := startDev(t)
	k := newVPCKit(t, e, "net")
	vpc := k.createVPC("10.10.0.0/16")
	webSubnet := k.createSubnet(vpc, "10.10.1.0/24", "us-east-1a")
	clientSubnet := k.createSubnet(vpc, "10.10.2.0/24", "us-east-1b")
	sgWeb, sgClient := k.createGroup(vpc, "web"), k.createGroup(vpc, "client")
	k.register("web", webScript, 8080)
	k.register("client", fetchScript)

	web := k.wait(k.run("web", []string{webSubnet}, []string{sgWeb}, nil), "RUNNING", time.Minute)
	if web.LastStatus != "RUNNING" {
		t.Fatalf("web task: %s %s", web.StopCode, web.StoppedReason)
	}
	ip, eni := web.detail("privateIPv4Address"), web.detail("networkInterfaceId")
	if !strings.HasPrefix(ip, "10.10.1.") || !strings.HasPrefix(eni, "eni-") || web.AvailabilityZone != "us-east-1a" ||
		web.detail("subnetId") != webSubnet || web.detail("macAddress") == "" {
		t.Fatalf("web task network: az %s attachments %+v", web.AvailabilityZone, web.Attachments)
	}

	t.Run("ENI as the container sees it", func(t *testing.T) {
		var logs string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if logs = e.berth("logs", "--cluster", "net", web.TaskArn[strings.LastIndexByte(web.TaskArn, '/')+1:]); inetRE.MatchString(logs) {
				break
			}
		}
		m := inetRE.FindStringSubmatch(logs)
		if m == nil || m[1] != ip || m[2] != "24" {
			t.Fatalf("eth0 in the container: %q, want %s/24", logs, ip)
		}
		var out struct {
			NetworkInterfaces []struct {
				NetworkInterfaceId string `json:"NetworkInterfaceId"`
				PrivateIpAddress   string `json:"PrivateIpAddress"`
				SubnetId           string `json:"SubnetId"`
				VpcId              string `json:"VpcId"`
				AvailabilityZone   string `json:"AvailabilityZone"`
				Status             string `json:"Status"`
				Description        string `json:"Description"`
				MacAddress         string `json:"MacAddress"`
				Groups             []struct {
					GroupId string `json:"GroupId"`
				} `json:"Groups"`
			} `json:"NetworkInterfaces"`
		}
		k.cli.call(&out, "ec2", "describe-network-interfaces", "--filters", "Name=vpc-id,Values="+vpc)
		if len(out.NetworkInterfaces) != 1 {
			t.Fatalf("describe-network-interfaces: %+v", out)
		}
		n := out.NetworkInterfaces[0]
		if n.NetworkInterfaceId != eni || n.PrivateIpAddress != ip || n.SubnetId != webSubnet || n.VpcId != vpc ||
			n.Status != "in-use" || !strings.Contains(n.Description, ":attachment/") || len(n.Groups) != 1 || n.Groups[0].GroupId != sgWeb ||
			n.MacAddress != web.detail("macAddress") || n.AvailabilityZone != "us-east-1a" {
			t.Fatalf("ENI %+v, task ip %s eni %s", n, ip, eni)
		}
	})

	once := map[string]string{"TARGET": ip, "TRIES": "1"}
	retry := map[string]string{"TARGET": ip, "TRIES": "5"} // within about a second of a rule change
	client := []string{clientSubnet}
	if code := k.exitCode("client", client, []string{sgClient}, once); code == 0 {
		t.Fatal("the client reached the web task before any rule admitted it")
	}
	k.cli.call(nil, "ec2", "authorize-security-group-ingress", "--group-id", sgWeb, "--protocol", "tcp", "--port", "8080", "--source-group", sgClient)
	if code := k.exitCode("client", client, []string{sgClient}, retry); code != 0 {
		t.Fatalf("client exit %d after authorize, want 0", code)
	}
	// A client in another group of the same VPC is still refused.
	if code := k.exitCode("client", client, nil, once); code == 0 {
		t.Fatal("a client in the default group reached the web task")
	}
	k.cli.call(nil, "ec2", "revoke-security-group-ingress", "--group-id", sgWeb, "--protocol", "tcp", "--port", "8080", "--source-group", sgClient)
	if code := k.exitCode("client", client, []string{sgClient}, once); code == 0 {
		t.Fatal("the client reached the web task after the revoke")
	}

	// Another VPC with the same CIDR never reaches it, even when sg-web
	// admits everyone.
	other := k.createVPC("10.10.0.0/16")
	otherSubnet := k.createSubnet(other, "10.10.2.0/24", "us-east-1b")
	k.cli.call(nil, "ec2", "authorize-security-group-ingress", "--group-id", sgWeb, "--protocol", "tcp", "--port", "8080", "--cidr", "0.0.0.0/0")
	if code := k.exitCode("client", client, []string{sgClient}, retry); code != 0 {
		t.Fatalf("client exit %d with 0.0.0.0/0 admitted, want 0", code)
	}
	if code := k.exitCode("client", []string{otherSubnet}, nil, map[string]string{"TARGET": ip, "TRIES": "2"}); code == 0 {
		t.Fatal("a client in another VPC reached the web task")
	}

	t.Run("bad input changes nothing", func(t *testing.T) {
		k.cli.fail("InvalidSubnet.Conflict", "ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.10.1.128/25", "--availability-zone", "us-east-1a")
		k.cli.fail("InvalidSubnet.Range", "ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.20.0.0/24", "--availability-zone", "us-east-1a")
		k.cli.fail("InvalidVpcID.NotFound", "ec2", "create-subnet", "--vpc-id", "vpc-0123456789abcdef0", "--cidr-block", "10.10.9.0/24")
		k.cli.fail("InvalidGroup.NotFound", "ec2", "authorize-security-group-ingress", "--group-id", "sg-0123456789abcdef0", "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
		k.cli.fail("InvalidPermission.Duplicate", "ec2", "authorize-security-group-ingress", "--group-id", sgWeb, "--protocol", "tcp", "--port", "8080", "--cidr", "0.0.0.0/0")
		k.cli.fail("InvalidGroup.Duplicate", "ec2", "create-security-group", "--vpc-id", vpc, "--group-name", "web", "--description", "again")
		msg := k.cli.fail("InvalidParameterException", k.runArgs("client", []string{webSubnet, otherSubnet}, nil, nil)...)
		if !strings.Contains(strings.ToLower(msg), "vpc") {
			t.Errorf("subnets of two VPCs: message %q does not say why", msg)
		}
		args := k.runArgs("client", []string{webSubnet}, []string{"sg-0123456789abcdef0"}, nil)
		k.cli.fail("InvalidParameterException", args...)
		if _, stderr, _ := k.cli.run(args...); !strings.Contains(stderr, "sg-0123456789abcdef0") {
			t.Errorf("unknown group: message %q does not name it", stderr)
		}
		k.cli.fail("InvalidParameterException", k.runArgs("client", []string{"subnet-0123456789abcdef0"}, nil, nil)...)
		k.cli.fail("DependencyViolation", "ec2", "delete-subnet", "--subnet-id", webSubnet)
		k.cli.fail("DependencyViolation", "ec2", "delete-vpc", "--vpc-id", vpc)
		var subnets struct {
			Subnets []struct {
				SubnetId string `json:"SubnetId"`
			} `json:"Subnets"`
		}
		k.cli.call(&subnets, "ec2", "describe-subnets", "--filters", "Name=vpc-id,Values="+vpc)
		if len(subnets.Subnets) != 2 {
			t.Fatalf("subnets of %s after refused changes: %+v", vpc, subnets)
		}
		if task := k.describe(web.TaskArn); task.LastStatus != "RUNNING" {
			t.Fatalf("web task after refused changes: %s", task.LastStatus)
		}
	})
}

// TestSubnetExhaustion fills a /26 (64 addresses, 5 reserved: 59 usable)
// with concurrent RunTasks: no address is handed out twice, and the tasks
// that find no address stop with TaskFailedToStart saying so.
func TestSubnetExhaustion(t *testing.T) {
	e := startDev(t)
	k := newVPCKit(t, e, "full")
	vpc := k.createVPC("10.30.0.0/16")
	subnet := k.createSubnet(vpc, "10.30.0.0/26", "us-east-1c")
	if n := k.availableIPs(subnet); n != 59 {
		t.Fatalf("a new /26 has %d available addresses, want 59", n)
	}
	k.register("idle", "sleep 600")
	const total = 70
	// The SDK, from many goroutines: 70 CLI processes would only time Python.
	arns := make(chan string, total)
	for i := 0; i < total; i++ {
		go func() {
			out, err := e.ECS.RunTask(e.ctx(), &ecs.RunTaskInput{Cluster: aws.String("full"), TaskDefinition: aws.String("idle"),
				LaunchType: types.LaunchTypeFargate, NetworkConfiguration: &types.NetworkConfiguration{
					AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{subnet}}}})
			if err != nil || len(out.Tasks) != 1 {
				t.Errorf("RunTask: %v %+v", err, out)
				arns <- ""
				return
			}
			arns <- aws.ToString(out.Tasks[0].TaskArn)
		}()
	}
	var all []string
	for i := 0; i < total; i++ {
		if a := <-arns; a != "" {
			all = append(all, a)
		}
	}
	if len(all) != total {
		t.Fatalf("%d of %d RunTasks were accepted", len(all), total)
	}
	var tasks []types.Task
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		out, err := e.ECS.DescribeTasks(e.ctx(), &ecs.DescribeTasksInput{Cluster: aws.String("full"), Tasks: all})
		if err != nil || len(out.Tasks) != total {
			t.Fatalf("DescribeTasks: %v %+v", err, out)
		}
		settled := 0
		for _, task := range out.Tasks {
			if s := aws.ToString(task.LastStatus); s == "RUNNING" || s == "STOPPED" {
				settled++
			}
		}
		if tasks = out.Tasks; settled == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d tasks running or stopped", settled, total)
		}
	}
	seen := map[string]string{}
	var running, exhausted int
	for _, task := range tasks {
		arn := aws.ToString(task.TaskArn)
		switch aws.ToString(task.LastStatus) {
		case "RUNNING":
			running++
			var ip string
			for _, a := range task.Attachments {
				for _, d := range a.Details {
					if aws.ToString(d.Name) == "privateIPv4Address" {
						ip = aws.ToString(d.Value)
					}
				}
			}
			if prev, dup := seen[ip]; dup || ip == "" {
				t.Errorf("address %q of %s also given to %s", ip, arn, prev)
			}
			seen[ip] = arn
			last, _ := strconv.Atoi(ip[strings.LastIndexByte(ip, '.')+1:])
			if last < 4 || last > 62 {
				t.Errorf("task %s got reserved address %s", arn, ip)
			}
		default:
			if task.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.Contains(aws.ToString(task.StoppedReason), "address") {
				t.Errorf("task %s stopped with %s %q, want TaskFailedToStart naming address exhaustion", arn, task.StopCode, aws.ToString(task.StoppedReason))
			}
			exhausted++
		}
	}
	if running != 59 || exhausted != total-59 {
		t.Errorf("%d running and %d failed, want 59 and %d", running, exhausted, total-59)
	}
	if n := k.availableIPs(subnet); n != 0 {
		t.Errorf("a full /26 shows %d available addresses", n)
	}
	for _, arn := range all {
		if _, err := e.ECS.StopTask(e.ctx(), &ecs.StopTaskInput{Cluster: aws.String("full"), Task: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for k.availableIPs(subnet) != 59 {
		if time.Now().After(deadline) {
			t.Fatalf("addresses not freed after the tasks stopped: %d available", k.availableIPs(subnet))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
