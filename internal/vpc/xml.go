package vpc

import (
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// The EC2 reply shapes, element names as in the EC2 API model (botocore's
// ec2 service-2.json locationName), which is what the CLI and SDKs parse by.

type items[T any] = protocol.ItemList[T]

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// tagSetXML is a resource's tagSet, left out when it has no tags (as EC2
// does).
func tagSetXML(tags []tag) items[tagXML] {
	if len(tags) == 0 {
		return nil
	}
	out := make(items[tagXML], len(tags))
	for i, t := range tags {
		out[i] = tagXML(t)
	}
	return out
}

type stateXML struct {
	State string `xml:"state"`
}

type returnXML struct {
	Return bool `xml:"return"`
}

var returnTrue = &returnXML{Return: true}

// --- VPCs ---

type vpcXML struct {
	VpcID                   string              `xml:"vpcId"`
	OwnerID                 string              `xml:"ownerId"`
	State                   string              `xml:"state"`
	CidrBlock               string              `xml:"cidrBlock"`
	CidrBlockAssociationSet items[cidrAssocXML] `xml:"cidrBlockAssociationSet"`
	DhcpOptionsID           string              `xml:"dhcpOptionsId"`
	InstanceTenancy         string              `xml:"instanceTenancy"`
	IsDefault               bool                `xml:"isDefault"`
	TagSet                  items[tagXML]       `xml:"tagSet,omitempty"`

	tags []tag
}

type cidrAssocXML struct {
	AssociationID  string   `xml:"associationId"`
	CidrBlock      string   `xml:"cidrBlock"`
	CidrBlockState stateXML `xml:"cidrBlockState"`
}

func (sc scope) vpcXML(v *vpcRecord) vpcXML {
	return vpcXML{
		VpcID: v.ID, OwnerID: sc.account, State: "available", CidrBlock: v.CIDR,
		CidrBlockAssociationSet: items[cidrAssocXML]{{AssociationID: v.AssociationID, CidrBlock: v.CIDR,
			CidrBlockState: stateXML{State: "associated"}}},
		DhcpOptionsID: "default", InstanceTenancy: "default", IsDefault: v.IsDefault,
		TagSet: tagSetXML(v.Tags), tags: v.Tags,
	}
}

type createVpcResult struct {
	Vpc vpcXML `xml:"vpc"`
}

type describeVpcsResult struct {
	Vpcs      items[vpcXML] `xml:"vpcSet"`
	NextToken string        `xml:"nextToken,omitempty"`
}

// --- subnets ---

type subnetXML struct {
	SubnetID                      string               `xml:"subnetId"`
	SubnetArn                     string               `xml:"subnetArn"`
	VpcID                         string               `xml:"vpcId"`
	OwnerID                       string               `xml:"ownerId"`
	State                         string               `xml:"state"`
	CidrBlock                     string               `xml:"cidrBlock"`
	AvailableIPAddressCount       int                  `xml:"availableIpAddressCount"`
	AvailabilityZone              string               `xml:"availabilityZone"`
	AvailabilityZoneID            string               `xml:"availabilityZoneId"`
	DefaultForAz                  bool                 `xml:"defaultForAz"`
	MapPublicIPOnLaunch           bool                 `xml:"mapPublicIpOnLaunch"`
	MapCustomerOwnedIPOnLaunch    bool                 `xml:"mapCustomerOwnedIpOnLaunch"`
	AssignIpv6AddressOnCreation   bool                 `xml:"assignIpv6AddressOnCreation"`
	Ipv6CidrBlockAssociationSet   items[struct{}]      `xml:"ipv6CidrBlockAssociationSet"`
	EnableDNS64                   bool                 `xml:"enableDns64"`
	Ipv6Native                    bool                 `xml:"ipv6Native"`
	PrivateDNSNameOptionsOnLaunch privateDNSOptionsXML `xml:"privateDnsNameOptionsOnLaunch"`
	TagSet                        items[tagXML]        `xml:"tagSet,omitempty"`

	tags []tag
}

type privateDNSOptionsXML struct {
	HostnameType                    string `xml:"hostnameType"`
	EnableResourceNameDNSARecord    bool   `xml:"enableResourceNameDnsARecord"`
	EnableResourceNameDNSAAAARecord bool   `xml:"enableResourceNameDnsAAAARecord"`
}

func (sc scope) subnetXML(sn *subnetRecord, available int) subnetXML {
	z, _ := findZone(sc.region, sn.Zone, false)
	return subnetXML{
		SubnetID: sn.ID, SubnetArn: sc.arn("subnet/" + sn.ID), VpcID: sn.VpcID, OwnerID: sc.account,
		State: "available", CidrBlock: sn.CIDR, AvailableIPAddressCount: available,
		AvailabilityZone: sn.Zone, AvailabilityZoneID: z.ID, DefaultForAz: sn.DefaultForAz,
		MapPublicIPOnLaunch:           sn.MapPublicIP,
		Ipv6CidrBlockAssociationSet:   items[struct{}]{},
		PrivateDNSNameOptionsOnLaunch: privateDNSOptionsXML{HostnameType: "ip-name"},
		TagSet:                        tagSetXML(sn.Tags), tags: sn.Tags,
	}
}

type createSubnetResult struct {
	Subnet subnetXML `xml:"subnet"`
}

type describeSubnetsResult struct {
	Subnets   items[subnetXML] `xml:"subnetSet"`
	NextToken string           `xml:"nextToken,omitempty"`
}

// --- security groups ---

type groupXML struct {
	OwnerID             string                 `xml:"ownerId"`
	GroupID             string                 `xml:"groupId"`
	GroupName           string                 `xml:"groupName"`
	GroupDescription    string                 `xml:"groupDescription"`
	VpcID               string                 `xml:"vpcId"`
	IPPermissions       items[ipPermissionXML] `xml:"ipPermissions"`
	IPPermissionsEgress items[ipPermissionXML] `xml:"ipPermissionsEgress"`
	TagSet              items[tagXML]          `xml:"tagSet,omitempty"`

	tags []tag
}

type ipPermissionXML struct {
	IPProtocol    string              `xml:"ipProtocol"`
	FromPort      *int                `xml:"fromPort,omitempty"`
	ToPort        *int                `xml:"toPort,omitempty"`
	Groups        items[groupPairXML] `xml:"groups"`
	IPRanges      items[ipRangeXML]   `xml:"ipRanges"`
	Ipv6Ranges    items[struct{}]     `xml:"ipv6Ranges"`
	PrefixListIDs items[struct{}]     `xml:"prefixListIds"`
}

type groupPairXML struct {
	UserID      string `xml:"userId"`
	GroupID     string `xml:"groupId"`
	Description string `xml:"description,omitempty"`
}

type ipRangeXML struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

func (sc scope) groupXML(g *groupRecord) groupXML {
	return groupXML{
		OwnerID: sc.account, GroupID: g.ID, GroupName: g.Name, GroupDescription: g.Description, VpcID: g.VpcID,
		IPPermissions:       sc.permissionsXML(g.Rules, false),
		IPPermissionsEgress: sc.permissionsXML(g.Rules, true),
		TagSet:              tagSetXML(g.Tags), tags: g.Tags,
	}
}

// permissionsXML gathers the rules of one direction into EC2's
// IpPermissions: one per protocol and port range, listing its peers.
func (sc scope) permissionsXML(rules []ruleRecord, egress bool) items[ipPermissionXML] {
	out := items[ipPermissionXML]{}
	type key struct {
		proto    string
		from, to int
	}
	index := map[key]int{}
	for _, r := range rules {
		if r.Egress != egress {
			continue
		}
		k := key{r.Protocol, r.FromPort, r.ToPort}
		i, ok := index[k]
		if !ok {
			p := ipPermissionXML{IPProtocol: r.Protocol, Groups: items[groupPairXML]{}, IPRanges: items[ipRangeXML]{},
				Ipv6Ranges: items[struct{}]{}, PrefixListIDs: items[struct{}]{}}
			if hasPorts(r.Protocol) {
				p.FromPort, p.ToPort = ptr(r.FromPort), ptr(r.ToPort)
			}
			out = append(out, p)
			i = len(out) - 1
			index[k] = i
		}
		if r.CIDR != "" {
			out[i].IPRanges = append(out[i].IPRanges, ipRangeXML{CidrIP: r.CIDR, Description: r.Description})
		} else {
			out[i].Groups = append(out[i].Groups, groupPairXML{UserID: sc.account, GroupID: r.SourceGroup, Description: r.Description})
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

type createSecurityGroupResult struct {
	GroupID string        `xml:"groupId"`
	TagSet  items[tagXML] `xml:"tagSet,omitempty"`
}

type describeSecurityGroupsResult struct {
	SecurityGroups items[groupXML] `xml:"securityGroupInfo"`
	NextToken      string          `xml:"nextToken,omitempty"`
}

type ruleXML struct {
	SecurityGroupRuleID string         `xml:"securityGroupRuleId"`
	GroupID             string         `xml:"groupId"`
	GroupOwnerID        string         `xml:"groupOwnerId"`
	IsEgress            bool           `xml:"isEgress"`
	IPProtocol          string         `xml:"ipProtocol"`
	FromPort            int            `xml:"fromPort"`
	ToPort              int            `xml:"toPort"`
	CidrIpv4            string         `xml:"cidrIpv4,omitempty"`
	ReferencedGroupInfo *referencedXML `xml:"referencedGroupInfo,omitempty"`
	Description         string         `xml:"description,omitempty"`
	TagSet              items[tagXML]  `xml:"tagSet"`
}

type referencedXML struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

func (sc scope) ruleXML(groupID string, r ruleRecord) ruleXML {
	x := ruleXML{SecurityGroupRuleID: r.ID, GroupID: groupID, GroupOwnerID: sc.account, IsEgress: r.Egress,
		IPProtocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort, CidrIpv4: r.CIDR, Description: r.Description,
		TagSet: items[tagXML]{}}
	if r.SourceGroup != "" {
		x.ReferencedGroupInfo = &referencedXML{GroupID: r.SourceGroup, UserID: sc.account}
	}
	return x
}

type authorizeResult struct {
	Return             bool           `xml:"return"`
	SecurityGroupRules items[ruleXML] `xml:"securityGroupRuleSet"`
}

type describeRulesResult struct {
	SecurityGroupRules items[ruleXML] `xml:"securityGroupRuleSet"`
	NextToken          string         `xml:"nextToken,omitempty"`
}

// --- network interfaces ---

type eniXML struct {
	NetworkInterfaceID    string                `xml:"networkInterfaceId"`
	SubnetID              string                `xml:"subnetId"`
	VpcID                 string                `xml:"vpcId"`
	AvailabilityZone      string                `xml:"availabilityZone"`
	Description           string                `xml:"description"`
	OwnerID               string                `xml:"ownerId"`
	RequesterID           string                `xml:"requesterId"`
	RequesterManaged      bool                  `xml:"requesterManaged"`
	Status                string                `xml:"status"`
	MacAddress            string                `xml:"macAddress"`
	PrivateIPAddress      string                `xml:"privateIpAddress"`
	PrivateDNSName        string                `xml:"privateDnsName"`
	SourceDestCheck       bool                  `xml:"sourceDestCheck"`
	InterfaceType         string                `xml:"interfaceType"`
	GroupSet              items[groupIdentXML]  `xml:"groupSet"`
	Attachment            eniAttachmentXML      `xml:"attachment"`
	Association           *eniAssociationXML    `xml:"association,omitempty"`
	TagSet                items[tagXML]         `xml:"tagSet"`
	PrivateIPAddressesSet items[privateAddrXML] `xml:"privateIpAddressesSet"`
	Ipv6AddressesSet      items[struct{}]       `xml:"ipv6AddressesSet"`

	tags []tag
}

type groupIdentXML struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type eniAttachmentXML struct {
	AttachmentID        string    `xml:"attachmentId"`
	AttachTime          time.Time `xml:"attachTime"`
	DeleteOnTermination bool      `xml:"deleteOnTermination"`
	DeviceIndex         int       `xml:"deviceIndex"`
	NetworkCardIndex    int       `xml:"networkCardIndex"`
	InstanceOwnerID     string    `xml:"instanceOwnerId"`
	Status              string    `xml:"status"`
}

type eniAssociationXML struct {
	PublicIP      string `xml:"publicIp"`
	PublicDNSName string `xml:"publicDnsName"`
	IPOwnerID     string `xml:"ipOwnerId"`
}

type privateAddrXML struct {
	PrivateIPAddress string             `xml:"privateIpAddress"`
	PrivateDNSName   string             `xml:"privateDnsName"`
	Primary          bool               `xml:"primary"`
	Association      *eniAssociationXML `xml:"association,omitempty"`
}

// requesterECS is the requesterId of the interfaces ECS manages.
const requesterECS = "amazon-ecs"

// requesterELB manages load balancers' interfaces.
const requesterELB = "amazon-elb"

func (sc scope) eniXML(r *eniRecord, groupNames map[string]string) eniXML {
	e := r.ENI
	x := eniXML{
		NetworkInterfaceID: e.ID, SubnetID: e.SubnetID, VpcID: e.VpcID, AvailabilityZone: e.AvailabilityZone,
		Description: "arn:aws:ecs:" + sc.region + ":" + sc.account + ":attachment/" + e.AttachmentID,
		OwnerID:     sc.account, RequesterID: requesterECS, RequesterManaged: true, Status: "in-use",
		MacAddress: e.MAC, PrivateIPAddress: e.PrivateIP, PrivateDNSName: e.PrivateDNSName, SourceDestCheck: true,
		InterfaceType: "interface",
		Attachment: eniAttachmentXML{AttachmentID: eniAttachmentID(e.ID), AttachTime: r.Attached.UTC(), DeviceIndex: 1,
			InstanceOwnerID: requesterECS, Status: "attached"},
		TagSet: tagSetOrEmpty(r.Tags), Ipv6AddressesSet: items[struct{}]{}, tags: r.Tags,
	}
	// A load balancer's interface (internal/elb attaches them as
	// "elb-<lb-id>-<subnet-id>" and names them with SetENIDescription).
	if rest, ok := strings.CutPrefix(e.AttachmentID, "elb-"); ok {
		lbID, _, _ := strings.Cut(rest, "-")
		x.Description = "ELB " + lbID
		x.RequesterID, x.Attachment.InstanceOwnerID = requesterELB, requesterELB
	}
	if r.Description != "" {
		x.Description = r.Description
	}
	for _, g := range e.SecurityGroups {
		x.GroupSet = append(x.GroupSet, groupIdentXML{GroupID: g, GroupName: groupNames[g]})
	}
	if x.GroupSet == nil {
		x.GroupSet = items[groupIdentXML]{}
	}
	if e.PublicIP != "" {
		x.Association = &eniAssociationXML{PublicIP: e.PublicIP, IPOwnerID: "amazon"}
	}
	x.PrivateIPAddressesSet = items[privateAddrXML]{{PrivateIPAddress: e.PrivateIP, PrivateDNSName: e.PrivateDNSName,
		Primary: true, Association: x.Association}}
	return x
}

func tagSetOrEmpty(tags []tag) items[tagXML] {
	if t := tagSetXML(tags); t != nil {
		return t
	}
	return items[tagXML]{}
}

type describeENIsResult struct {
	NetworkInterfaces items[eniXML] `xml:"networkInterfaceSet"`
	NextToken         string        `xml:"nextToken,omitempty"`
}

// --- availability zones ---

type zoneXML struct {
	ZoneName           string          `xml:"zoneName"`
	ZoneID             string          `xml:"zoneId"`
	ZoneState          string          `xml:"zoneState"`
	RegionName         string          `xml:"regionName"`
	GroupName          string          `xml:"groupName"`
	NetworkBorderGroup string          `xml:"networkBorderGroup"`
	OptInStatus        string          `xml:"optInStatus"`
	ZoneType           string          `xml:"zoneType"`
	MessageSet         items[struct{}] `xml:"messageSet"`
}

type describeZonesResult struct {
	AvailabilityZones items[zoneXML] `xml:"availabilityZoneInfo"`
}

// sortedBy sorts items by key, in place, and returns them.
func sortedBy[T any](in []T, key func(*T) string) []T {
	slices.SortFunc(in, func(a, b T) int {
		ka, kb := key(&a), key(&b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return in
}
