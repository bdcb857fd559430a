package ecs

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/agentapi"
)

// Networks is what ECS needs of the VPC control plane (internal/vpc
// implements it). ECS owns the interface so that it never imports vpc.
type Networks interface {
	// ResolveAwsvpc checks an awsvpcConfiguration: the subnets exist and lie
	// in one VPC, the groups exist in it (none: the VPC's default group). It
	// returns the VPC, each subnet's availability zone and the group ids; a
	// bad configuration is a *protocol.Error in ECS's shape.
	ResolveAwsvpc(ctx context.Context, account, region string, subnets, groups []string) (vpcID string, subnetAZ map[string]string, groupIDs []string, err error)
	// AttachENI allocates a task's network interface in the first of subnets
	// with a free address, idempotently by attachmentID. When every subnet is
	// full the error implements StopReason() string.
	AttachENI(ctx context.Context, account, region, attachmentID, node string, subnets, groups []string, assignPublicIP bool) (agentapi.ENI, error)
	// ReleaseENI frees a task's interface and its addresses; idempotent.
	ReleaseENI(ctx context.Context, account, region, attachmentID string) error
	// AddressSets reads, as of revision rev, the named address sets (the
	// members of security groups that firewall rules reference) that
	// changed after since (every one when since is 0). The key of set NAME
	// is store.Prefix("sgsets")+NAME, rewritten whenever the set changes.
	AddressSets(ctx context.Context, names []string, rev, since int64) ([]agentapi.AddressSet, error)
	// AddressSetRevisions reads the revisions of the named sets as of
	// revision rev, in order (0: a set that never had a member).
	AddressSetRevisions(ctx context.Context, names []string, rev int64) ([]int64, error)
}

// awsvpcPlan is an awsvpc task's network as RunTask resolved it.
type awsvpcPlan struct {
	VpcID          string            `json:"vpcId"`
	Subnets        []string          `json:"subnets"`
	SubnetAZ       map[string]string `json:"subnetAz"`
	Groups         []string          `json:"groups"`
	AssignPublicIP bool              `json:"assignPublicIp,omitempty"`
	// Released is set once the task's ENI has been freed.
	Released bool `json:"released,omitempty"`
}

// zones are the availability zones of the plan's subnets, sorted.
func (p *awsvpcPlan) zones() []string {
	var out []string
	for _, az := range p.SubnetAZ {
		if !slices.Contains(out, az) {
			out = append(out, az)
		}
	}
	slices.Sort(out)
	return out
}

// subnetsIn are the plan's subnets in zone az, in the order the user gave.
func (p *awsvpcPlan) subnetsIn(az string) []string {
	var out []string
	for _, s := range p.Subnets {
		if p.SubnetAZ[s] == az {
			out = append(out, s)
		}
	}
	return out
}

// resolveAwsvpc turns RunTask's awsvpcConfiguration into a plan, or nil when
// berth runs without a VPC control plane (unit tests of the ECS API alone).
func (s *Service) resolveAwsvpc(ctx context.Context, sc scope, cfg *AwsVpcConfiguration) (*awsvpcPlan, error) {
	if cfg == nil || s.cfg.Networks == nil {
		return nil, nil
	}
	vpcID, azs, groups, err := s.cfg.Networks.ResolveAwsvpc(ctx, sc.account, sc.region, cfg.Subnets, cfg.SecurityGroups)
	if err != nil {
		return nil, err
	}
	return &awsvpcPlan{VpcID: vpcID, Subnets: slices.Compact(slices.Clone(cfg.Subnets)), SubnetAZ: azs, Groups: groups,
		AssignPublicIP: cfg.AssignPublicIp == "ENABLED"}, nil
}

// stopReasoner is an error that explains why a task cannot start
// (internal/vpc's address exhaustion).
type stopReasoner interface{ StopReason() string }

// failureReason returns the stop reason of err, if it is a reason to fail
// the task rather than to retry.
func failureReason(err error) (string, bool) {
	var sr stopReasoner
	if errors.As(err, &sr) {
		return sr.StopReason(), true
	}
	return "", false
}

// setENI records an attached interface on the task as DescribeTasks shows
// it: the attachment's details and each container's network interface.
func (r *taskRecord) setENI(eni agentapi.ENI) {
	r.Spec.ENI = &eni
	t := &r.Task
	// Copies first: the record may share them (recordCache).
	t.Attachments, t.Containers = slices.Clone(t.Attachments), slices.Clone(t.Containers)
	for i := range t.Attachments {
		a := &t.Attachments[i]
		if a.ID != eni.AttachmentID {
			continue
		}
		a.Status = "ATTACHING"
		a.Details = []KeyValuePair{
			{Name: "subnetId", Value: eni.SubnetID},
			{Name: "networkInterfaceId", Value: eni.ID},
			{Name: "macAddress", Value: eni.MAC},
			{Name: "privateDnsName", Value: eni.PrivateDNSName},
			{Name: "privateIPv4Address", Value: eni.PrivateIP},
		}
	}
	for i := range t.Containers {
		t.Containers[i].NetworkInterfaces = []NetworkInterface{{AttachmentID: eni.AttachmentID, PrivateIpv4Address: eni.PrivateIP}}
	}
}

// eniAttachmentID is the id of the task's ENI attachment ("" if none).
func (r *taskRecord) eniAttachmentID() string {
	for _, a := range r.Task.Attachments {
		if a.Type == "ElasticNetworkInterface" {
			return a.ID
		}
	}
	return ""
}

// releaseENI frees the interface of a stopped task. Errors are logged: the
// purge controller tries again.
func (s *Service) releaseENI(ctx context.Context, r *taskRecord) bool {
	if r.Awsvpc == nil || r.Awsvpc.Released || s.cfg.Networks == nil {
		return false
	}
	id := r.eniAttachmentID()
	if id == "" {
		return false
	}
	if err := s.cfg.Networks.ReleaseENI(ctx, r.Spec.Account, r.Spec.Region, id); err != nil {
		s.log.Warn("release task network interface", "task", r.Task.TaskArn, "err", err)
		return false
	}
	return true
}

// portMappings lists the ports the task's containers expose.
func portMappings(td *TaskDefinition) []agentapi.PortMapping {
	var out []agentapi.PortMapping
	for _, c := range td.ContainerDefinitions {
		for _, pm := range c.PortMappings {
			if pm.ContainerPort == nil {
				continue
			}
			out = append(out, agentapi.PortMapping{ContainerPort: *pm.ContainerPort, Protocol: protoOf(pm.Protocol), ContainerName: c.Name})
		}
	}
	return out
}

// protoOf is a port mapping's protocol, lower case, tcp by default.
func protoOf(p string) string {
	if p == "" {
		return "tcp"
	}
	return strings.ToLower(p)
}
