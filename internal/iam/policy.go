package iam

// Trust policies: validating the document CreateRole is given, and deciding
// whether it lets a service principal assume the role.
//
//	{"Version": "2012-10-17",
//	 "Statement": [{"Effect": "Allow",
//	                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
//	                "Action": "sts:AssumeRole",
//	                "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]}
//
// Evaluation follows IAM's rule: an explicit Deny wins, else some Allow must
// match, else the answer is no. A statement matches when its principal names
// the service (or "*"), its actions match sts:AssumeRole (wildcards allowed)
// and its conditions hold. Conditions understood: StringEquals, StringLike,
// ArnEquals and ArnLike (and their IfExists forms) on aws:SourceAccount and
// aws:SourceArn, which ECS supplies (the task's account and cluster ARN).
// A statement with a condition berth cannot evaluate never allows and always
// denies: the safe reading of what it does not understand.

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
)

type policyDoc struct {
	Version   string
	Statement []statement
}

type statement struct {
	Effect       string
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
	Action       json.RawMessage
	NotAction    json.RawMessage
	Resource     json.RawMessage
	NotResource  json.RawMessage
	Condition    map[string]map[string]json.RawMessage
}

// parseTrustPolicy validates a role trust policy as CreateRole does and
// returns it parsed. Errors are MalformedPolicyDocument (LimitExceeded for
// an oversized document).
func parseTrustPolicy(doc string) (*policyDoc, error) {
	if len(doc) > maxTrustPolicyLength {
		return nil, errLimitExceeded("Cannot exceed quota for ACLSizePerRole: %d", maxTrustPolicyLength)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(doc))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, errMalformedPolicy("This policy contains invalid Json")
	}
	var p policyDoc
	for k, v := range raw {
		switch k {
		case "Version":
			if json.Unmarshal(v, &p.Version) != nil {
				return nil, errMalformedPolicy("The policy must contain a valid version string")
			}
		case "Id":
		case "Statement":
			st, err := parseStatements(v)
			if err != nil {
				return nil, err
			}
			p.Statement = st
		default:
			return nil, errMalformedPolicy("Syntax errors in policy.")
		}
	}
	if p.Version != "" && p.Version != "2012-10-17" && p.Version != "2008-10-17" {
		return nil, errMalformedPolicy("The policy must contain a valid version string")
	}
	if len(p.Statement) == 0 {
		return nil, errMalformedPolicy("Syntax errors in policy.")
	}
	for _, st := range p.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, errMalformedPolicy("Invalid effect: " + st.Effect)
		}
		if len(st.Principal) == 0 && len(st.NotPrincipal) == 0 {
			return nil, errMalformedPolicy("Missing required field Principal")
		}
		if len(st.Action) == 0 && len(st.NotAction) == 0 {
			return nil, errMalformedPolicy("Missing required field Action")
		}
		if len(st.Resource) > 0 || len(st.NotResource) > 0 {
			return nil, errMalformedPolicy("Has prohibited field Resource")
		}
		if len(st.Principal) > 0 {
			if _, ok := parsePrincipal(st.Principal); !ok {
				return nil, errMalformedPolicy("Invalid principal in policy")
			}
		}
		if _, ok := stringList(firstNonEmpty(st.Action, st.NotAction)); !ok {
			return nil, errMalformedPolicy("Syntax errors in policy.")
		}
		for _, kv := range st.Condition {
			for _, v := range kv {
				if _, ok := stringList(v); !ok {
					return nil, errMalformedPolicy("Syntax errors in policy.")
				}
			}
		}
	}
	return &p, nil
}

func parseStatements(v json.RawMessage) ([]statement, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '{' {
		v = append(append([]byte{'['}, v...), ']')
	}
	var sts []statement
	if err := json.Unmarshal(v, &sts); err != nil {
		return nil, errMalformedPolicy("Syntax errors in policy.")
	}
	return sts, nil
}

func firstNonEmpty(a, b json.RawMessage) json.RawMessage {
	if len(a) > 0 {
		return a
	}
	return b
}

// stringList reads a policy value that is a string or a list of strings.
func stringList(v json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(v, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}

// principal is a parsed Principal: "*" or principals by type (AWS,
// Service, Federated, CanonicalUser).
type principal struct {
	any   bool
	byKey map[string][]string
}

func parsePrincipal(v json.RawMessage) (principal, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return principal{any: s == "*"}, s == "*"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || len(m) == 0 {
		return principal{}, false
	}
	p := principal{byKey: map[string][]string{}}
	for k, raw := range m {
		switch k {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return principal{}, false
		}
		vals, ok := stringList(raw)
		if !ok {
			return principal{}, false
		}
		p.byKey[k] = vals
	}
	return p, true
}

func (p principal) namesService(service string) bool {
	if p.any {
		return true
	}
	for _, v := range p.byKey["AWS"] {
		if v == "*" {
			return true
		}
	}
	for _, v := range p.byKey["Service"] {
		if strings.EqualFold(v, service) {
			return true
		}
	}
	return false
}

// assumeRequest is what a service presents when it assumes a role.
type assumeRequest struct {
	Service       string // ecs-tasks.amazonaws.com
	SourceAccount string
	SourceArn     string
}

// allows reports whether the policy lets r's service call sts:AssumeRole.
func (p *policyDoc) allows(r assumeRequest) bool {
	allowed := false
	for _, st := range p.Statement {
		if !st.principalMatches(r.Service) || !st.actionMatches("sts:AssumeRole") {
			continue
		}
		holds, known := st.conditionsHold(r)
		switch {
		case st.Effect == "Deny" && (holds || !known):
			return false
		case st.Effect == "Allow" && holds && known:
			allowed = true
		}
	}
	return allowed
}

func (st *statement) principalMatches(service string) bool {
	if len(st.Principal) > 0 {
		p, ok := parsePrincipal(st.Principal)
		return ok && p.namesService(service)
	}
	p, ok := parsePrincipal(st.NotPrincipal)
	return ok && !p.namesService(service)
}

func (st *statement) actionMatches(action string) bool {
	if len(st.Action) > 0 {
		return anyMatch(st.Action, action, true)
	}
	return !anyMatch(st.NotAction, action, true)
}

func anyMatch(list json.RawMessage, value string, fold bool) bool {
	vals, _ := stringList(list)
	for _, pat := range vals {
		if wildcardMatch(pat, value, fold) {
			return true
		}
	}
	return false
}

// wildcardMatch matches IAM's * and ? wildcards.
func wildcardMatch(pattern, value string, fold bool) bool {
	if fold {
		pattern, value = strings.ToLower(pattern), strings.ToLower(value)
	}
	// path.Match treats '/' specially and '[' as a class: escape what is
	// not an IAM wildcard and compare segment-free by replacing '/'.
	var b strings.Builder
	for _, c := range pattern {
		switch c {
		case '*', '?':
			b.WriteRune(c)
		case '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '/':
			b.WriteRune('\x00')
		default:
			b.WriteRune(c)
		}
	}
	ok, err := path.Match(b.String(), strings.ReplaceAll(value, "/", "\x00"))
	return err == nil && ok
}

// conditionsHold evaluates the statement's conditions against r; known is
// false when a condition uses an operator or key berth does not evaluate.
func (st *statement) conditionsHold(r assumeRequest) (holds, known bool) {
	for op, kv := range st.Condition {
		base, ifExists := strings.CutSuffix(op, "IfExists")
		for key, raw := range kv {
			var actual string
			switch strings.ToLower(key) {
			case "aws:sourceaccount":
				actual = r.SourceAccount
			case "aws:sourcearn":
				actual = r.SourceArn
			default:
				return false, false
			}
			if actual == "" {
				if ifExists {
					continue
				}
				return false, true
			}
			vals, _ := stringList(raw)
			match := false
			for _, v := range vals {
				switch base {
				case "StringEquals", "ArnEquals":
					match = match || v == actual
				case "StringLike", "ArnLike":
					match = match || wildcardMatch(v, actual, false)
				default:
					return false, false
				}
			}
			if !match {
				return false, true
			}
		}
	}
	return true, true
}
