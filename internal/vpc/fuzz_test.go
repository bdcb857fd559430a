package vpc

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParsePermissions: any form either fails with an API error or yields
// normalised permissions.
func FuzzParsePermissions(f *testing.F) {
	for _, seed := range []string{
		"IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=8080&IpPermissions.1.ToPort=8080&IpPermissions.1.Groups.1.GroupId=sg-0123456789abcdef0",
		"IpPermissions.1.IpProtocol=-1&IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0/0",
		"IpPermissions.1.IpProtocol=icmp&IpPermissions.1.FromPort=8&IpPermissions.1.ToPort=-1&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8",
		"IpProtocol=tcp&FromPort=22&ToPort=22&CidrIp=1.2.3.4/32",
		"SourceSecurityGroupName=web",
		"IpProtocol=006&FromPort=0&ToPort=65535&CidrIp=1.2.3.4/32",
		"IpPermissions.2.IpProtocol=udp&IpPermissions.2.FromPort=53&IpPermissions.2.ToPort=53&IpPermissions.2.IpRanges.3.CidrIp=10.0.0.0/8&IpPermissions.2.IpRanges.3.Description=dns",
		"IpPermissions.1.IpProtocol=50&IpPermissions.1.IpRanges.1.CidrIp=10.0.0.0/8",
		"IpPermissions.0.IpProtocol=tcp",
		"IpProtocol=tcp&FromPort=9&ToPort=1&CidrIp=1.0.0.0/8",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		perms, err := parsePermissions(p)
		if err != nil {
			if c := code(err); strings.HasPrefix(c, "internal:") {
				t.Fatalf("not an API error: %v", err)
			}
			return
		}
		for _, perm := range perms {
			if again, err := normalizeProtocol(perm.Protocol); err != nil || again != perm.Protocol {
				t.Fatalf("protocol %q not normalised", perm.Protocol)
			}
			if n, err := strconv.Atoi(perm.Protocol); err == nil && perm.Protocol != "-1" && (n < 0 || n > 255 || n == 6 || n == 17 || n == 1 || n == 58) {
				t.Fatalf("protocol %q", perm.Protocol)
			}
			switch perm.Protocol {
			case "tcp", "udp":
				if perm.FromPort < 0 || perm.ToPort > 65535 || perm.FromPort > perm.ToPort {
					t.Fatalf("ports %d-%d", perm.FromPort, perm.ToPort)
				}
			case "icmp", "icmpv6":
				if perm.FromPort < -1 || perm.FromPort > 255 || perm.ToPort < -1 || perm.ToPort > 255 {
					t.Fatalf("icmp %d/%d", perm.FromPort, perm.ToPort)
				}
			default:
				if perm.FromPort != -1 || perm.ToPort != -1 {
					t.Fatalf("ports on %s", perm.Protocol)
				}
			}
			if len(perm.CIDRs)+len(perm.Groups) == 0 {
				t.Fatal("a permission without peers")
			}
			for _, c := range perm.CIDRs {
				pfx, err := netip.ParsePrefix(c.CIDR)
				if err != nil || !pfx.Addr().Is4() || pfx.Masked() != pfx {
					t.Fatalf("cidr %q", c.CIDR)
				}
			}
		}
	})
}

// FuzzParseIPv4Prefix: a canonical block round-trips, and the address
// arithmetic on it stays inside it.
func FuzzParseIPv4Prefix(f *testing.F) {
	for _, seed := range []string{"10.0.0.0/16", "172.31.16.0/20", "10.0.0.1/24", "0.0.0.0/0", "1.2.3.4/32", "::/0", "10.0.0.0/016", "banana"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, canonical, err := parseIPv4Prefix(s)
		if err != nil {
			return
		}
		if !p.Addr().Is4() {
			t.Fatalf("%q: not IPv4", s)
		}
		if !canonical {
			return
		}
		if p.String() != s || p.Masked() != p {
			t.Fatalf("%q canonical but %s", s, p)
		}
		if p.Bits() < 24 { // keep the scan small
			return
		}
		first, last, ok := subnetRange(p)
		pool := &leasePool{leased: map[uint32]bool{}, pending: map[uint32]bool{}, cooling: map[uint32]time.Time{}}
		var free []uint32
		if ok {
			free = pool.free(first, last, 1<<10, time.Now())
		}
		if len(free) != usableCount(p) {
			t.Fatalf("%s: %d free of %d usable", p, len(free), usableCount(p))
		}
		for _, n := range free {
			a := addrOf(n)
			if !p.Contains(a) || a == p.Addr() || a == gateway(p) {
				t.Fatalf("%s: leasable %s", p, a)
			}
		}
	})
}

// FuzzGlobMatch: a pattern without wildcards matches exactly itself, and
// "*" around anything matches it.
func FuzzGlobMatch(f *testing.F) {
	for _, seed := range [][2]string{{"a*b", "aab"}, {"?", "x"}, {`\*`, "*"}, {"***", ""}, {"10.0.*", "10.0.1.0/24"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		_ = globMatch(pat, s)
		escaped := ""
		for _, r := range s {
			if r == '*' || r == '?' || r == '\\' {
				escaped += `\`
			}
			escaped += string(r)
		}
		if !globMatch(escaped, s) {
			t.Fatalf("%q does not match itself escaped (%q)", s, escaped)
		}
		if !globMatch("*"+escaped+"*", "x"+s+"y") {
			t.Fatalf("*%q* does not match", escaped)
		}
	})
}
