package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/berthdev/berth/internal/netns"
)

// metaLine returns the rest of the first log line that starts with prefix.
func metaLine(t *testing.T, log, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	t.Fatalf("log has no line %q:\n%s", prefix, log)
	return ""
}

// TestTaskMetadata: a task reads its own metadata (v4) and stats at
// $ECS_CONTAINER_METADATA_URI_V4, which match DescribeTasks; another task's
// container path and credentials id are refused to it; a task with a role
// gets AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.
func TestTaskMetadata(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	const cluster = "meta"
	ctx := e.ctx()
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	get := func(name, url string) string {
		return `echo "` + name + ` $(timeout 2 wget -qO- ` + url + ` 2>&1; echo " rc=$?")"`
	}
	script := strings.Join([]string{
		`echo "URI $ECS_CONTAINER_METADATA_URI_V4"`,
		`echo "URI3 $ECS_CONTAINER_METADATA_URI"`,
		`echo "CREDS $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"`,
		`while [ -z "$OTHER" ]; do sleep 1; done`, // task B: no OTHER, stays here
		get("SELF", "$ECS_CONTAINER_METADATA_URI_V4"),
		get("TASK", "$ECS_CONTAINER_METADATA_URI_V4/task"),
		get("TAGS", "$ECS_CONTAINER_METADATA_URI_V4/taskWithTags"),
		get("STATS", "$ECS_CONTAINER_METADATA_URI_V4/stats"),
		get("TASKSTATS", "$ECS_CONTAINER_METADATA_URI_V4/task/stats"),
		get("V3", "$ECS_CONTAINER_METADATA_URI/task"),
		get("OTHER", "http://169.254.170.2/v4/$OTHER/task"),
		get("OTHERCREDS", "http://169.254.170.2$OTHERCREDS"),
		get("MYCREDS", "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
		`echo DONE`,
		// The test asks again (after restarting berth) by creating /tmp/again.
		`while true; do if [ -e /tmp/again ]; then rm /tmp/again; ` + get("AGAIN", "$ECS_CONTAINER_METADATA_URI_V4/task") + `; ` + get("AGAINSTATS", "$ECS_CONTAINER_METADATA_URI_V4/stats") + `; fi; sleep 0.2; done`,
	}, "\n")
	c := e.container("app", "sh", "-c", script)
	newAWSCLI(t, e).call(nil, "iam", "create-role", "--role-name", "meta-task", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	out, err := e.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("meta"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, ContainerDefinitions: []types.ContainerDefinition{c},
		TaskRoleArn: aws.String("arn:aws:iam::000000000000:role/meta-task"),
	})
	if err != nil {
		t.Fatal(err)
	}
	td := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	run := func(env map[string]string, groups []string, tags ...types.Tag) string {
		in := &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeFargate,
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()[:1],
				SecurityGroups: groups}},
			Tags: tags}
		if env != nil {
			o := types.ContainerOverride{Name: aws.String("app")}
			for k, v := range env {
				o.Environment = append(o.Environment, types.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
			}
			in.Overrides = &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{o}}
		}
		res, err := e.ECS.RunTask(ctx, in)
		if err != nil || len(res.Tasks) != 1 {
			t.Fatalf("run task: %v %v", err, res)
		}
		return aws.ToString(res.Tasks[0].TaskArn)
	}

	// Task B only says where its metadata and credentials are.
	b := run(nil, nil)
	e.waitStatus(cluster, b, "RUNNING", time.Minute)
	bLog := e.waitContainerLog(cluster, b, "app", "CREDS ", time.Minute)
	bURI := strings.TrimSpace(metaLine(t, bLog, "URI "))
	bCreds := strings.TrimSpace(metaLine(t, bLog, "CREDS "))
	bID := bURI[strings.LastIndex(bURI, "/")+1:]
	if !strings.HasPrefix(bURI, "http://169.254.170.2/v4/") || bID == "" {
		t.Fatalf("task B's ECS_CONTAINER_METADATA_URI_V4 = %q", bURI)
	}
	if !strings.HasPrefix(bCreds, "/v2/credentials/") || len(bCreds) <= len("/v2/credentials/") {
		t.Fatalf("task B (with a task role) has AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = %q", bCreds)
	}

	// Task A reads its own metadata and tries B's.
	a := run(map[string]string{"OTHER": bID, "OTHERCREDS": bCreds}, nil, types.Tag{Key: aws.String("team"), Value: aws.String("meta")})
	e.waitStatus(cluster, a, "RUNNING", time.Minute)
	aLog := e.waitContainerLog(cluster, a, "app", "DONE", time.Minute)
	task := e.describe(cluster, a)

	body := func(prefix string) string {
		s := metaLine(t, aLog, prefix+" ")
		i := strings.LastIndex(s, " rc=")
		if i < 0 || s[i:] != " rc=0" {
			t.Fatalf("%s: wget failed: %s", prefix, s)
		}
		return s[:i]
	}
	var md struct {
		Cluster, TaskARN, Family, Revision, DesiredStatus, KnownStatus, AvailabilityZone, LaunchType string
		Limits                                                                                       struct{ CPU, Memory float64 }
		PullStartedAt                                                                                *time.Time
		Containers                                                                                   []struct {
			DockerID     string `json:"DockerId"`
			Name, Image  string
			ContainerARN string
			Type         string
			Labels       map[string]string
			Networks     []struct {
				NetworkMode              string
				IPv4Addresses            []string
				MACAddress               string
				IPv4SubnetCIDRBlock      string
				SubnetGatewayIpv4Address string
				PrivateDNSName           string
			}
		}
		TaskTags map[string]string
	}
	if err := json.Unmarshal([]byte(body("TASK")), &md); err != nil {
		t.Fatalf("/task: %v\n%s", err, aLog)
	}
	var ip, subnet string
	for _, att := range task.Attachments {
		for _, d := range att.Details {
			switch aws.ToString(d.Name) {
			case "privateIPv4Address":
				ip = aws.ToString(d.Value)
			case "subnetId":
				subnet = aws.ToString(d.Value)
			}
		}
	}
	ctr := findContainer(task, "app")
	checks := map[string][2]string{
		"TaskARN":          {md.TaskARN, a},
		"Cluster":          {md.Cluster, aws.ToString(task.ClusterArn)},
		"Family":           {md.Family, "meta"},
		"Revision":         {md.Revision, strconv.Itoa(int(out.TaskDefinition.Revision))},
		"AvailabilityZone": {md.AvailabilityZone, aws.ToString(task.AvailabilityZone)},
		"LaunchType":       {md.LaunchType, "FARGATE"},
		"DesiredStatus":    {md.DesiredStatus, "RUNNING"},
	}
	if len(md.Containers) == 1 {
		mc := md.Containers[0]
		checks["Containers[0].Name"] = [2]string{mc.Name, "app"}
		checks["Containers[0].Image"] = [2]string{mc.Image, e.Image}
		checks["Containers[0].ContainerARN"] = [2]string{mc.ContainerARN, aws.ToString(ctr.ContainerArn)}
		checks["Containers[0].Type"] = [2]string{mc.Type, "NORMAL"}
		checks["Containers[0].Labels[task-arn]"] = [2]string{mc.Labels["com.amazonaws.ecs.task-arn"], a}
		if len(mc.Networks) == 1 && len(mc.Networks[0].IPv4Addresses) == 1 {
			checks["Networks[0].IPv4Addresses[0]"] = [2]string{mc.Networks[0].IPv4Addresses[0], ip}
			checks["Networks[0].NetworkMode"] = [2]string{mc.Networks[0].NetworkMode, "awsvpc"}
		} else {
			t.Errorf("/task: container networks %+v", mc.Networks)
		}
	} else {
		t.Errorf("/task: %d containers", len(md.Containers))
	}
	for k, v := range checks {
		if v[0] != v[1] || v[1] == "" {
			t.Errorf("/task %s = %q, DescribeTasks says %q", k, v[0], v[1])
		}
	}
	if md.Limits.CPU != 0.25 || md.Limits.Memory != 512 || md.PullStartedAt == nil {
		t.Errorf("/task Limits %+v PullStartedAt %v", md.Limits, md.PullStartedAt)
	}
	t.Logf("task %s in %s: /task answered %s", a, subnet, body("TASK"))

	var self struct {
		DockerID string `json:"DockerId"`
		Name     string
	}
	if err := json.Unmarshal([]byte(body("SELF")), &self); err != nil || self.Name != "app" || self.DockerID == "" {
		t.Errorf("container metadata: %v %+v", err, self)
	}
	if err := json.Unmarshal([]byte(body("TAGS")), &md); err != nil || md.TaskTags["team"] != "meta" {
		t.Errorf("/taskWithTags: %v TaskTags %v", err, md.TaskTags)
	}
	if err := json.Unmarshal([]byte(body("V3")), &md); err != nil || md.TaskARN != a {
		t.Errorf("v3 /task: %v TaskARN %q", err, md.TaskARN)
	}

	var stats struct {
		Read        time.Time `json:"read"`
		MemoryStats struct {
			Usage, Limit uint64
		} `json:"memory_stats"`
		CPUStats struct {
			CPUUsage struct {
				TotalUsage uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
			OnlineCPUs int `json:"online_cpus"`
		} `json:"cpu_stats"`
		Networks map[string]struct {
			RxBytes uint64 `json:"rx_bytes"`
			TxBytes uint64 `json:"tx_bytes"`
		} `json:"networks"`
	}
	if err := json.Unmarshal([]byte(body("STATS")), &stats); err != nil {
		t.Fatalf("/stats: %v", err)
	}
	if stats.MemoryStats.Limit != 512<<20 || stats.MemoryStats.Usage == 0 || stats.CPUStats.CPUUsage.TotalUsage == 0 ||
		stats.CPUStats.OnlineCPUs == 0 || stats.Networks["eth0"].RxBytes == 0 || stats.Networks["eth0"].TxBytes == 0 {
		t.Errorf("/stats: %+v\n%s", stats, body("STATS"))
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body("TASKSTATS")), &all); err != nil || len(all) != 1 || all[self.DockerID] == nil {
		t.Errorf("/task/stats: %v keys %v, want %s", err, len(all), self.DockerID)
	}

	// B's paths are refused to A.
	for _, name := range []string{"OTHER", "OTHERCREDS"} {
		s := metaLine(t, aLog, name+" ")
		if !strings.Contains(s, "404") || strings.HasSuffix(s, " rc=0") {
			t.Errorf("task A fetching task B's %s: %q, want a 404", name, s)
		}
	}
	if aCreds := strings.TrimSpace(metaLine(t, aLog, "CREDS ")); aCreds == bCreds || !strings.HasPrefix(aCreds, "/v2/credentials/") {
		t.Errorf("credentials URIs: A %q, B %q", aCreds, bCreds)
	}
	// A's own credentials: the role's, from the control plane.
	if s := metaLine(t, aLog, "MYCREDS "); !strings.Contains(s, `"AccessKeyId":"ASIA`) || !strings.Contains(s, `"RoleArn":"arn:aws:iam::000000000000:role/meta-task"`) {
		t.Errorf("task A's own credentials: %q", s)
	}

	// A task whose security group allows no egress still reaches the
	// endpoint, as on Fargate.
	subnets, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.subnets()[:1]})
	if err != nil || len(subnets.Subnets) != 1 {
		t.Fatalf("describe subnet: %v", err)
	}
	sg, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("no-egress"),
		Description: aws.String("no egress"), VpcId: subnets.Subnets[0].VpcId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.EC2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: sg.GroupId,
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		t.Fatal(err)
	}
	cTask := run(map[string]string{"OTHER": bID, "OTHERCREDS": bCreds}, []string{aws.ToString(sg.GroupId)})
	e.waitStatus(cluster, cTask, "RUNNING", time.Minute)
	cLog := e.waitContainerLog(cluster, cTask, "app", "DONE", time.Minute)
	if got := metaLine(t, cLog, "TASK "); !strings.HasSuffix(got, " rc=0") || !strings.Contains(got, `"TaskARN":"`+cTask+`"`) {
		t.Errorf("/task of a task without egress: %s", got)
	}

	// A restarted agent serves the tasks it adopts.
	e.kill()
	e.start()
	pids := taskPids(idFromArn(a))
	if len(pids) == 0 {
		t.Fatalf("task A has no processes after the restart")
	}
	// Ask once the restarted agent has adopted the task and listens on its
	// VPC's metadata address again (it does so within its resync).
	waitMetadataListener(t, e, subnet)
	if err := os.WriteFile(filepath.Join(fmt.Sprintf("/proc/%d/root", pids[0]), "tmp", "again"), nil, 0o644); err != nil {
		t.Fatalf("signal task A: %v", err)
	}
	aLog = e.waitContainerLog(cluster, a, "app", "AGAINSTATS ", 30*time.Second)
	if again := metaLine(t, aLog, "AGAIN "); !strings.HasSuffix(again, " rc=0") || !strings.Contains(again, `"TaskARN":"`+a+`"`) ||
		!strings.Contains(again, `"DockerId":"`+self.DockerID+`"`) {
		t.Errorf("/task after a restart of berth: %s", again)
	}
	// The adopted container is known to run: its stats are read again.
	stats.MemoryStats.Usage, stats.MemoryStats.Limit, stats.Networks = 0, 0, nil
	if err := json.Unmarshal([]byte(body("AGAINSTATS")), &stats); err != nil || stats.MemoryStats.Limit != 512<<20 ||
		stats.MemoryStats.Usage == 0 || stats.Networks["eth0"].RxBytes == 0 {
		t.Errorf("/stats after a restart of berth: %v %+v", err, stats)
	}
}

// waitMetadataListener waits (up to 30 s) until 169.254.170.2:80 accepts
// connections inside the VPC namespace of subnet.
func waitMetadataListener(t *testing.T, e *devEnv, subnet string) {
	t.Helper()
	out, err := e.EC2.DescribeSubnets(e.ctx(), &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet}})
	if err != nil || len(out.Subnets) != 1 {
		t.Fatalf("describe subnet %s: %v", subnet, err)
	}
	vpcID := aws.ToString(out.Subnets[0].VpcId)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := netns.DialInVPC(ctx, vpcID, "tcp", "169.254.170.2:80")
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metadata endpoint of %s does not listen after the restart: %v", vpcID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
