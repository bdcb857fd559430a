package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/vishvananda/netlink"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/netns"
)

// TestNetworkCleanup runs and stops 200 awsvpc tasks and then counts what
// is left of their networks: no sandbox namespace, VPC namespace, uplink,
// task cgroup, ENI, address lease, host route or sandbox record.
func TestNetworkCleanup(t *testing.T) {
	e := startDev(t)
	ctx := e.ctx()
	vpcOut, err := e.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.40.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpcOut.Vpc.VpcId)
	var subnets []string
	for i, az := range []string{"us-east-1a", "us-east-1b"} {
		out, err := e.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpcID), AvailabilityZone: aws.String(az),
			CidrBlock: aws.String([]string{"10.40.1.0/24", "10.40.2.0/24"}[i])})
		if err != nil {
			t.Fatal(err)
		}
		subnets = append(subnets, aws.ToString(out.Subnet.SubnetId))
	}
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("churn")}); err != nil {
		t.Fatal(err)
	}
	td := e.registerTask("churn", "256", "512", e.container("main", "true"))

	const total, perCall, inFlight = 200, 10, 4
	var arns []string
	for len(arns) < total {
		var mu sync.Mutex
		var batch []string
		var wg sync.WaitGroup
		for i := 0; i < inFlight && len(arns)+len(batch) < total; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := e.ECS.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("churn"), TaskDefinition: aws.String(td),
					Count: aws.Int32(perCall), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: &types.NetworkConfiguration{
						AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: subnets}}})
				if err != nil || len(out.Tasks) != perCall {
					t.Errorf("RunTask: %v %+v", err, out)
					return
				}
				mu.Lock()
				for _, task := range out.Tasks {
					batch = append(batch, aws.ToString(task.TaskArn))
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for i := 0; i < len(batch); i += 100 {
			w := ecs.NewTasksStoppedWaiter(e.ECS, func(o *ecs.TasksStoppedWaiterOptions) {
				o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
			})
			chunk := batch[i:min(i+100, len(batch))]
			if err := w.Wait(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("churn"), Tasks: chunk}, 2*time.Minute); err != nil {
				t.Fatalf("tasks did not stop: %v", err)
			}
			out, err := e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("churn"), Tasks: chunk})
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range out.Tasks {
				if len(task.Containers) != 1 || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 0 {
					t.Fatalf("task %s: %s %s", aws.ToString(task.TaskArn), task.StopCode, aws.ToString(task.StoppedReason))
				}
			}
		}
		arns = append(arns, batch...)
	}

	// The control plane: no ENI and every address free again.
	var left []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		left = left[:0]
		enis, err := e.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
			Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range enis.NetworkInterfaces {
			left = append(left, "ENI "+aws.ToString(n.NetworkInterfaceId))
		}
		sn, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sn.Subnets {
			if n := aws.ToInt32(s.AvailableIpAddressCount); n != 251 {
				left = append(left, "leases in "+aws.ToString(s.SubnetId))
			}
		}
		// The host: namespaces, uplinks, cgroups, routes, records.
		ids := map[string]bool{}
		for _, arn := range arns {
			ids[arn[strings.LastIndexByte(arn, '/')+1:]] = true
		}
		leftovers, err := netns.Leftovers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leftovers {
			if l.VpcID == vpcID || (l.Kind == "sandbox" && ids[strings.TrimPrefix(l.Name, "berth-")]) {
				left = append(left, l.String())
			}
		}
		for id := range ids {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", agent.CgroupPath(id))); err == nil {
				left = append(left, "cgroup of "+id)
			}
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		vpcNet := netip.MustParsePrefix("10.40.0.0/16")
		for _, r := range routes {
			if r.Dst != nil {
				if p, ok := netip.AddrFromSlice(r.Dst.IP); ok && vpcNet.Contains(p.Unmap()) {
					left = append(left, "host route "+r.Dst.String())
				}
			}
		}
		records, _ := os.ReadDir(filepath.Join(e.DataDir, "agent", "sandboxes"))
		for _, r := range records {
			left = append(left, "sandbox record "+r.Name())
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d tasks stopped, left behind: %v", len(arns), left)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
