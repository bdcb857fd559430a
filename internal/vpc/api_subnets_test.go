package vpc

import (
	"strings"
	"sync"
	"testing"
)

func TestCreateSubnet(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	r := ok[*createSubnetResult](e, "CreateSubnet", "VpcId", v, "CidrBlock", "10.0.1.0/24", "AvailabilityZone", "us-east-1b",
		"TagSpecification.1.ResourceType", "subnet", "TagSpecification.1.Tag.1.Key", "Name", "TagSpecification.1.Tag.1.Value", "web")
	sn := r.Subnet
	if sn.CidrBlock != "10.0.1.0/24" || sn.AvailabilityZone != "us-east-1b" || sn.AvailabilityZoneID != "use1-az2" ||
		sn.AvailableIPAddressCount != 251 || sn.DefaultForAz || sn.MapPublicIPOnLaunch || sn.State != "available" ||
		sn.VpcID != v || sn.OwnerID != e.acct || len(sn.TagSet) != 1 || !validID(sn.SubnetID, "subnet") {
		t.Errorf("created %+v", sn)
	}
	if got := ok[*createSubnetResult](e, "CreateSubnet", "VpcId", v, "CidrBlock", "10.0.2.0/28").Subnet; got.AvailabilityZone != "us-east-1a" || got.AvailableIPAddressCount != 11 {
		t.Errorf("default zone / count: %+v", got)
	}
	if got := ok[*createSubnetResult](e, "CreateSubnet", "VpcId", v, "CidrBlock", "10.0.3.0/24", "AvailabilityZoneId", "use1-az3").Subnet; got.AvailabilityZone != "us-east-1c" {
		t.Errorf("by zone id: %+v", got)
	}
	// A subnet may span the whole VPC's block only if nothing else is in it.
	w := e.createVpc("10.5.0.0/24")
	e.createSubnet(w, "10.5.0.0/24", "")

	for _, tt := range []struct {
		name string
		kv   []string
		code string
	}{
		{"overlap", []string{"VpcId", v, "CidrBlock", "10.0.1.0/24"}, codeSubnetConflict},
		{"overlap larger", []string{"VpcId", v, "CidrBlock", "10.0.0.0/22"}, codeSubnetConflict},
		{"overlap smaller", []string{"VpcId", v, "CidrBlock", "10.0.1.128/25"}, codeSubnetConflict},
		{"outside vpc", []string{"VpcId", v, "CidrBlock", "10.1.0.0/24"}, codeSubnetRange},
		{"larger than vpc", []string{"VpcId", w, "CidrBlock", "10.5.0.0/16"}, codeSubnetRange},
		{"too small", []string{"VpcId", v, "CidrBlock", "10.0.9.0/29"}, codeSubnetRange},
		{"host bits", []string{"VpcId", v, "CidrBlock", "10.0.9.1/24"}, codeSubnetRange},
		{"not a cidr", []string{"VpcId", v, "CidrBlock", "10.0.9.0"}, codeInvalidParameterValue},
		{"no cidr", []string{"VpcId", v}, codeMissingParameter},
		{"no vpc", []string{"CidrBlock", "10.0.9.0/24"}, codeMissingParameter},
		{"unknown vpc", []string{"VpcId", "vpc-0123456789abcdef0", "CidrBlock", "10.0.9.0/24"}, codeVpcNotFound},
		{"malformed vpc", []string{"VpcId", "vpc-0123", "CidrBlock", "10.0.9.0/24"}, codeVpcMalformed},
		{"bad zone", []string{"VpcId", v, "CidrBlock", "10.0.9.0/24", "AvailabilityZone", "us-east-1z"}, codeInvalidParameterValue},
		{"bad zone id", []string{"VpcId", v, "CidrBlock", "10.0.9.0/24", "AvailabilityZoneId", "use1-az9"}, codeInvalidParameterValue},
		{"zone and id", []string{"VpcId", v, "CidrBlock", "10.0.9.0/24", "AvailabilityZone", "us-east-1a", "AvailabilityZoneId", "use1-az1"}, codeInvalidParameterCombo},
		{"ipv6", []string{"VpcId", v, "CidrBlock", "10.0.9.0/24", "Ipv6CidrBlock", "fd00::/64"}, codeInvalidParameterValue},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := e.fails(tt.code, "CreateSubnet", tt.kv...)
			switch tt.code {
			case codeSubnetConflict:
				if msg != "The CIDR '"+tt.kv[3]+"' conflicts with another subnet" {
					t.Errorf("message %q", msg)
				}
			case codeSubnetRange:
				if msg != "The CIDR '"+tt.kv[3]+"' is invalid." {
					t.Errorf("message %q", msg)
				}
			}
		})
	}
	msg := e.fails(codeInvalidParameterValue, "CreateSubnet", "VpcId", v, "CidrBlock", "10.0.9.0/24", "AvailabilityZone", "us-east-1z")
	if msg != "Value (us-east-1z) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: us-east-1a, us-east-1b, us-east-1c." {
		t.Errorf("zone message %q", msg)
	}
	if n := len(ok[*describeSubnetsResult](e, "DescribeSubnets", "Filter.1.Name", "vpc-id", "Filter.1.Value.1", v).Subnets); n != 3 {
		t.Errorf("%d subnets in the vpc: a failed call changed state", n)
	}
}

// TestCreateSubnetRace creates overlapping subnets concurrently: exactly one
// of each overlapping set wins.
func TestCreateSubnetRace(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cidr := []string{"10.0.0.0/24", "10.0.0.0/23", "10.0.0.128/25"}[i%3]
			_, err := e.call("CreateSubnet", "VpcId", v, "CidrBlock", cidr)
			mu.Lock()
			codes[code(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[""] != 1 || codes[codeSubnetConflict] != 11 {
		t.Errorf("outcomes %v, want one success and 11 conflicts", codes)
	}
}

func TestDescribeSubnets(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	a := e.createSubnet(v, "10.0.1.0/24", "us-east-1a")
	b := e.createSubnet(v, "10.0.2.0/24", "us-east-1b")
	ok[*returnXML](e, "CreateTags", "ResourceId.1", a, "ResourceId.2", b, "Tag.1.Key", "tier", "Tag.1.Value", "web")
	ids := func(kv ...string) string {
		var out []string
		for _, sn := range ok[*describeSubnetsResult](e, "DescribeSubnets", kv...).Subnets {
			out = append(out, sn.SubnetID)
		}
		return strings.Join(out, ",")
	}
	ab := strings.Join(sortedBy([]string{a, b}, func(s *string) string { return *s }), ",")
	for _, tt := range []struct {
		name string
		kv   []string
		want string
	}{
		{"ids", []string{"SubnetId.1", a, "SubnetId.2", b}, ab},
		{"vpc-id", []string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", v}, ab},
		{"two vpcs", []string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", v, "Filter.1.Value.2", "vpc-00000000"}, ab},
		{"subnet-id", []string{"Filter.1.Name", "subnet-id", "Filter.1.Value.1", b}, b},
		{"az", []string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", v, "Filter.2.Name", "availability-zone", "Filter.2.Value.1", "us-east-1b"}, b},
		{"cidr wildcard", []string{"Filter.1.Name", "cidr-block", "Filter.1.Value.1", "10.0.?.0/24"}, ab},
		{"cidr", []string{"Filter.1.Name", "cidr", "Filter.1.Value.1", "10.0.1.0/24"}, a},
		{"default-for-az", []string{"Filter.1.Name", "default-for-az", "Filter.1.Value.1", "true", "Filter.2.Name", "availability-zone", "Filter.2.Value.1", "us-east-1a"}, ""},
		{"tag", []string{"Filter.1.Name", "tag:tier", "Filter.1.Value.1", "w*"}, ab},
		{"tag miss", []string{"Filter.1.Name", "tag:tier", "Filter.1.Value.1", "db"}, ""},
		{"escaped star", []string{"Filter.1.Name", "tag:tier", "Filter.1.Value.1", `w\*`}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(tt.kv...)
			if tt.name == "default-for-az" {
				if strings.Contains(got, a) || got == "" {
					t.Errorf("default-for-az: %s", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	msg := e.fails(codeSubnetNotFound, "DescribeSubnets", "SubnetId.1", "subnet-0123456789abcdef0")
	if msg != "The subnet ID 'subnet-0123456789abcdef0' does not exist" {
		t.Errorf("message %q", msg)
	}
	e.fails(codeSubnetMalformed, "DescribeSubnets", "SubnetId.1", "sub-1")
	e.fails(codeMissingParameter, "DescribeSubnets", "Filter.1.Value.1", "x")
	e.fails(codeInvalidParameterValue, "DescribeSubnets", "Filter.1.Name", "vpc-id")
	// Paging across the 3 default subnets and the 2 above.
	first := ok[*describeSubnetsResult](e, "DescribeSubnets", "MaxResults", "5")
	if len(first.Subnets) != 5 || first.NextToken != "" {
		t.Errorf("one page of 5: %d, token %q", len(first.Subnets), first.NextToken)
	}
}

func TestModifyAndDeleteSubnet(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.1.0/24", "")
	ok[*returnXML](e, "ModifySubnetAttribute", "SubnetId", sn, "MapPublicIpOnLaunch.Value", "true")
	if !e.subnet(sn).MapPublicIPOnLaunch {
		t.Error("MapPublicIpOnLaunch not set")
	}
	if got := ok[*describeSubnetsResult](e, "DescribeSubnets", "Filter.1.Name", "map-public-ip-on-launch", "Filter.1.Value.1", "true",
		"Filter.2.Name", "vpc-id", "Filter.2.Value.1", v).Subnets; len(got) != 1 {
		t.Errorf("filter map-public-ip-on-launch: %d", len(got))
	}
	ok[*returnXML](e, "ModifySubnetAttribute", "SubnetId", sn, "MapPublicIpOnLaunch.Value", "false")
	if e.subnet(sn).MapPublicIPOnLaunch {
		t.Error("MapPublicIpOnLaunch not cleared")
	}
	e.fails(codeMissingParameter, "ModifySubnetAttribute", "SubnetId", sn)
	e.fails(codeInvalidParameterValue, "ModifySubnetAttribute", "SubnetId", sn, "MapPublicIpOnLaunch.Value", "yes")
	e.fails(codeSubnetNotFound, "ModifySubnetAttribute", "SubnetId", "subnet-0123456789abcdef0", "MapPublicIpOnLaunch.Value", "true")

	ok[*returnXML](e, "DeleteSubnet", "SubnetId", sn)
	e.fails(codeSubnetNotFound, "DeleteSubnet", "SubnetId", sn)
	e.fails(codeMissingParameter, "DeleteSubnet")
	// The CIDR is free again.
	e.createSubnet(v, "10.0.1.0/24", "")
}
