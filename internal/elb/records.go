package elb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// Stored records and where they live. Every key of a scope is under
// store.Scoped(account, region, "elb", …):
//
//	elb/cfg/seq                     bumped by every configuration change (the scope's write lock)
//	elb/cfg/lb/<lb-id>              lbRecord
//	elb/cfg/tg/<tg-id>              tgRecord, its attributes inside
//	elb/cfg/listener/<lb-id>/<listener-id>  listenerRecord, its default actions inside
//	elb/cfg/rule/<listener-id>/<rule-id>    ruleRecord (non-default rules)
//	elb/targets/<tg-id>/<id>:<port> targetRecord: a registered target and its health
//
// and globally:
//
//	elb-scopes/<account>/<region>   the scope has ELB state (the reconciler and LoadBalancers list these)
//	lbs/<node>/<lb-id>              agentapi.LoadBalancerSpec of a load balancer placed on a node (the agent watches its prefix)
//	lbaddr/<ip>                     addrLease: a public address leased to a load balancer (created only if absent)
//
// Consistency: a change reads the whole cfg/ directory in one request (one
// revision), requires seq to be unchanged when it commits and rewrites seq,
// so configuration changes of a scope are serialised and never act on a
// stale view. Target records are written apart (the data plane's health
// checker writes them often): RegisterTargets requires seq unchanged without
// bumping it, and every change of a target record compares its revision.

func (sc scope) key(parts ...string) string {
	return store.Scoped(sc.account, sc.region, append([]string{"elb"}, parts...)...)
}

func (sc scope) cfgPrefix() string      { return sc.key("cfg") + "/" }
func (sc scope) seqKey() string         { return sc.key("cfg", "seq") }
func (sc scope) lbKey(id string) string { return sc.key("cfg", "lb", id) }
func (sc scope) tgKey(id string) string { return sc.key("cfg", "tg", id) }
func (sc scope) listenerKey(l *listenerRecord) string {
	return sc.key("cfg", "listener", l.LBID, l.ID)
}
func (sc scope) listenersPrefix(lbID string) string { return sc.key("cfg", "listener", lbID) + "/" }
func (sc scope) ruleKey(r *ruleRecord) string       { return sc.key("cfg", "rule", r.ListenerID, r.ID) }
func (sc scope) rulesPrefix(listenerID string) string {
	return sc.key("cfg", "rule", listenerID) + "/"
}
func (sc scope) targetsPrefix(tgID string) string { return sc.key("targets", tgID) + "/" }
func (sc scope) targetKey(tgID, id string, port int) string {
	return sc.key("targets", tgID, fmt.Sprintf("%s:%d", id, port))
}
func (sc scope) indexKey() string { return store.Key("elb-scopes", sc.account, sc.region) }
func scopeIndexPrefix() string    { return store.Prefix("elb-scopes") }

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type lbRecord struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Type           string            `json:"type"` // application | network
	Scheme         string            `json:"scheme"`
	VpcID          string            `json:"vpcId"`
	Subnets        []subnetPlacement `json:"subnets"`
	SecurityGroups []string          `json:"securityGroups,omitempty"`
	// Attributes are those ModifyLoadBalancerAttributes set (defaults are
	// not stored: see attributes).
	Attributes map[string]string `json:"attributes,omitempty"`
	Tags       []tag             `json:"tags,omitempty"`
	Created    time.Time         `json:"created"`
	// Placement is where the load balancer runs (placement.go); nil until
	// it is placed.
	Placement *lbPlacement `json:"placement,omitempty"`
}

type subnetPlacement struct {
	SubnetID string `json:"subnetId"`
	Zone     string `json:"zone"`
	CIDR     string `json:"cidr"`
}

type healthCheck struct {
	Enabled   bool   `json:"enabled"`
	Protocol  string `json:"protocol"`
	Port      string `json:"port"`
	Path      string `json:"path,omitempty"`
	Interval  int    `json:"interval"`
	Timeout   int    `json:"timeout"`
	Healthy   int    `json:"healthy"`
	Unhealthy int    `json:"unhealthy"`
	Matcher   string `json:"matcher,omitempty"`
}

type tgRecord struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Protocol    string            `json:"protocol"`
	Port        int               `json:"port"`
	VpcID       string            `json:"vpcId"`
	VpcCIDR     string            `json:"vpcCidr"`
	TargetType  string            `json:"targetType"`
	HealthCheck healthCheck       `json:"healthCheck"`
	Attributes  map[string]string `json:"attributes"`
	Tags        []tag             `json:"tags,omitempty"`
	Created     time.Time         `json:"created"`
}

type weightedTG struct {
	TGID   string `json:"tgId"`
	Weight int    `json:"weight"`
	// ARN is the ARN the request named (not stored), checked against the
	// group's real ARN.
	ARN string `json:"-"`
}

type fixedResponse struct {
	StatusCode  string `json:"statusCode"`
	ContentType string `json:"contentType,omitempty"`
	MessageBody string `json:"messageBody,omitempty"`
}

type redirect struct {
	Protocol   string `json:"protocol"`
	Port       string `json:"port"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	Query      string `json:"query"`
	StatusCode string `json:"statusCode"`
}

// actionRecord is one action of a listener or rule.
type actionRecord struct {
	Type  string `json:"type"` // forward | fixed-response | redirect
	Order int    `json:"order"`
	// Single is true when the request named one TargetGroupArn (AWS then
	// echoes it besides ForwardConfig).
	Single              bool           `json:"single,omitempty"`
	TargetGroups        []weightedTG   `json:"targetGroups,omitempty"`
	Stickiness          bool           `json:"stickiness,omitempty"`
	StickinessDuration  int            `json:"stickinessDuration,omitempty"`
	StickinessSpecified bool           `json:"stickinessSpecified,omitempty"`
	Fixed               *fixedResponse `json:"fixed,omitempty"`
	Redirect            *redirect      `json:"redirect,omitempty"`
}

type listenerRecord struct {
	ID             string         `json:"id"`
	LBID           string         `json:"lbId"`
	Protocol       string         `json:"protocol"`
	Port           int            `json:"port"`
	Certificates   []string       `json:"certificates,omitempty"`
	SslPolicy      string         `json:"sslPolicy,omitempty"`
	DefaultActions []actionRecord `json:"defaultActions"`
	DefaultRuleID  string         `json:"defaultRuleId"`
	DefaultTags    []tag          `json:"defaultRuleTags,omitempty"`
	Tags           []tag          `json:"tags,omitempty"`
	Created        time.Time      `json:"created"`
}

type kv struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
}

type conditionRecord struct {
	Field       string   `json:"field"`
	Values      []string `json:"values,omitempty"`
	HeaderName  string   `json:"headerName,omitempty"`
	QueryValues []kv     `json:"queryValues,omitempty"`
	// Legacy is true when the request used the Values shorthand.
	Legacy bool `json:"legacy,omitempty"`
}

type ruleRecord struct {
	ID         string            `json:"id"`
	ListenerID string            `json:"listenerId"`
	Priority   int               `json:"priority"`
	Conditions []conditionRecord `json:"conditions"`
	Actions    []actionRecord    `json:"actions"`
	Tags       []tag             `json:"tags,omitempty"`
}

// targetRecord is a registered target of a target group and its health as
// the data plane last reported it.
type targetRecord struct {
	ID         string    `json:"id"`
	Port       int       `json:"port"`
	Registered time.Time `json:"registered"`
	// Deregistered is set once DeregisterTargets named the target: it
	// drains until Deregistered + the group's deregistration delay, then the
	// reconciler deletes it.
	Deregistered *time.Time `json:"deregistered,omitempty"`
	// DrainedBy are the load balancers (ids) whose data plane has finished
	// draining the deregistered target: once every load balancer of the
	// group has, the target is gone before its delay ends.
	DrainedBy []string `json:"drainedBy,omitempty"`
	// Health as the data plane's checker reported it ("" before any).
	State       string    `json:"state,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Description string    `json:"description,omitempty"`
	Checked     time.Time `json:"checked,omitempty"`
}

// state is a scope's configuration read at one revision.
type state struct {
	sc        scope
	seqRev    int64
	lbs       map[string]*lbRecord
	tgs       map[string]*tgRecord
	listeners map[string]*listenerRecord
	rules     map[string]*ruleRecord
}

// load reads the scope's configuration in one request.
func (s *Service) load(ctx context.Context, sc scope) (*state, error) {
	st := &state{sc: sc, lbs: map[string]*lbRecord{}, tgs: map[string]*tgRecord{},
		listeners: map[string]*listenerRecord{}, rules: map[string]*ruleRecord{}}
	prefix := sc.cfgPrefix()
	resp, err := s.st.C.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("load elb state: %w", err)
	}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), prefix)
		kind, id, _ := strings.Cut(rest, "/")
		var target any
		switch kind {
		case "seq":
			st.seqRev = kv.ModRevision
			continue
		case "lb":
			r := &lbRecord{}
			st.lbs[id], target = r, r
		case "tg":
			r := &tgRecord{}
			st.tgs[id], target = r, r
		case "listener":
			target = &listenerRecord{}
		case "rule":
			target = &ruleRecord{}
		default:
			continue
		}
		if err := json.Unmarshal(kv.Value, target); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		switch r := target.(type) {
		case *listenerRecord:
			st.listeners[r.ID] = r
		case *ruleRecord:
			st.rules[r.ID] = r
		}
	}
	return st, nil
}

// txn is one etcd transaction being built.
type txn struct {
	cmps []clientv3.Cmp
	ops  []clientv3.Op
	err  error
}

func (t *txn) ifRev(key string, rev int64) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
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
func (t *txn) delPrefix(prefix string) {
	t.ops = append(t.ops, clientv3.OpDelete(prefix, clientv3.WithPrefix()))
}

const maxAttempts = 100

// change runs build on a fresh view of the scope and commits its
// transaction, bumping the scope's seq; it starts over when another writer
// got in between. Client errors from build come back as they are.
func (s *Service) change(ctx context.Context, sc scope, what string, build func(st *state, t *txn) error) error {
	return s.changeOpt(ctx, sc, what, true, build)
}

func (s *Service) changeOpt(ctx context.Context, sc scope, what string, bump bool, build func(st *state, t *txn) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		st, err := s.load(ctx, sc)
		if err != nil {
			return err
		}
		t := &txn{}
		if err := build(st, t); err != nil {
			return err
		}
		if t.err != nil {
			return t.err
		}
		if len(t.ops) == 0 {
			return nil
		}
		t.ifRev(sc.seqKey(), st.seqRev)
		if bump {
			t.ops = append(t.ops, clientv3.OpPut(sc.seqKey(), "{}"), clientv3.OpPut(sc.indexKey(), "{}"))
		}
		resp, err := s.st.C.Txn(ctx).If(t.cmps...).Then(t.ops...).Commit()
		if err != nil {
			return fmt.Errorf("%s: etcd transaction: %w", what, err)
		}
		if resp.Succeeded {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return fmt.Errorf("%s: %w", what, store.ErrConflict)
}

// versionedTarget is a target record with its mod revision.
type versionedTarget struct {
	t   *targetRecord
	rev int64
}

// targets reads the targets of a target group, in key order.
func (s *Service) targets(ctx context.Context, sc scope, tgID string) ([]versionedTarget, error) {
	resp, err := s.st.C.Get(ctx, sc.targetsPrefix(tgID), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	out := make([]versionedTarget, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		t := &targetRecord{}
		if err := json.Unmarshal(kv.Value, t); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, versionedTarget{t: t, rev: kv.ModRevision})
	}
	return out, nil
}
