package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Firewall is the security-group policy of one ENI, every source group
// already resolved to addresses: the union of the rules of all its groups.
// It is enforced inside the task's sandbox namespace, where the task's
// containers (without NET_ADMIN) cannot change it.
//
// Ingress is denied unless an Ingress rule allows it by its source address;
// egress is denied unless an Egress rule allows it by its destination
// address (a group's default egress rule, -1 to 0.0.0.0/0, allows all).
// Always allowed: return traffic of allowed flows and ICMP errors about
// them (conntrack established/related), loopback, and egress to the task
// metadata endpoint MetadataAddr tcp/80. Conntrack-invalid packets and all
// IPv6 traffic other than loopback are dropped.
type Firewall struct {
	Ingress []Rule
	Egress  []Rule
}

// Rule allows one protocol and port range from (ingress) or to (egress)
// a set of IPv4 prefixes.
type Rule struct {
	// Protocol is "-1" (or "all"), "tcp", "udp", "icmp", or an IP protocol
	// number ("6", "17" and "1" mean tcp, udp and icmp).
	Protocol string
	// FromPort and ToPort are the inclusive destination port range for tcp
	// and udp (-1 and -1: every port); for icmp the ICMP type and code
	// (-1: any). They are ignored for other protocols and for "-1".
	FromPort, ToPort int
	// CIDRs are the peers. An empty list matches nothing (a source group
	// without members); IPv6 prefixes never match, since IPv6 is dropped.
	CIDRs []netip.Prefix
}

// sandboxTable is the nftables table (family inet) of a sandbox.
const sandboxTable = "berth"

// ApplyFirewall replaces the sandbox's firewall with fw in one nftables
// transaction: the chains are flushed and refilled in one batch, so packets
// see either the old policy or the new one, never a mix. Rules with the
// same protocol and ports are merged into one nftables rule that matches
// its peers through an anonymous interval set, so a group with many
// members costs one set lookup. Established flows survive a change; new
// ones follow the new rules at once.
func ApplyFirewall(sb *Sandbox, fw Firewall) error {
	p, err := compileFirewall(fw)
	if err != nil {
		return fmt.Errorf("firewall of %s: %w", sb.Name, err)
	}
	if err := applyPlan(sb, p); err != nil {
		return fmt.Errorf("firewall of %s: %w", sb.Name, err)
	}
	return nil
}

// The table and its chains are created once and then only flushed and
// refilled: a batch that (re)declares an existing chain, or deletes a
// table, makes the kernel wait for an RCU grace period (7 to 16 ms here),
// while a flush and refill commits in well under a millisecond.

func applyPlan(sb *Sandbox, p firewallPlan) error {
	err := writePlan(sb, p, false)
	if errors.Is(err, unix.ENOENT) {
		// No table yet (a sandbox without AttachENI): create it, in one
		// batch with the rules.
		err = writePlan(sb, p, true)
	}
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// writePlan sends one batch: the table and chains if declare, then the
// chains flushed and refilled.
func writePlan(sb *Sandbox, p firewallPlan, declare bool) error {
	c, closeConn, err := sandboxNFT(sb)
	if err != nil {
		return err
	}
	defer closeConn()
	t, in, out := sandboxChains()
	if declare {
		declareFirewall(c, t, in, out, false)
	}
	if err := fillFirewall(c, t, in, out, p); err != nil {
		return err
	}
	return c.Flush()
}

// ensureBaseFirewall installs the empty policy (nothing in, nothing out
// but the metadata endpoint) unless the sandbox already has a firewall. A
// policy applied concurrently is never overwritten: the table is created
// exclusively.
func ensureBaseFirewall(sb *Sandbox) error {
	c, closeConn, err := sandboxNFT(sb)
	if err != nil {
		return fmt.Errorf("base firewall of %s: %w", sb.Name, err)
	}
	defer closeConn()
	if ok, err := tableExists(c, nftables.TableFamilyINet, sandboxTable); err != nil || ok {
		return err
	}
	t, in, out := sandboxChains()
	declareFirewall(c, t, in, out, true)
	if err := fillFirewall(c, t, in, out, firewallPlan{}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("base firewall of %s: nftables: %w", sb.Name, err)
	}
	return nil
}

func sandboxNFT(sb *Sandbox) (*nftables.Conn, func(), error) {
	fd, err := unix.Open(sb.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", sb.path, err)
	}
	c, err := nftConnAt(fd)
	unix.Close(fd) // the connection's socket holds the namespace
	if err != nil {
		return nil, nil, err
	}
	return c, func() { closeNFT(c) }, nil
}

func sandboxChains() (*nftables.Table, *nftables.Chain, *nftables.Chain) {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: sandboxTable}
	policy := nftables.ChainPolicyDrop
	in := &nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policy}
	out := &nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &policy}
	return t, in, out
}

// declareFirewall adds the table (exclusively: the batch fails with EEXIST
// if it exists) and its chains to the batch.
func declareFirewall(c *nftables.Conn, t *nftables.Table, in, out *nftables.Chain, exclusive bool) {
	if exclusive {
		c.CreateTable(t)
	} else {
		c.AddTable(t)
	}
	c.AddChain(in)
	c.AddChain(out)
}

// fillFirewall adds to the batch: flush both chains, then the fixed rules
// and the plan's.
func fillFirewall(c *nftables.Conn, t *nftables.Table, in, out *nftables.Chain, p firewallPlan) error {
	c.FlushChain(in)
	c.FlushChain(out)
	add := func(ch *nftables.Chain, exprs []expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	for _, ch := range []*nftables.Chain{in, out} {
		lo := expr.MetaKeyIIFNAME
		if ch == out {
			lo = expr.MetaKeyOIFNAME
		}
		add(ch, rule(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(accept())))
		add(ch, rule(ctState(expr.CtStateBitINVALID), verdict(drop())))
		add(ch, rule(ifnameIs(lo, "lo"), verdict(accept())))
		add(ch, rule(isIPv4(expr.CmpOpNeq), verdict(drop())))
	}
	// The "meta nfproto ipv4" repeated before IP header matches is what
	// lets nft list them as "ip saddr …" rather than raw payload.
	add(out, rule(isIPv4(expr.CmpOpEq), ipAddrIs(ipDstOffset, MetadataAddr), l4proto(unix.IPPROTO_TCP), dportIn(80, 80), verdict(accept())))

	setID := uint32(0)
	for _, dir := range []struct {
		ch     *nftables.Chain
		offset uint32
		rules  []plannedRule
	}{{in, ipSrcOffset, p.ingress}, {out, ipDstOffset, p.egress}} {
		for _, r := range dir.rules {
			peers, err := peerMatch(c, t, dir.offset, r.peers, &setID)
			if err != nil {
				return err
			}
			if peers != nil {
				peers = append(isIPv4(expr.CmpOpEq), peers...)
			}
			add(dir.ch, rule(r.proto.exprs(), peers, verdict(accept())))
		}
	}
	return nil
}

// peerMatch matches the address at offset against the ranges: nothing for
// everything, one comparison for one range, else an anonymous interval set
// added to the batch (it lives and dies with its rule).
func peerMatch(c *nftables.Conn, t *nftables.Table, offset uint32, peers []ipRange, setID *uint32) ([]expr.Any, error) {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	switch {
	case len(peers) == 1 && peers[0].lo == 0 && peers[0].hi == ^uint32(0):
		return nil, nil
	case len(peers) == 1 && peers[0].lo == peers[0].hi:
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be32(peers[0].lo)}}, nil
	case len(peers) == 1:
		return []expr.Any{load, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be32(peers[0].lo), ToData: be32(peers[0].hi)}}, nil
	}
	elems := make([]nftables.SetElement, 0, 2*len(peers))
	for _, r := range peers {
		elems = append(elems, nftables.SetElement{Key: be32(r.lo)})
		if r.hi != ^uint32(0) {
			elems = append(elems, nftables.SetElement{Key: be32(r.hi + 1), IntervalEnd: true})
		}
	}
	// The id only has to be unique within the batch; setting it keeps
	// google/nftables from touching its global id counter, which is not
	// safe for concurrent use.
	*setID++
	s := &nftables.Set{Table: t, Name: "__set%d", ID: *setID, Anonymous: true, Constant: true,
		Interval: true, KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(s, elems); err != nil {
		return nil, fmt.Errorf("peer set: %w", err)
	}
	return []expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}}, nil
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// firewallPlan is a validated Firewall with rules merged by what they
// match and peers merged into disjoint address ranges.
type firewallPlan struct {
	ingress, egress []plannedRule
}

type plannedRule struct {
	proto protoMatch
	peers []ipRange // sorted, disjoint, not adjacent; never empty
}

// protoMatch is what a rule matches besides its peers. proto -1 is any
// protocol; for tcp and udp a, b are the port range; for icmp a is the
// type and b the code (-1: any).
type protoMatch struct {
	proto int
	a, b  int
}

func (m protoMatch) exprs() []expr.Any {
	switch m.proto {
	case -1:
		return nil
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP:
		e := l4proto(byte(m.proto))
		if m.a == 0 && m.b == 65535 {
			return e
		}
		return append(e, dportIn(uint16(m.a), uint16(m.b))...)
	case unix.IPPROTO_ICMP:
		e := l4proto(unix.IPPROTO_ICMP)
		if m.a >= 0 {
			e = append(e, thByteIs(thICMPTypeOffset, byte(m.a))...)
			if m.b >= 0 {
				e = append(e, thByteIs(thICMPCodeOffset, byte(m.b))...)
			}
		}
		return e
	default:
		return l4proto(byte(m.proto))
	}
}

type ipRange struct{ lo, hi uint32 }

func compileFirewall(fw Firewall) (firewallPlan, error) {
	in, err := compileRules(fw.Ingress)
	if err != nil {
		return firewallPlan{}, fmt.Errorf("ingress: %w", err)
	}
	out, err := compileRules(fw.Egress)
	if err != nil {
		return firewallPlan{}, fmt.Errorf("egress: %w", err)
	}
	return firewallPlan{ingress: in, egress: out}, nil
}

// compileRules validates rules, merges those with the same match and
// merges their peers. The order of the result is deterministic (the order
// in which each match first appears): rules only accept, so order does not
// change the policy.
func compileRules(rules []Rule) ([]plannedRule, error) {
	var order []protoMatch
	peers := map[protoMatch][]ipRange{}
	for i, r := range rules {
		m, err := parseMatch(r)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
		if _, seen := peers[m]; !seen {
			order = append(order, m)
			peers[m] = nil
		}
		for _, p := range r.CIDRs {
			if !p.IsValid() {
				return nil, fmt.Errorf("rule %d: invalid CIDR", i+1)
			}
			if !p.Addr().Is4() {
				continue // IPv6 is dropped before the rules
			}
			p = p.Masked()
			lo := ipv4Uint(p.Addr())
			hi := lo | ^uint32(0)>>p.Bits() // a shift by 32 gives 0
			peers[m] = append(peers[m], ipRange{lo, hi})
		}
	}
	var out []plannedRule
	for _, m := range order {
		if merged := mergeRanges(peers[m]); len(merged) > 0 {
			out = append(out, plannedRule{proto: m, peers: merged})
		}
	}
	return out, nil
}

// mergeRanges sorts ranges and joins overlapping and adjacent ones: an
// nftables interval set must not hold overlapping intervals.
func mergeRanges(rs []ipRange) []ipRange {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b ipRange) int {
		if a.lo != b.lo {
			if a.lo < b.lo {
				return -1
			}
			return 1
		}
		return 0
	})
	out := []ipRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if last.hi == ^uint32(0) || r.lo <= last.hi+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func parseMatch(r Rule) (protoMatch, error) {
	proto, err := parseProtocol(r.Protocol)
	if err != nil {
		return protoMatch{}, err
	}
	switch proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP:
		from, to := r.FromPort, r.ToPort
		if from == -1 && to == -1 {
			from, to = 0, 65535
		}
		if from < 0 || to > 65535 || from > to {
			return protoMatch{}, fmt.Errorf("invalid port range %d-%d", r.FromPort, r.ToPort)
		}
		return protoMatch{proto, from, to}, nil
	case unix.IPPROTO_ICMP:
		typ, code := r.FromPort, r.ToPort
		if typ < -1 || typ > 255 || code < -1 || code > 255 {
			return protoMatch{}, fmt.Errorf("invalid icmp type %d code %d", typ, code)
		}
		if typ == -1 {
			code = -1
		}
		return protoMatch{proto, typ, code}, nil
	default:
		return protoMatch{proto: proto}, nil
	}
}

func parseProtocol(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "-1", "all":
		return -1, nil
	case "tcp":
		return unix.IPPROTO_TCP, nil
	case "udp":
		return unix.IPPROTO_UDP, nil
	case "icmp":
		return unix.IPPROTO_ICMP, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("invalid protocol %q", s)
	}
	return n, nil
}
