package vpc

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// Parsing the permissions of AuthorizeSecurityGroupIngress/Egress and
// RevokeSecurityGroupIngress/Egress: the IpPermissions.N.* form SDKs send,
// and the older flat form (IpProtocol, FromPort, ToPort, CidrIp,
// SourceSecurityGroupName). Everything here is pure, so it is fuzzed.

// permission is one IpPermission of a request: a protocol and port range and
// the peers it names.
type permission struct {
	Protocol string
	FromPort int
	ToPort   int
	CIDRs    []peerCIDR
	Groups   []peerGroup
}

type peerCIDR struct {
	CIDR        string
	Description string
}

type peerGroup struct {
	GroupID     string
	GroupName   string
	UserID      string
	Description string
}

var flatPermissionParams = []string{"IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName",
	"SourceSecurityGroupOwnerId"}

// maxDescription is the longest rule description EC2 takes.
const maxDescription = 255

// parsePermissions reads a request's permissions, normalised: protocol
// names and numbers in one spelling, ports -1 where they do not apply,
// CIDRs checked. Whether the peer groups exist is the caller's to check.
func parsePermissions(p url.Values) ([]permission, error) {
	structs, err := protocol.QueryStructs(p, "IpPermissions")
	if err != nil {
		return nil, err
	}
	flat := ""
	for _, k := range flatPermissionParams {
		if p.Get(k) != "" {
			flat = k
			break
		}
	}
	if flat != "" && len(structs) > 0 {
		return nil, errCombination("The parameter 'IpPermissions' may not be used in combination with '%s'", flat)
	}
	if flat != "" {
		perm, err := parseFlatPermission(p)
		if err != nil {
			return nil, err
		}
		return []permission{perm}, nil
	}
	out := make([]permission, 0, len(structs))
	for _, e := range structs {
		perm, err := parseIPPermission(e)
		if err != nil {
			return nil, err
		}
		out = append(out, perm)
	}
	return out, nil
}

func parseFlatPermission(p url.Values) (permission, error) {
	proto := p.Get("IpProtocol")
	src := p.Get("SourceSecurityGroupName")
	if proto == "" {
		if src == "" {
			return permission{}, errMissing("IpProtocol")
		}
		proto = "-1" // a source group alone: all traffic from it
	}
	perm, err := portsAndProtocol(proto, p.Get("FromPort"), p.Get("ToPort"))
	if err != nil {
		return permission{}, err
	}
	if c := p.Get("CidrIp"); c != "" {
		if err := checkRuleCIDR(c); err != nil {
			return permission{}, err
		}
		perm.CIDRs = []peerCIDR{{CIDR: c}}
	}
	if src != "" {
		perm.Groups = []peerGroup{{GroupName: src, UserID: p.Get("SourceSecurityGroupOwnerId")}}
	}
	if len(perm.CIDRs) == 0 && len(perm.Groups) == 0 {
		return permission{}, errMissing("CidrIp")
	}
	return perm, nil
}

func parseIPPermission(e url.Values) (permission, error) {
	proto := e.Get("IpProtocol")
	if proto == "" {
		return permission{}, errMissing("IpPermissions.IpProtocol")
	}
	perm, err := portsAndProtocol(proto, e.Get("FromPort"), e.Get("ToPort"))
	if err != nil {
		return permission{}, err
	}
	ranges, err := protocol.QueryStructs(e, "IpRanges")
	if err != nil {
		return permission{}, err
	}
	for _, r := range ranges {
		c := r.Get("CidrIp")
		if c == "" {
			return permission{}, errMissing("IpRanges.CidrIp")
		}
		if err := checkRuleCIDR(c); err != nil {
			return permission{}, err
		}
		d := r.Get("Description")
		if err := checkDescription(d); err != nil {
			return permission{}, err
		}
		perm.CIDRs = append(perm.CIDRs, peerCIDR{CIDR: c, Description: d})
	}
	groups, err := protocol.QueryStructs(e, "Groups")
	if err != nil {
		return permission{}, err
	}
	for _, g := range groups {
		pg := peerGroup{GroupID: g.Get("GroupId"), GroupName: g.Get("GroupName"), UserID: g.Get("UserId"),
			Description: g.Get("Description")}
		if pg.GroupID == "" && pg.GroupName == "" {
			return permission{}, errMissing("Groups.GroupId")
		}
		if pg.GroupID != "" {
			if err := checkID(kindGroup, pg.GroupID); err != nil {
				return permission{}, err
			}
		}
		if g.Get("VpcPeeringConnectionId") != "" {
			return permission{}, errInvalidValue("VPC peering is not supported.")
		}
		if err := checkDescription(pg.Description); err != nil {
			return permission{}, err
		}
		perm.Groups = append(perm.Groups, pg)
	}
	for _, unsupported := range []string{"Ipv6Ranges", "PrefixListIds"} {
		if more, err := protocol.QueryStructs(e, unsupported); err != nil {
			return permission{}, err
		} else if len(more) > 0 {
			return permission{}, errInvalidValue("%s are not supported: use IpRanges (IPv4 CIDRs) or Groups.", unsupported)
		}
	}
	if len(perm.CIDRs) == 0 && len(perm.Groups) == 0 {
		return permission{}, errMissing("IpPermissions.IpRanges or IpPermissions.Groups")
	}
	return perm, nil
}

// normalizeProtocol spells an IP protocol the way rules store it: tcp, udp,
// icmp, icmpv6 by name, -1 for all ("all" and "-1"), any other a number
// 0–255.
func normalizeProtocol(s string) (string, error) {
	switch l := strings.ToLower(strings.TrimSpace(s)); l {
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "icmpv6", "58":
		return "icmpv6", nil
	case "-1", "all":
		return "-1", nil
	default:
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 || n > 255 || len(l) > 3 {
			return "", errInvalidValue("Invalid value '%s' for IP protocol. Unknown protocol.", s)
		}
		switch n { // "006" is tcp too
		case 6:
			return "tcp", nil
		case 17:
			return "udp", nil
		case 1:
			return "icmp", nil
		case 58:
			return "icmpv6", nil
		}
		return strconv.Itoa(n), nil
	}
}

// hasPorts reports whether a protocol's rules carry ports (or ICMP type and
// code).
func hasPorts(proto string) bool {
	switch proto {
	case "tcp", "udp", "icmp", "icmpv6":
		return true
	}
	return false
}

// portsAndProtocol checks a protocol and its port strings (which may be
// empty) and returns a permission with them normalised.
func portsAndProtocol(proto, from, to string) (permission, error) {
	np, err := normalizeProtocol(proto)
	if err != nil {
		return permission{}, err
	}
	perm := permission{Protocol: np, FromPort: -1, ToPort: -1}
	switch np {
	case "tcp", "udp":
		if from == "" || to == "" {
			return permission{}, errInvalidValue("Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange")
		}
		f, ferr := strconv.Atoi(from)
		t, terr := strconv.Atoi(to)
		if ferr != nil || terr != nil || f < 0 || f > 65535 || t < 0 || t > 65535 {
			return permission{}, errInvalidValue("Invalid value '%s-%s' for portRange. Ports must be from 0 to 65535.", from, to)
		}
		if f > t {
			return permission{}, errInvalidValue("Invalid value '%d-%d' for portRange. The from port must not be greater than the to port.", f, t)
		}
		perm.FromPort, perm.ToPort = f, t
	case "icmp", "icmpv6":
		f, t := -1, -1
		if from != "" {
			if f, err = strconv.Atoi(from); err != nil || f < -1 || f > 255 {
				return permission{}, errInvalidValue("Invalid value '%s' for ICMP type: it must be from -1 (any) to 255.", from)
			}
		}
		if to != "" {
			if t, err = strconv.Atoi(to); err != nil || t < -1 || t > 255 {
				return permission{}, errInvalidValue("Invalid value '%s' for ICMP code: it must be from -1 (any) to 255.", to)
			}
		}
		if f == -1 {
			t = -1 // any type: any code
		}
		perm.FromPort, perm.ToPort = f, t
	}
	return perm, nil
}

// checkRuleCIDR accepts an IPv4 block in canonical form ("10.0.0.0/16",
// "10.1.2.3/32").
func checkRuleCIDR(c string) error {
	_, canonical, err := parseIPv4Prefix(c)
	if err != nil || !canonical {
		return errInvalidValue("CIDR block %s is malformed", c)
	}
	return nil
}

func checkDescription(d string) error {
	if len(d) > maxDescription {
		return errInvalidValue("Invalid rule description: it may have at most %d characters.", maxDescription)
	}
	return nil
}
