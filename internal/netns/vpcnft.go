package netns

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The VPC namespace's nftables: two tables, both driven by the ENI links'
// aliases (eniRecord), so the kernel is their only state.
//
//	table inet berth-vpc          what crosses the uplink
//	  set nat                     addresses of ENIs with NAT egress
//	  chain forward, input        from the uplink: return traffic only;
//	                              to the uplink: only from @nat, else drop
//	  chain postrouting (nat)     masquerade to the uplink address
//	table bridge berth-ports      source check on the bridge ports (ENIs)
//	  set enis                    port . MAC . address of every ENI
//	  chain prerouting            IPv4 and ARP only, and only with the
//	                              port's own MAC and address; policy drop
//
// The source check is AWS's source/destination check: a task (which has
// CAP_NET_RAW by default) cannot send with another task's address or MAC,
// so security-group rules that admit sources by address, and ARP, can be
// trusted. It sits where the task cannot reach: on the VPC side of its
// veth, which also covers packets that packet sockets send past the
// sandbox's own IP hooks.

const (
	vpcTable     = "berth-vpc"
	natSetName   = "nat"
	vpcPortTable = "berth-ports"
	portSetName  = "enis"
)

// Registers: concatenations are loaded into consecutive 32-bit registers
// (NFT_REG32_00 is 8): the 16-byte interface name into 8–11, a MAC into
// 12–13 (padded to 8 bytes), an IPv4 address into 14.
const (
	regPortName = 8
	regPortMAC  = 12
	regPortIP   = 14
)

var portKeyType = nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr, nftables.TypeIPAddr)

func vpcSets() (natSet, portSet *nftables.Set) {
	inet := &nftables.Table{Family: nftables.TableFamilyINet, Name: vpcTable}
	bridge := &nftables.Table{Family: nftables.TableFamilyBridge, Name: vpcPortTable}
	// Ids only need to be unique within a batch (see peerMatch).
	return &nftables.Set{Table: inet, Name: natSetName, ID: 1, KeyType: nftables.TypeIPAddr},
		&nftables.Set{Table: bridge, Name: portSetName, ID: 2, KeyType: portKeyType, Concatenation: true}
}

// portKey is the source-check key of an ENI: its VPC end's name, the MAC
// of its eth0 and its address.
func portKey(e eniLink) []byte {
	k := make([]byte, 0, portKeyType.Bytes)
	k = append(k, ifname(e.link.Attrs().Name)...)
	k = append(k, e.mac...)
	k = append(k, 0, 0)
	a := e.addr.As4()
	return append(k, a[:]...)
}

// syncTables writes the VPC's tables: with full the whole of both (chains,
// rules, sets), else only the sets. The sets are made to match the ENI
// links by adding and deleting only the difference, so that the common
// attach adds a few elements and deletes nothing (deletions make the next
// transaction in the namespace wait, see closeNFT), and one that changes
// nothing sends nothing.
func (v *vpcNS) syncTables(full bool) error {
	enis, err := v.enis()
	if err != nil {
		return err
	}
	wantNAT := map[string][]byte{}
	wantPorts := map[string][]byte{}
	for _, e := range enis {
		if !e.valid || !e.addr.Is4() {
			continue
		}
		a := e.addr.As4()
		if e.nat {
			wantNAT[string(a[:])] = a[:]
		}
		k := portKey(e)
		wantPorts[string(k)] = k
	}
	c, err := nftConnAt(v.fd)
	if err != nil {
		return err
	}
	defer closeNFT(c)
	nat, ports := vpcSets()
	if full {
		declareVPCTables(c, nat, ports)
		c.FlushSet(nat)
		c.FlushSet(ports)
	}
	changed := full
	for _, s := range []struct {
		set  *nftables.Set
		want map[string][]byte
	}{{nat, wantNAT}, {ports, wantPorts}} {
		ch, err := diffSet(c, s.set, s.want, full)
		if err != nil {
			return fmt.Errorf("set %s: %w", s.set.Name, err)
		}
		changed = changed || ch
	}
	if !changed {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables in VPC namespace: %w", err)
	}
	return nil
}

// diffSet adds to the batch what makes the set hold exactly want (keys by
// their bytes); empty says the set is known to be empty. It reports
// whether it added anything.
func diffSet(c *nftables.Conn, s *nftables.Set, want map[string][]byte, empty bool) (bool, error) {
	have := map[string]bool{}
	if !empty {
		elems, err := c.GetSetElements(s)
		if err != nil {
			return false, err
		}
		for _, e := range elems {
			have[string(e.Key)] = true
		}
	}
	var add, del []nftables.SetElement
	for k, key := range want {
		if !have[k] {
			add = append(add, nftables.SetElement{Key: key})
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			del = append(del, nftables.SetElement{Key: []byte(k)})
		}
	}
	if len(del) > 0 {
		if err := c.SetDeleteElements(s, del); err != nil {
			return false, err
		}
	}
	if len(add) > 0 {
		if err := c.SetAddElements(s, add); err != nil {
			return false, err
		}
	}
	return len(add)+len(del) > 0, nil
}

// declareVPCTables adds both tables to the batch, their chains flushed and
// refilled (only when a VPC namespace is set up: redeclaring chains is
// slow, see applyPlan).
func declareVPCTables(c *nftables.Conn, nat, ports *nftables.Set) {
	t := nat.Table
	c.AddTable(t)
	_ = c.AddSet(nat, nil) // errors only for anonymous or malformed sets
	policyAccept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policyAccept})
	in := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policyAccept})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &policyAccept})
	for _, ch := range []*nftables.Chain{fwd, in, post} {
		c.FlushChain(ch)
	}
	add := func(ch *nftables.Chain, e []expr.Any) {
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e})
	}
	fromUplink := ifnameIs(expr.MetaKeyIIFNAME, uplinkName)
	toUplink := ifnameIs(expr.MetaKeyOIFNAME, uplinkName)
	returning := ctState(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
	// In from the host: return traffic only, to the tasks and to the
	// namespace itself.
	add(fwd, rule(fromUplink, returning, verdict(accept())))
	add(fwd, rule(fromUplink, verdict(drop())))
	add(in, rule(fromUplink, returning, verdict(accept())))
	add(in, rule(fromUplink, verdict(drop())))
	// Out to the host: only ENIs with NAT egress.
	add(fwd, rule(toUplink, isIPv4(expr.CmpOpEq), ipAddrInSet(ipSrcOffset, nat), verdict(accept())))
	add(fwd, rule(toUplink, verdict(drop())))
	add(post, rule(toUplink, isIPv4(expr.CmpOpEq), []expr.Any{&expr.Masq{}}))

	// The source check on the bridge ports.
	bt := ports.Table
	c.AddTable(bt)
	_ = c.AddSet(ports, nil)
	policyDrop := nftables.ChainPolicyDrop
	pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: bt, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200), Policy: &policyDrop})
	c.FlushChain(pre)
	port := &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: regPortName}
	etherSrc := &expr.Payload{DestRegister: regPortMAC, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: 6}
	lookup := &expr.Lookup{SourceRegister: regPortName, SetName: ports.Name, SetID: ports.ID}
	// IPv4: port . ether saddr . ip saddr
	add(pre, rule(etherType(unix.ETH_P_IP), []expr.Any{port, etherSrc,
		&expr.Payload{DestRegister: regPortIP, Base: expr.PayloadBaseNetworkHeader, Offset: ipSrcOffset, Len: 4},
		lookup}, verdict(accept())))
	// ARP: port . ether saddr . arp spa, and port . arp sha . arp spa
	// (ARP header: sha at 8, spa at 14).
	add(pre, rule(etherType(unix.ETH_P_ARP), []expr.Any{port, etherSrc,
		&expr.Payload{DestRegister: regPortIP, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
		lookup,
		&expr.Payload{DestRegister: regPortMAC, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 6},
		lookup}, verdict(accept())))
}

// etherType matches "meta protocol" (the frame's ethertype).
func etherType(t uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(t >> 8), byte(t)}},
	}
}
