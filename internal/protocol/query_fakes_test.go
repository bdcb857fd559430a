package protocol

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	ec2Version = "2016-11-15"
	ec2NS      = "http://ec2.amazonaws.com/doc/2016-11-15/"
	elbVersion = "2015-12-01"
	elbNS      = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
	formCT     = "application/x-www-form-urlencoded; charset=utf-8"
)

type fakeTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type fakeVpc struct {
	VpcID     string            `xml:"vpcId"`
	OwnerID   string            `xml:"ownerId"`
	CidrBlock string            `xml:"cidrBlock"`
	IsDefault bool              `xml:"isDefault"`
	Tags      ItemList[fakeTag] `xml:"tagSet,omitempty"`
}

type fakeDescribeVpcsResult struct {
	Vpcs      ItemList[fakeVpc] `xml:"vpcSet"`
	NextToken *string           `xml:"nextToken"`
}

// fakeEC2 is a tiny EC2 in StyleEC2; calls counts the handler invocations.
func fakeEC2(calls *atomic.Int64) QueryService {
	return QueryService{
		Version:      ec2Version,
		SigningName:  "ec2",
		XMLNamespace: ec2NS,
		Style:        StyleEC2,
		Ops: map[string]QueryHandler{
			"DescribeVpcs": func(ctx context.Context, params url.Values) (any, error) {
				calls.Add(1)
				id, _ := IdentityFrom(ctx)
				ids, err := QueryList(params, "VpcId")
				if err != nil {
					return nil, err
				}
				filters, err := QueryStructs(params, "Filter")
				if err != nil {
					return nil, err
				}
				if _, _, err := QueryInt(params, "MaxResults", 5, 1000); err != nil {
					return nil, err
				}
				out := &fakeDescribeVpcsResult{Vpcs: ItemList[fakeVpc]{}}
				for _, v := range ids {
					switch v {
					case "boom":
						return nil, fmt.Errorf("describe %s: %s", v, leakyDetail)
					case "panic":
						panic(leakyDetail)
					case "vpc-1":
						out.Vpcs = append(out.Vpcs, fakeVpc{VpcID: v, OwnerID: id.AccountID, CidrBlock: "10.0.0.0/16",
							IsDefault: true, Tags: ItemList[fakeTag]{{Key: "Name", Value: "a&b"}}})
					default:
						return nil, NewError("InvalidVpcID.NotFound", 0, "The vpc ID '%s' does not exist", v)
					}
				}
				// A cidr-block filter makes one VPC per value, to show
				// the nested lists arrive.
				for _, f := range filters {
					values, err := QueryList(f, "Value")
					if err != nil {
						return nil, err
					}
					if f.Get("Name") != "cidr-block" {
						continue
					}
					for i, v := range values {
						out.Vpcs = append(out.Vpcs, fakeVpc{VpcID: fmt.Sprintf("vpc-f%d", i+1), OwnerID: id.AccountID, CidrBlock: v})
					}
				}
				return out, nil
			},
			"DeleteVpc": func(context.Context, url.Values) (any, error) {
				calls.Add(1)
				return struct {
					Return bool `xml:"return"`
				}{true}, nil
			},
		},
	}
}

type fakeAZ struct {
	ZoneName string `xml:"ZoneName"`
	SubnetID string `xml:"SubnetId"`
}

type fakeLB struct {
	LoadBalancerArn   string             `xml:"LoadBalancerArn"`
	LoadBalancerName  string             `xml:"LoadBalancerName"`
	DNSName           string             `xml:"DNSName"`
	Type              string             `xml:"Type"`
	AvailabilityZones MemberList[fakeAZ] `xml:"AvailabilityZones"`
	SecurityGroups    MemberList[string] `xml:"SecurityGroups"`
}

type fakeLBsResult struct {
	LoadBalancers MemberList[fakeLB] `xml:"LoadBalancers"`
	NextMarker    *string            `xml:"NextMarker"`
}

func lbNamed(ctx context.Context, name string, subnets, groups []string) fakeLB {
	id, _ := IdentityFrom(ctx)
	lb := fakeLB{
		LoadBalancerArn:  fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/app/%s/1", id.Region, id.AccountID, name),
		LoadBalancerName: name,
		DNSName:          name + ".elb.berth.test",
		Type:             "application",
		SecurityGroups:   groups,
	}
	for i, s := range subnets {
		lb.AvailabilityZones = append(lb.AvailabilityZones, fakeAZ{ZoneName: fmt.Sprintf("us-east-1%c", 'a'+i), SubnetID: s})
	}
	return lb
}

// fakeELB is a tiny ELBv2 in StyleStandard.
func fakeELB(calls *atomic.Int64) QueryService {
	return QueryService{
		Version:      elbVersion,
		SigningName:  "elasticloadbalancing",
		XMLNamespace: elbNS,
		Style:        StyleStandard,
		Ops: map[string]QueryHandler{
			"DescribeLoadBalancers": func(ctx context.Context, params url.Values) (any, error) {
				calls.Add(1)
				names, err := QueryMemberList(params, "Names")
				if err != nil {
					return nil, err
				}
				if names == nil {
					names = []string{"lb1"}
				}
				out := fakeLBsResult{LoadBalancers: MemberList[fakeLB]{}}
				for _, n := range names {
					switch n {
					case "missing":
						return nil, NewError("LoadBalancerNotFound", 400, "One or more load balancers not found")
					case "boom":
						return nil, fmt.Errorf("describe %s: %s", n, leakyDetail)
					case "empty":
						continue
					}
					out.LoadBalancers = append(out.LoadBalancers, lbNamed(ctx, n, []string{"subnet-1"}, []string{}))
				}
				return out, nil
			},
			"CreateLoadBalancer": func(ctx context.Context, params url.Values) (any, error) {
				calls.Add(1)
				subnets, err := QueryMemberList(params, "Subnets")
				if err != nil {
					return nil, err
				}
				groups, err := QueryMemberList(params, "SecurityGroups")
				if err != nil {
					return nil, err
				}
				tags, err := QueryMemberStructs(params, "Tags")
				if err != nil {
					return nil, err
				}
				name := params.Get("Name")
				for _, tg := range tags {
					name += "+" + tg.Get("Key") + "=" + tg.Get("Value")
				}
				return &fakeLBsResult{LoadBalancers: MemberList[fakeLB]{lbNamed(ctx, name, subnets, groups)}}, nil
			},
			"DeleteLoadBalancer": func(context.Context, url.Values) (any, error) {
				calls.Add(1)
				return nil, nil
			},
		},
	}
}

// queryEnv is a test server with fakeECS, fakeEC2 and fakeELB.
type queryEnv struct {
	srv      *httptest.Server
	reg      *prometheus.Registry
	logs     *syncBuffer
	ec2Calls atomic.Int64
	elbCalls atomic.Int64
}

func newQueryEnv(t testing.TB, opts ...Option) *queryEnv {
	t.Helper()
	env := &queryEnv{}
	r, reg, logs := newTestRouter(t, opts...)
	r.AddQueryService(fakeEC2(&env.ec2Calls))
	r.AddQueryService(fakeELB(&env.elbCalls))
	env.srv, env.reg, env.logs = httptest.NewServer(r), reg, logs
	t.Cleanup(env.srv.Close)
	return env
}

// queryRequest builds a query request: a form POST of form to url with
// content type ct (formCT if empty), or a GET with form as the query
// string; signed for service at time at unless service is "".
func queryRequest(t testing.TB, method, url, form, ct, service string, creds *struct{ key, secret, token string }, at time.Time) *http.Request {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, url+"?"+form, nil)
	} else {
		req, err = http.NewRequest(method, url, strings.NewReader(form))
		if ct == "" {
			ct = formCT
		}
		req.Header.Set("Content-Type", ct)
	}
	if err != nil {
		t.Fatal(err)
	}
	if service != "" {
		c := testCreds
		if creds != nil {
			c.AccessKeyID, c.SecretAccessKey, c.SessionToken = creds.key, creds.secret, creds.token
		}
		body := []byte(form)
		if method == http.MethodGet {
			body = nil
		}
		signRequest(t, req, body, c, service, "us-east-1", at)
	}
	return req
}
