package elb

import (
	"context"
	"maps"
	"net/url"
	"strconv"

	"github.com/berthdev/berth/internal/protocol"
)

// Load balancer attributes, with ELBv2's defaults by type. berth's data
// plane acts on idle_timeout.timeout_seconds (the ALB's idle timeout) and
// deletion_protection.enabled; the others are kept and shown, as a user's
// infrastructure code sets them.
var (
	albAttributeDefaults = map[string]string{
		"access_logs.s3.enabled":                                   "false",
		"access_logs.s3.bucket":                                    "",
		"access_logs.s3.prefix":                                    "",
		"client_keep_alive.seconds":                                "3600",
		"connection_logs.s3.enabled":                               "false",
		"connection_logs.s3.bucket":                                "",
		"connection_logs.s3.prefix":                                "",
		"deletion_protection.enabled":                              "false",
		"idle_timeout.timeout_seconds":                             "60",
		"load_balancing.cross_zone.enabled":                        "true",
		"routing.http.desync_mitigation_mode":                      "defensive",
		"routing.http.drop_invalid_header_fields.enabled":          "false",
		"routing.http.preserve_host_header.enabled":                "false",
		"routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
		"routing.http.xff_client_port.enabled":                     "false",
		"routing.http.xff_header_processing.mode":                  "append",
		"routing.http2.enabled":                                    "true",
		"waf.fail_open.enabled":                                    "false",
		"zonal_shift.config.enabled":                               "false",
		"health_check_logs.s3.enabled":                             "false",
		"ipv6.deny_all_igw_traffic":                                "false",
		"routing.http.response.server.enabled":                     "true",
	}
	nlbAttributeDefaults = map[string]string{
		"access_logs.s3.enabled":            "false",
		"access_logs.s3.bucket":             "",
		"access_logs.s3.prefix":             "",
		"deletion_protection.enabled":       "false",
		"dns_record.client_routing_policy":  "any_availability_zone",
		"load_balancing.cross_zone.enabled": "false",
		"zonal_shift.config.enabled":        "false",
		"ipv6.deny_all_igw_traffic":         "false",
	}
)

// attributes are lb's attributes: its type's defaults with what was set.
func (lb *lbRecord) attributes() map[string]string {
	def := albAttributeDefaults
	if lb.Type == typeNetwork {
		def = nlbAttributeDefaults
	}
	out := maps.Clone(def)
	maps.Copy(out, lb.Attributes)
	return out
}

// checkLBAttribute validates one attribute of a load balancer of type typ.
func checkLBAttribute(typ, k, v string) error {
	def := albAttributeDefaults
	if typ == typeNetwork {
		def = nlbAttributeDefaults
	}
	if _, known := def[k]; !known {
		return errValidation("Load balancer attribute key '%s' is not recognized", k)
	}
	intIn := func(min, max int) bool { n, err := strconv.Atoi(v); return err == nil && n >= min && n <= max }
	var ok bool
	switch k {
	case "idle_timeout.timeout_seconds":
		ok = intIn(1, 4000)
	case "client_keep_alive.seconds":
		ok = intIn(60, 604800)
	case "routing.http.desync_mitigation_mode":
		ok = oneOf(v, "monitor", "defensive", "strictest")
	case "routing.http.xff_header_processing.mode":
		ok = oneOf(v, "append", "preserve", "remove")
	case "dns_record.client_routing_policy":
		ok = oneOf(v, "availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone")
	case "access_logs.s3.bucket", "access_logs.s3.prefix", "connection_logs.s3.bucket", "connection_logs.s3.prefix":
		ok = true
	default:
		ok = v == "true" || v == "false"
	}
	if !ok {
		return errValidation("'%s' is not a valid value for load balancer attribute '%s'", v, k)
	}
	return nil
}

func (s *Service) describeLoadBalancerAttributes(ctx context.Context, sc scope, p url.Values) (any, error) {
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	lb, err := st.lbByARN(p.Get("LoadBalancerArn"))
	if err != nil {
		return nil, err
	}
	return &attributesResult{Attributes: attrsXML(lb.attributes())}, nil
}

func (s *Service) modifyLoadBalancerAttributes(ctx context.Context, sc scope, p url.Values) (any, error) {
	els, err := protocol.QueryMemberStructs(p, "Attributes")
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, errMissing("Attributes")
	}
	var out *attributesResult
	err = s.change(ctx, sc, "modify load balancer attributes", func(st *state, t *txn) error {
		lb, err := st.lbByARN(p.Get("LoadBalancerArn"))
		if err != nil {
			return err
		}
		if lb.Attributes == nil {
			lb.Attributes = map[string]string{}
		}
		for _, el := range els {
			k, v := el.Get("Key"), el.Get("Value")
			if err := checkLBAttribute(lb.Type, k, v); err != nil {
				return err
			}
			lb.Attributes[k] = v
		}
		t.put(sc.lbKey(lb.ID), lb)
		// ELBv2 answers with every attribute of the load balancer.
		out = &attributesResult{Attributes: attrsXML(lb.attributes())}
		return nil
	})
	return out, err
}

// deletionProtected is ELBv2's refusal to delete a protected load balancer.
func deletionProtected(lb *lbRecord) error {
	if lb.attributes()["deletion_protection.enabled"] == "true" {
		return errNotPermitted("Load balancer '%s' cannot be deleted because deletion protection is enabled", lb.Name)
	}
	return nil
}

type securityGroupsResult struct {
	SecurityGroupIds list[string] `xml:"SecurityGroupIds"`
}

// setSecurityGroups replaces a load balancer's security groups; the data
// plane's listener ingress follows.
func (s *Service) setSecurityGroups(ctx context.Context, sc scope, p url.Values) (any, error) {
	groups, err := protocol.QueryMemberList(p, "SecurityGroups")
	if err != nil {
		return nil, err
	}
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	cur, err := st.lbByARN(p.Get("LoadBalancerArn"))
	if err != nil {
		return nil, err
	}
	if cur.Type == typeApplication && len(groups) == 0 {
		return nil, errValidation("At least one security group must be specified for an Application Load Balancer")
	}
	resolved := &lbRecord{Type: cur.Type, VpcID: cur.VpcID}
	if len(groups) > 0 {
		if err := s.resolveGroups(ctx, sc, resolved, groups); err != nil {
			return nil, err
		}
	}
	err = s.change(ctx, sc, "set security groups", func(st *state, t *txn) error {
		lb, err := st.lbByARN(p.Get("LoadBalancerArn"))
		if err != nil {
			return err
		}
		lb.SecurityGroups = resolved.SecurityGroups
		t.put(sc.lbKey(lb.ID), lb)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &securityGroupsResult{SecurityGroupIds: list[string](resolved.SecurityGroups)}, nil
}
