package vpc

import (
	"reflect"
	"strings"
	"testing"
)

func TestTags(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/24", "")
	g := e.createGroup(v, "web")
	ok[*returnXML](e, "CreateTags", "ResourceId.1", v, "ResourceId.2", sn, "ResourceId.3", g,
		"Tag.1.Key", "Name", "Tag.1.Value", "x", "Tag.2.Key", "env", "Tag.2.Value", "")
	for _, tags := range [][]tagXML{e.vpc(v).TagSet, e.subnet(sn).TagSet, e.group(g).TagSet} {
		if len(tags) != 2 || tags[0] != (tagXML{"Name", "x"}) || tags[1] != (tagXML{"env", ""}) {
			t.Errorf("tags %+v", tags)
		}
	}
	// Overwrite one, delete by key with a value that does not match, then
	// with one that does.
	ok[*returnXML](e, "CreateTags", "ResourceId.1", v, "Tag.1.Key", "Name", "Tag.1.Value", "y")
	ok[*returnXML](e, "DeleteTags", "ResourceId.1", v, "Tag.1.Key", "Name", "Tag.1.Value", "x")
	if tags := e.vpc(v).TagSet; len(tags) != 2 || tags[0].Value != "y" {
		t.Errorf("after overwrite and non-matching delete: %+v", tags)
	}
	ok[*returnXML](e, "DeleteTags", "ResourceId.1", v, "Tag.1.Key", "Name")
	if tags := e.vpc(v).TagSet; len(tags) != 1 || tags[0].Key != "env" {
		t.Errorf("after delete: %+v", tags)
	}
	ok[*returnXML](e, "DeleteTags", "ResourceId.1", sn)
	if tags := e.subnet(sn).TagSet; len(tags) != 0 {
		t.Errorf("delete all: %+v", tags)
	}

	// Bad input changes nothing, on any of the resources.
	for _, tt := range []struct {
		name string
		kv   []string
		code string
	}{
		{"unknown vpc", []string{"ResourceId.1", g, "ResourceId.2", "vpc-0123456789abcdef0", "Tag.1.Key", "k"}, codeVpcNotFound},
		{"unknown subnet", []string{"ResourceId.1", "subnet-0123456789abcdef0", "Tag.1.Key", "k"}, codeSubnetNotFound},
		{"unknown eni", []string{"ResourceId.1", "eni-0123456789abcdef0", "Tag.1.Key", "k"}, codeENINotFound},
		{"other kind", []string{"ResourceId.1", "i-0123456789abcdef0", "Tag.1.Key", "k"}, codeInvalidID},
		{"malformed", []string{"ResourceId.1", "vpc-zz", "Tag.1.Key", "k"}, codeVpcMalformed},
		{"aws prefix", []string{"ResourceId.1", g, "Tag.1.Key", "aws:k"}, codeInvalidParameterValue},
		{"long key", []string{"ResourceId.1", g, "Tag.1.Key", strings.Repeat("k", 128)}, codeInvalidParameterValue},
		{"long value", []string{"ResourceId.1", g, "Tag.1.Key", "k", "Tag.1.Value", strings.Repeat("v", 256)}, codeInvalidParameterValue},
		{"no tags", []string{"ResourceId.1", g}, codeMissingParameter},
		{"no resources", []string{"Tag.1.Key", "k"}, codeMissingParameter},
	} {
		t.Run(tt.name, func(t *testing.T) { e.fails(tt.code, "CreateTags", tt.kv...) })
	}
	if tags := e.group(g).TagSet; len(tags) != 2 {
		t.Errorf("failed CreateTags changed the group's tags: %+v", tags)
	}
	// At most 50 tags.
	kv := []string{"ResourceId.1", sn}
	for i := 0; i < 50; i++ {
		k := "k" + strings.Join(intVal(i), "")
		kv = append(kv, "Tag."+strings.Join(intVal(i+1), "")+".Key", k)
	}
	ok[*returnXML](e, "CreateTags", kv...)
	e.fails(codeTagLimitExceeded, "CreateTags", "ResourceId.1", sn, "Tag.1.Key", "one-more")
}

func TestDescribeAvailabilityZones(t *testing.T) {
	e := newEnv(t)
	zs := ok[*describeZonesResult](e, "DescribeAvailabilityZones").AvailabilityZones
	if len(zs) != 3 {
		t.Fatalf("%d zones", len(zs))
	}
	for i, z := range zs {
		want := zoneXML{ZoneName: "us-east-1" + string(rune('a'+i)), ZoneID: "use1-az" + string(rune('1'+i)), ZoneState: "available",
			RegionName: "us-east-1", GroupName: "us-east-1", NetworkBorderGroup: "us-east-1", OptInStatus: "opt-in-not-required",
			ZoneType: "availability-zone"}
		want.MessageSet = items[struct{}]{}
		if !reflect.DeepEqual(z, want) {
			t.Errorf("zone %d: %+v, want %+v", i, z, want)
		}
	}
	if zs := ok[*describeZonesResult](e, "DescribeAvailabilityZones", "ZoneName.1", "us-east-1b").AvailabilityZones; len(zs) != 1 || zs[0].ZoneID != "use1-az2" {
		t.Errorf("by name: %+v", zs)
	}
	if zs := ok[*describeZonesResult](e, "DescribeAvailabilityZones", "Filter.1.Name", "zone-id", "Filter.1.Value.1", "*az3").AvailabilityZones; len(zs) != 1 || zs[0].ZoneName != "us-east-1c" {
		t.Errorf("by filter: %+v", zs)
	}
	e.fails(codeInvalidParameterValue, "DescribeAvailabilityZones", "ZoneName.1", "us-east-1d")
	ap := callerCtx(e.acct, "ap-southeast-2")
	if zs := okAs[*describeZonesResult](e, ap, "DescribeAvailabilityZones").AvailabilityZones; zs[2].ZoneName != "ap-southeast-2c" || zs[2].ZoneID != "apse2-az3" {
		t.Errorf("ap-southeast-2: %+v", zs[2])
	}
}

func TestRegionCode(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "use1", "us-west-2": "usw2", "eu-central-1": "euc1", "ap-northeast-1": "apne1",
		"ap-southeast-2": "apse2", "sa-east-1": "sae1", "ca-central-1": "cac1", "local": "local",
	} {
		if got := regionCode(region); got != want {
			t.Errorf("regionCode(%s) = %s, want %s", region, got, want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
		{`a\?`, "a?", true},
		{`a\\`, `a\`, true},
		{`a\`, `a\`, true},
		{"10.0.*", "10.0.1.0/24", true},
		{"ü?", "üx", true},
		{"**a", "a", true},
	} {
		if got := globMatch(tt.pat, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}
