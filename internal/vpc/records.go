package vpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// Stored records and where they live. Every key of a scope is under
// store.Scoped(account, region, "vpc", …):
//
//	vpc/defaults                      the scope's defaults were made (defaultsRecord)
//	vpc/vpcs/<vpc-id>                 vpcRecord
//	vpc/subnets/<subnet-id>           subnetRecord
//	vpc/sgs/<sg-id>                   groupRecord, its rules inside
//	vpc/enis/<attachment-id>          eniRecord: a task's interface, by ECS attachment
//	vpc/ipam/<subnet-id>/<ip>         leaseRecord: an address of the subnet in use
//	vpc/sg-members/<sg-id>/<attach>   memberRecord: an ENI in the group
//
// and globally:
//
//	vpc-scopes/<account>/<region>     the scope has VPC state (the reconciler's full pass lists these)
//	publicip/<ip>                     publicIPRecord: a public address in use
//	fw/<node>/<eni-id>                agentapi.Firewall of an ENI, for the node's agent
//	sgsets/<account>/<region>/<sg-id> agentapi.AddressSetChange, rewritten whenever the group gains or
//	                                  loses a member: its revision is that of the group's address set
//
// Consistency rules, which the transactions rely on:
//   - creating a subnet or a security group rewrites its VPC's record, so a
//     DeleteVpc (which compares the VPC's revision) never misses one, and
//     concurrent creations in one VPC are serialised (no two overlapping
//     subnets, no two groups of one name);
//   - a rule that references a source group rewrites that group's record,
//     so DeleteSecurityGroup (comparing the group's revision) never misses
//     a new reference;
//   - AttachENI compares the revisions of the subnet and groups it read
//     and that its lease key is absent; DeleteSubnet and DeleteSecurityGroup
//     compare that no lease / member key exists.

func (sc scope) key(parts ...string) string {
	return store.Scoped(sc.account, sc.region, append([]string{"vpc"}, parts...)...)
}

func (sc scope) prefix(parts ...string) string { return sc.key(parts...) + "/" }

func (sc scope) defaultsKey() string             { return sc.key("defaults") }
func (sc scope) vpcKey(id string) string         { return sc.key("vpcs", id) }
func (sc scope) subnetKey(id string) string      { return sc.key("subnets", id) }
func (sc scope) groupKey(id string) string       { return sc.key("sgs", id) }
func (sc scope) eniKey(attachment string) string { return sc.key("enis", attachment) }
func (sc scope) leaseKey(subnet, ip string) string {
	return sc.key("ipam", subnet, ip)
}
func (sc scope) leasePrefix(subnet string) string { return sc.prefix("ipam", subnet) }
func (sc scope) memberKey(group, attachment string) string {
	return sc.key("sg-members", group, attachment)
}
func (sc scope) memberPrefix(group string) string { return sc.prefix("sg-members", group) }
func (sc scope) indexKey() string                 { return store.Key("vpc-scopes", sc.account, sc.region) }

func publicIPKey(ip string) string    { return store.Key("publicip", ip) }
func publicIPPrefix() string          { return store.Prefix("publicip") }
func fwKey(node, eniID string) string { return store.Key("fw", node, eniID) }
func fwPrefix() string                { return store.Prefix("fw") }

// setName names the address set of a group's members, as firewall rules
// refer to it: "<account>/<region>/<sg-id>".
func (sc scope) setName(group string) string { return sc.account + "/" + sc.region + "/" + group }
func setKey(name string) string              { return AddressSetPrefix() + name }

// AddressSetPrefix is the prefix of the keys whose revisions are those of
// the address sets: the key of set NAME is AddressSetPrefix()+NAME, and it
// is rewritten whenever the set changes.
func AddressSetPrefix() string { return store.Prefix("sgsets") }

// parseSetName splits a set name into its scope and group.
func parseSetName(name string) (scope, string, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "sg-") {
		return scope{}, "", false
	}
	return scope{account: parts[0], region: parts[1]}, parts[2], true
}
func scopeIndexPrefix() string { return store.Prefix("vpc-scopes") }
func acctPrefix() string       { return store.Prefix("acct") }
func (sc scope) arn(res string) string {
	return "arn:aws:ec2:" + sc.region + ":" + sc.account + ":" + res
}

// FirewallKey is the store key of an ENI's firewall, under the prefix
// FirewallPrefix(node) that the node's agent watches.
func FirewallKey(node, eniID string) string { return fwKey(node, eniID) }

// FirewallPrefix is the prefix of the firewalls of the ENIs on node.
func FirewallPrefix(node string) string { return store.Prefix("fw", node) }

// watchedKind returns the scope and kind ("sgs", "enis", …) of a key under
// acct/, or ok=false for a key that is not VPC state.
func watchedKind(key string) (sc scope, kind string, ok bool) {
	rest, found := strings.CutPrefix(key, acctPrefix())
	if !found {
		return scope{}, "", false
	}
	parts := strings.SplitN(rest, "/", 5)
	if len(parts) < 5 || parts[2] != "vpc" {
		return scope{}, "", false
	}
	return scope{account: parts[0], region: parts[1]}, parts[3], true
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type defaultsRecord struct {
	VpcID string `json:"vpcId"`
}

type vpcRecord struct {
	ID             string    `json:"id"`
	CIDR           string    `json:"cidr"`
	AssociationID  string    `json:"associationId"`
	IsDefault      bool      `json:"isDefault,omitempty"`
	DefaultGroupID string    `json:"defaultGroupId"`
	Tags           []tag     `json:"tags,omitempty"`
	Created        time.Time `json:"created"`
}

type subnetRecord struct {
	ID           string    `json:"id"`
	VpcID        string    `json:"vpcId"`
	CIDR         string    `json:"cidr"`
	Zone         string    `json:"zone"`
	DefaultForAz bool      `json:"defaultForAz,omitempty"`
	MapPublicIP  bool      `json:"mapPublicIp,omitempty"`
	Tags         []tag     `json:"tags,omitempty"`
	Created      time.Time `json:"created"`
}

type groupRecord struct {
	ID          string       `json:"id"`
	VpcID       string       `json:"vpcId"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	IsDefault   bool         `json:"isDefault,omitempty"`
	Rules       []ruleRecord `json:"rules,omitempty"`
	Tags        []tag        `json:"tags,omitempty"`
	Created     time.Time    `json:"created"`
}

// ruleRecord is one security group rule: one protocol and port range from
// (ingress) or to (egress) one peer, a CIDR or a group.
type ruleRecord struct {
	ID     string `json:"id"`
	Egress bool   `json:"egress,omitempty"`
	// Protocol is normalised: "-1", "tcp", "udp", "icmp", "icmpv6" or a
	// number 0–255 for any other.
	Protocol string `json:"protocol"`
	// FromPort and ToPort are the port range (tcp, udp) or ICMP type and
	// code; -1 when they do not apply.
	FromPort    int    `json:"fromPort"`
	ToPort      int    `json:"toPort"`
	CIDR        string `json:"cidr,omitempty"`
	SourceGroup string `json:"sourceGroup,omitempty"`
	Description string `json:"description,omitempty"`
}

type eniRecord struct {
	ENI      agentapi.ENI `json:"eni"`
	Node     string       `json:"node"`
	Attached time.Time    `json:"attached"`
	Tags     []tag        `json:"tags,omitempty"`
	// Description overrides the ECS attachment description
	// DescribeNetworkInterfaces shows (SetENIDescription).
	Description string `json:"description,omitempty"`
}

type leaseRecord struct {
	AttachmentID string `json:"attachmentId"`
	ENIID        string `json:"eniId"`
}

type memberRecord struct {
	ENIID string `json:"eniId"`
	IP    string `json:"ip"`
}

type publicIPRecord struct {
	Account      string `json:"account"`
	Region       string `json:"region"`
	AttachmentID string `json:"attachmentId"`
}

type scopeIndexRecord struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// txn is one etcd transaction being assembled: conditions and writes.
type txn struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	els  []clientv3.Op
	err  error
}

// ifRev requires key's mod revision to be rev (0: the key is absent).
func (t *txn) ifRev(key string, rev int64) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
}

// ifEmpty requires that no key exist under prefix.
func (t *txn) ifEmpty(prefix string) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.CreateRevision(prefix), "=", 0).WithPrefix())
}

func (t *txn) put(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.err = errors.Join(t.err, fmt.Errorf("encode %s: %w", key, err))
		return
	}
	t.ops = append(t.ops, store.OpPutBytes(key, b))
}

func (t *txn) del(key string) { t.ops = append(t.ops, clientv3.OpDelete(key)) }

// commit runs t; ok is false when a condition failed.
func (s *Service) commit(ctx context.Context, t *txn) (ok bool, resp *clientv3.TxnResponse, err error) {
	if t.err != nil {
		return false, nil, t.err
	}
	resp, err = s.st.C.Txn(ctx).If(t.cmps...).Then(t.ops...).Else(t.els...).Commit()
	if err != nil {
		return false, nil, fmt.Errorf("etcd transaction: %w", err)
	}
	return resp.Succeeded, resp, nil
}

// maxAttempts bounds the optimistic retries of one change.
const maxAttempts = 100

// update runs build and commits its transaction, again from the start while
// another writer got in between. build reads what it needs afresh each time
// and returns any error (client errors as they are).
func (s *Service) update(ctx context.Context, what string, build func(t *txn) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t := &txn{}
		if err := build(t); err != nil {
			return err
		}
		ok, _, err := s.commit(ctx, t)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, store.ErrConflict)
}

// get reads key into a new T; found is false for an absent key.
func get[T any](ctx context.Context, st *store.Store, key string) (v *T, rev int64, found bool, err error) {
	v = new(T)
	rev, err = st.Get(ctx, key, v)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	return v, rev, true, nil
}

// versioned is a record with the mod revision it was read at.
type versioned[T any] struct {
	v   *T
	rev int64
}

// listRev reads every record under prefix with its mod revision, at
// revision atRev (0: the latest). It returns the revision it read at.
func listRev[T any](ctx context.Context, st *store.Store, prefix string, atRev int64) ([]versioned[T], int64, error) {
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(1000)}
	if atRev > 0 {
		opts = append(opts, clientv3.WithRev(atRev))
	}
	var out []versioned[T]
	start := prefix
	for {
		resp, err := st.C.Get(ctx, start, opts...)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
		}
		if atRev == 0 {
			atRev = resp.Header.Revision
			opts = append(opts, clientv3.WithRev(atRev))
		}
		for _, kv := range resp.Kvs {
			v := new(T)
			if err := json.Unmarshal(kv.Value, v); err != nil {
				return nil, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
			}
			out = append(out, versioned[T]{v: v, rev: kv.ModRevision})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, atRev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// list reads every record under prefix.
func list[T any](ctx context.Context, st *store.Store, prefix string) ([]*T, error) {
	vs, _, err := listRev[T](ctx, st, prefix, 0)
	if err != nil {
		return nil, err
	}
	out := make([]*T, len(vs))
	for i, v := range vs {
		out[i] = v.v
	}
	return out, nil
}

// listKeys returns the last path segment of every key under prefix.
func (s *Service) listKeys(ctx context.Context, prefix string) ([]string, error) {
	resp, err := s.st.C.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), prefix))
	}
	return out, nil
}

// count returns the number of keys under prefix.
func (s *Service) count(ctx context.Context, prefix string) (int, error) {
	resp, err := s.st.C.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", prefix, err)
	}
	return int(resp.Count), nil
}
