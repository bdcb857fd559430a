package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// PutAttributes, ListAttributes and DeleteAttributes: custom attributes of
// container instances (the only target type ECS has). Names beginning with
// "ecs." are the agent's and cannot be set or deleted.

var (
	attrNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_./\\-]{1,128}$`)
	attrValueRE = regexp.MustCompile(`^[a-zA-Z0-9_.@/\\:\- ]{1,128}$`)
)

// maxCustomAttributes is ECS's limit of custom attributes per resource.
const maxCustomAttributes = 10

func validAttribute(a IAttribute) error {
	if !attrNameRE.MatchString(a.Name) {
		return invalidParam("Attribute name %q must be 1-128 letters, numbers, hyphens, underscores, periods, forward or back slashes.", a.Name)
	}
	if strings.HasPrefix(a.Name, "ecs.") {
		return invalidParam("Attribute names beginning with ecs. are reserved for the agent: %s.", a.Name)
	}
	if a.Value != "" && (!attrValueRE.MatchString(a.Value) || strings.TrimSpace(a.Value) != a.Value) {
		return invalidParam("Attribute value %q must be 1-128 letters, numbers, hyphens, underscores, periods, at signs, forward or back slashes, colons or spaces, not starting or ending with a space.", a.Value)
	}
	if a.TargetType != "" && a.TargetType != "container-instance" {
		return invalidParam("targetType must be container-instance.")
	}
	return nil
}

type attributesInput struct {
	Cluster    string       `json:"cluster"`
	Attributes []IAttribute `json:"attributes"`
}

func (s *Service) putAttributes(ctx context.Context, body []byte) (any, error) {
	return s.editAttributes(ctx, body, true)
}

func (s *Service) deleteAttributes(ctx context.Context, body []byte) (any, error) {
	return s.editAttributes(ctx, body, false)
}

// editAttributes sets (put) or removes attributes, all or none: every
// target is checked before anything is written.
func (s *Service) editAttributes(ctx context.Context, body []byte, put bool) (any, error) {
	sc, in, err := request[attributesInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if len(in.Attributes) == 0 || len(in.Attributes) > 10 {
		return nil, invalidParam("attributes must hold between 1 and 10 attributes.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	byTarget := map[string][]IAttribute{}
	for _, a := range in.Attributes {
		if err := validAttribute(a); err != nil {
			return nil, err
		}
		if a.TargetID == "" {
			return nil, invalidParam("targetId is required for a container instance attribute.")
		}
		r, _, err := s.getInstance(ctx, sc, cluster, a.TargetID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, protocol.NewError(codeTargetNotFound, 400, "Could not find %s.", a.TargetID)
		}
		if err != nil {
			return nil, err
		}
		id := lastSegment(r.Instance.ContainerInstanceArn)
		byTarget[id] = append(byTarget[id], a)
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for id, attrs := range byTarget {
		key := instanceKey(sc, cluster.ClusterName, id)
		var r instanceRecord
		rev, err := s.st.Get(ctx, key, &r)
		if err != nil {
			return nil, err
		}
		if r.Custom == nil {
			r.Custom = map[string]string{}
		}
		for _, a := range attrs {
			if put {
				r.Custom[a.Name] = a.Value
			} else {
				delete(r.Custom, a.Name)
			}
		}
		if len(r.Custom) > maxCustomAttributes {
			return nil, protocol.NewError(codeAttributeLimit, 400, "You can apply up to %d custom attributes for each resource.", maxCustomAttributes)
		}
		b, err := jsonString(r)
		if err != nil {
			return nil, err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
		ops = append(ops, clientv3.OpPut(key, b))
	}
	resp, err := s.st.C.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, clientErr("The container instances changed meanwhile; try again.")
	}
	s.wakePlacement()
	out := make([]IAttribute, len(in.Attributes))
	for i, a := range in.Attributes {
		a.TargetType = "container-instance"
		out[i] = a
	}
	return map[string]any{"attributes": out}, nil
}

type listAttributesInput struct {
	Cluster        string `json:"cluster"`
	TargetType     string `json:"targetType"`
	AttributeName  string `json:"attributeName"`
	AttributeValue string `json:"attributeValue"`
	MaxResults     *int   `json:"maxResults"`
	NextToken      string `json:"nextToken"`
}

func (s *Service) listAttributes(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[listAttributesInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if in.TargetType != "container-instance" {
		return nil, invalidParam("targetType must be container-instance.")
	}
	if in.AttributeValue != "" && in.AttributeName == "" {
		return nil, invalidParam("attributeValue can only be given with attributeName.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	recs, err := s.listInstances(ctx, sc, cluster.ClusterName)
	if err != nil {
		return nil, err
	}
	var out []IAttribute
	for _, r := range recs {
		attrs := r.attributes()
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if in.AttributeName != "" && k != in.AttributeName {
				continue
			}
			if in.AttributeValue != "" && attrs[k] != in.AttributeValue {
				continue
			}
			out = append(out, IAttribute{Name: k, Value: attrs[k], TargetType: "container-instance", TargetID: r.Instance.ContainerInstanceArn})
		}
	}
	pg, next, err := page(out, func(a IAttribute) string { return a.TargetID + "\x00" + a.Name }, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	if pg == nil {
		pg = []IAttribute{}
	}
	res := map[string]any{"attributes": pg}
	if next != "" {
		res["nextToken"] = next
	}
	return res, nil
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
