package vpc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// The real AWS CLIs against the EC2 API through berth's protocol router:
// they must send what the handlers read and parse what they reply.

var awsCLIs = map[string]string{"v2": "/usr/bin/aws", "v1": "/root/.pyenv/shims/aws"}

// cliKeys authenticates access key "a" as one account and "b" as another,
// both with secret "secret".
type cliKeys map[string]string

func (k cliKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	if acct, ok := k[akid]; ok {
		return "secret", acct, nil
	}
	return "", "", protocol.ErrUnknownKey
}

type cliEnv struct {
	*env
	endpoint string
	bin      string
	home     string
}

func newCLIEnv(t *testing.T, version string) *cliEnv {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	bin := awsCLIs[version]
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("AWS CLI %s not installed at %s", version, bin)
	}
	e := newEnv(t)
	router := protocol.NewRouter(cliKeys{"a": e.acct, "b": newAccount()}, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddQueryService(e.s.QueryService())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config"), []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cliEnv{env: e, endpoint: srv.URL, bin: bin, home: home}
}

// aws runs the CLI as key ("a" or "b"); it returns stdout, stderr and
// whether it exited 0.
func (c *cliEnv) aws(key string, args ...string) (string, string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + c.home,
		"AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(c.home, "credentials"),
		"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err == nil
}

// ok runs a command as account "a" that must succeed and decodes its output.
func (c *cliEnv) ok(v any, args ...string) {
	c.t.Helper()
	out, errOut, ok := c.aws("a", args...)
	if !ok {
		c.t.Fatalf("aws %s: %s", strings.Join(args, " "), errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s: output %q: %v", strings.Join(args, " "), out, err)
		}
	}
}

// fails runs a command as key that must fail with code; it returns stderr.
func (c *cliEnv) fails(key, code string, args ...string) string {
	c.t.Helper()
	_, errOut, ok := c.aws(key, args...)
	if ok || !strings.Contains(errOut, "("+code+")") {
		c.t.Fatalf("aws %s: want error %s, got ok=%v %s", strings.Join(args, " "), code, ok, errOut)
	}
	return errOut
}

type cliTag struct{ Key, Value string }

func TestAWSCLIv2(t *testing.T) {
	c := newCLIEnv(t, "v2")
	var vpc struct {
		Vpc struct {
			VpcId, CidrBlock, State, OwnerId string
			IsDefault                        bool
			Tags                             []cliTag
			CidrBlockAssociationSet          []struct{ CidrBlock string }
		}
	}
	c.ok(&vpc, "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=main}]")
	v := vpc.Vpc
	if !validID(v.VpcId, "vpc") || v.CidrBlock != "10.0.0.0/16" || v.State != "available" || v.OwnerId != c.acct || v.IsDefault ||
		len(v.Tags) != 1 || v.Tags[0] != (cliTag{"Name", "main"}) || len(v.CidrBlockAssociationSet) != 1 {
		t.Errorf("create-vpc: %+v", v)
	}
	type cliSubnet struct {
		SubnetId, VpcId, CidrBlock, AvailabilityZone, AvailabilityZoneId, State, SubnetArn, OwnerId string
		AvailableIpAddressCount                                                                     int
		MapPublicIpOnLaunch, DefaultForAz                                                           bool
	}
	var sn struct{ Subnet cliSubnet }
	c.ok(&sn, "ec2", "create-subnet", "--vpc-id", v.VpcId, "--cidr-block", "10.0.1.0/24", "--availability-zone", "us-east-1a")
	a := sn.Subnet
	c.ok(&sn, "ec2", "create-subnet", "--vpc-id", v.VpcId, "--cidr-block", "10.0.2.0/26", "--availability-zone-id", "use1-az2")
	b := sn.Subnet
	if a.AvailableIpAddressCount != 251 || a.AvailabilityZoneId != "use1-az1" || b.AvailabilityZone != "us-east-1b" ||
		a.SubnetArn != "arn:aws:ec2:us-east-1:"+c.acct+":subnet/"+a.SubnetId || a.State != "available" || a.OwnerId != c.acct {
		t.Errorf("create-subnet: %+v %+v", a, b)
	}
	errOut := c.fails("a", "InvalidSubnet.Conflict", "ec2", "create-subnet", "--vpc-id", v.VpcId, "--cidr-block", "10.0.1.0/25")
	if !strings.Contains(errOut, "when calling the CreateSubnet operation: The CIDR '10.0.1.0/25' conflicts with another subnet") {
		t.Errorf("stderr %q", errOut)
	}
	c.fails("a", "InvalidSubnet.Range", "ec2", "create-subnet", "--vpc-id", v.VpcId, "--cidr-block", "10.1.0.0/24")

	var subnets struct{ Subnets []cliSubnet }
	c.ok(&subnets, "ec2", "describe-subnets", "--filters", "Name=vpc-id,Values="+v.VpcId, "Name=availability-zone,Values=us-east-1a,us-east-1b")
	if len(subnets.Subnets) != 2 {
		t.Errorf("describe-subnets: %+v", subnets)
	}
	c.ok(&subnets, "ec2", "describe-subnets", "--subnet-ids", b.SubnetId)
	if len(subnets.Subnets) != 1 || subnets.Subnets[0].AvailableIpAddressCount != 59 {
		t.Errorf("describe-subnets --subnet-ids: %+v", subnets)
	}
	c.ok(nil, "ec2", "modify-subnet-attribute", "--subnet-id", b.SubnetId, "--map-public-ip-on-launch")
	c.ok(&subnets, "ec2", "describe-subnets", "--subnet-ids", b.SubnetId)
	if !subnets.Subnets[0].MapPublicIpOnLaunch {
		t.Errorf("modify-subnet-attribute did not take: %+v", subnets.Subnets[0])
	}

	var group struct{ GroupId string }
	c.ok(&group, "ec2", "create-security-group", "--group-name", "web", "--description", "web servers", "--vpc-id", v.VpcId)
	web := group.GroupId
	c.ok(&group, "ec2", "create-security-group", "--group-name", "client", "--description", "clients", "--vpc-id", v.VpcId)
	client := group.GroupId
	c.fails("a", "InvalidGroup.Duplicate", "ec2", "create-security-group", "--group-name", "web", "--description", "x", "--vpc-id", v.VpcId)

	var auth struct {
		Return             bool
		SecurityGroupRules []struct {
			SecurityGroupRuleId, GroupId, IpProtocol string
			FromPort, ToPort                         int
			IsEgress                                 bool
			ReferencedGroupInfo                      struct{ GroupId string }
			CidrIpv4                                 string
		}
	}
	c.ok(&auth, "ec2", "authorize-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "8080", "--source-group", client)
	if !auth.Return || len(auth.SecurityGroupRules) != 1 || auth.SecurityGroupRules[0].ReferencedGroupInfo.GroupId != client ||
		auth.SecurityGroupRules[0].FromPort != 8080 || auth.SecurityGroupRules[0].IpProtocol != "tcp" {
		t.Errorf("authorize --source-group: %+v", auth)
	}
	c.ok(&auth, "ec2", "authorize-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "80-81", "--cidr", "0.0.0.0/0")
	if len(auth.SecurityGroupRules) != 1 || auth.SecurityGroupRules[0].CidrIpv4 != "0.0.0.0/0" || auth.SecurityGroupRules[0].ToPort != 81 {
		t.Errorf("authorize --cidr: %+v", auth)
	}
	c.ok(nil, "ec2", "authorize-security-group-ingress", "--group-id", web, "--ip-permissions",
		`IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.0.0.0/8,Description=dns}]`)
	c.fails("a", "InvalidPermission.Duplicate", "ec2", "authorize-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "8080", "--source-group", client)

	type cliPerm struct {
		IpProtocol       string
		FromPort, ToPort *int
		IpRanges         []struct{ CidrIp, Description string }
		UserIdGroupPairs []struct{ GroupId, UserId string }
	}
	var groups struct {
		SecurityGroups []struct {
			GroupId, GroupName, Description, VpcId, OwnerId string
			IpPermissions, IpPermissionsEgress              []cliPerm
		}
	}
	c.ok(&groups, "ec2", "describe-security-groups", "--group-ids", web)
	if len(groups.SecurityGroups) != 1 {
		t.Fatalf("describe-security-groups: %+v", groups)
	}
	g := groups.SecurityGroups[0]
	if g.GroupName != "web" || g.Description != "web servers" || g.VpcId != v.VpcId || len(g.IpPermissions) != 3 ||
		len(g.IpPermissionsEgress) != 1 || g.IpPermissionsEgress[0].IpProtocol != "-1" || g.IpPermissionsEgress[0].FromPort != nil {
		t.Errorf("describe-security-groups: %+v", g)
	}
	for _, p := range g.IpPermissions {
		if p.IpProtocol == "tcp" && *p.FromPort == 8080 && (len(p.UserIdGroupPairs) != 1 || p.UserIdGroupPairs[0].GroupId != client || p.UserIdGroupPairs[0].UserId != c.acct) {
			t.Errorf("8080 permission: %+v", p)
		}
		if p.IpProtocol == "udp" && (len(p.IpRanges) != 1 || p.IpRanges[0].Description != "dns") {
			t.Errorf("udp permission: %+v", p)
		}
	}
	var rules struct {
		SecurityGroupRules []struct {
			SecurityGroupRuleId, GroupId, IpProtocol, CidrIpv4 string
			IsEgress                                           bool
		}
	}
	c.ok(&rules, "ec2", "describe-security-group-rules", "--filters", "Name=group-id,Values="+web)
	if len(rules.SecurityGroupRules) != 4 { // 8080 from client, 80-81, 53/udp, egress all
		t.Errorf("describe-security-group-rules: %+v", rules)
	}
	c.ok(&groups, "ec2", "describe-security-groups", "--filters", "Name=vpc-id,Values="+v.VpcId, "Name=group-name,Values=default")
	if len(groups.SecurityGroups) != 1 || groups.SecurityGroups[0].IpPermissions[0].UserIdGroupPairs[0].GroupId != groups.SecurityGroups[0].GroupId {
		t.Errorf("default group: %+v", groups)
	}

	// A task's ENI, as ECS makes it.
	eni, err := c.s.AttachENI(context.Background(), c.acct, "us-east-1", "0f1e2d3c-aaaa-4bbb-8ccc-123456789abc", "node-1",
		[]string{a.SubnetId}, []string{web}, true)
	if err != nil {
		t.Fatal(err)
	}
	var enis struct {
		NetworkInterfaces []struct {
			NetworkInterfaceId, SubnetId, VpcId, AvailabilityZone, Description, InterfaceType, MacAddress string
			PrivateIpAddress, PrivateDnsName, Status, OwnerId                                             string
			RequesterManaged                                                                              bool
			Groups                                                                                        []struct{ GroupId, GroupName string }
			Association                                                                                   struct{ PublicIp string }
			Attachment                                                                                    struct{ Status, AttachmentId string }
			PrivateIpAddresses                                                                            []struct {
				PrivateIpAddress string
				Primary          bool
			}
		}
	}
	c.ok(&enis, "ec2", "describe-network-interfaces", "--filters", "Name=addresses.private-ip-address,Values="+eni.PrivateIP)
	if len(enis.NetworkInterfaces) != 1 {
		t.Fatalf("describe-network-interfaces: %+v", enis)
	}
	x := enis.NetworkInterfaces[0]
	if x.NetworkInterfaceId != eni.ID || x.PrivateIpAddress != eni.PrivateIP || x.SubnetId != a.SubnetId || x.VpcId != v.VpcId ||
		x.Description != "arn:aws:ecs:us-east-1:"+c.acct+":attachment/0f1e2d3c-aaaa-4bbb-8ccc-123456789abc" ||
		x.InterfaceType != "interface" || x.MacAddress != eni.MAC || x.Status != "in-use" || !x.RequesterManaged ||
		len(x.Groups) != 1 || x.Groups[0].GroupName != "web" || x.Association.PublicIp != eni.PublicIP || x.Association.PublicIp == "" ||
		x.Attachment.Status != "attached" || len(x.PrivateIpAddresses) != 1 || !x.PrivateIpAddresses[0].Primary ||
		x.PrivateDnsName != eni.PrivateDNSName || x.AvailabilityZone != "us-east-1a" {
		t.Errorf("describe-network-interfaces: %+v", x)
	}
	c.fails("a", "DependencyViolation", "ec2", "delete-vpc", "--vpc-id", v.VpcId)
	c.fails("a", "DependencyViolation", "ec2", "delete-subnet", "--subnet-id", a.SubnetId)
	c.fails("a", "DependencyViolation", "ec2", "delete-security-group", "--group-id", client) // referenced by web's rule

	c.ok(nil, "ec2", "revoke-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "8080", "--source-group", client)
	c.fails("a", "InvalidPermission.NotFound", "ec2", "revoke-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "8080", "--source-group", client)
	c.ok(nil, "ec2", "delete-security-group", "--group-id", client)

	var zones struct {
		AvailabilityZones []struct{ ZoneName, ZoneId, State, RegionName, ZoneType, GroupName, NetworkBorderGroup string }
	}
	c.ok(&zones, "ec2", "describe-availability-zones")
	if len(zones.AvailabilityZones) != 3 || zones.AvailabilityZones[0].ZoneName != "us-east-1a" || zones.AvailabilityZones[0].ZoneId != "use1-az1" ||
		zones.AvailabilityZones[0].State != "available" || zones.AvailabilityZones[0].ZoneType != "availability-zone" ||
		zones.AvailabilityZones[0].RegionName != "us-east-1" || zones.AvailabilityZones[0].NetworkBorderGroup != "us-east-1" {
		t.Errorf("describe-availability-zones: %+v", zones)
	}

	c.ok(nil, "ec2", "create-tags", "--resources", v.VpcId, a.SubnetId, "--tags", "Key=env,Value=dev")
	var vpcs struct {
		Vpcs []struct {
			VpcId     string
			IsDefault bool
			Tags      []cliTag
		}
	}
	c.ok(&vpcs, "ec2", "describe-vpcs", "--filters", "Name=tag:env,Values=d?v")
	if len(vpcs.Vpcs) != 1 || vpcs.Vpcs[0].VpcId != v.VpcId || len(vpcs.Vpcs[0].Tags) != 2 {
		t.Errorf("describe-vpcs by tag: %+v", vpcs)
	}
	c.ok(nil, "ec2", "delete-tags", "--resources", v.VpcId, "--tags", "Key=env")
	c.ok(&vpcs, "ec2", "describe-vpcs", "--vpc-ids", v.VpcId)
	if len(vpcs.Vpcs[0].Tags) != 1 {
		t.Errorf("after delete-tags: %+v", vpcs)
	}
	// The default VPC, and the CLI's own paging over MaxResults/NextToken.
	c.ok(&vpcs, "ec2", "describe-vpcs", "--filters", "Name=isDefault,Values=true")
	if len(vpcs.Vpcs) != 1 || !vpcs.Vpcs[0].IsDefault {
		t.Errorf("default vpc: %+v", vpcs)
	}
	c.ok(&subnets, "ec2", "describe-subnets", "--page-size", "5")
	if len(subnets.Subnets) != 5 {
		t.Errorf("paged describe-subnets: %d subnets, want 5", len(subnets.Subnets))
	}

	// Another account sees none of it.
	errOut = c.fails("b", "InvalidVpcID.NotFound", "ec2", "describe-vpcs", "--vpc-ids", v.VpcId)
	if !strings.Contains(errOut, "The vpc ID '"+v.VpcId+"' does not exist") {
		t.Errorf("stderr %q", errOut)
	}
	c.fails("b", "InvalidGroup.NotFound", "ec2", "authorize-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "1", "--cidr", "0.0.0.0/0")

	if err := c.s.ReleaseENI(context.Background(), c.acct, "us-east-1", eni.AttachmentID); err != nil {
		t.Fatal(err)
	}
	c.ok(nil, "ec2", "delete-subnet", "--subnet-id", a.SubnetId)
	c.ok(nil, "ec2", "delete-subnet", "--subnet-id", b.SubnetId)
	c.ok(nil, "ec2", "delete-security-group", "--group-id", web)
	c.ok(nil, "ec2", "delete-vpc", "--vpc-id", v.VpcId)
}

// TestAWSCLIv1 reads the describe replies with CLI v1.
func TestAWSCLIv1(t *testing.T) {
	c := newCLIEnv(t, "v1")
	var subnets struct {
		Subnets []struct {
			SubnetId                string
			AvailableIpAddressCount int
			DefaultForAz            bool
		}
	}
	c.ok(&subnets, "ec2", "describe-subnets")
	if len(subnets.Subnets) != 3 || !subnets.Subnets[0].DefaultForAz || subnets.Subnets[0].AvailableIpAddressCount != 4091 {
		t.Errorf("describe-subnets: %+v", subnets)
	}
	var groups struct {
		SecurityGroups []struct {
			GroupName     string
			IpPermissions []struct {
				IpProtocol       string
				UserIdGroupPairs []struct{ GroupId string }
			}
		}
	}
	c.ok(&groups, "ec2", "describe-security-groups", "--group-names", "default")
	if len(groups.SecurityGroups) != 1 || groups.SecurityGroups[0].IpPermissions[0].UserIdGroupPairs[0].GroupId == "" {
		t.Errorf("describe-security-groups: %+v", groups)
	}
	var group struct{ GroupId string }
	c.ok(&group, "ec2", "create-security-group", "--group-name", "web", "--description", "web")
	c.ok(nil, "ec2", "authorize-security-group-ingress", "--group-id", group.GroupId, "--protocol", "tcp", "--port", "443", "--cidr", "0.0.0.0/0")
	c.ok(nil, "ec2", "authorize-security-group-ingress", "--group-name", "web", "--protocol", "all", "--source-group", "default")
	c.fails("a", "InvalidPermission.Duplicate", "ec2", "authorize-security-group-ingress", "--group-id", group.GroupId, "--protocol", "tcp", "--port", "443", "--cidr", "0.0.0.0/0")
	var enis struct{ NetworkInterfaces []any }
	c.ok(&enis, "ec2", "describe-network-interfaces")
	if enis.NetworkInterfaces == nil || len(enis.NetworkInterfaces) != 0 {
		t.Errorf("describe-network-interfaces: %+v", enis)
	}
}
