package vpc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// EC2 error codes. Every client-visible error of the EC2 API is built here,
// worded as EC2 words it, so users can search for it.
const (
	codeAuthFailure           = "AuthFailure"
	codeDryRun                = "DryRunOperation"
	codeMissingParameter      = "MissingParameter"
	codeInvalidParameterValue = "InvalidParameterValue"
	codeInvalidParameterCombo = "InvalidParameterCombination"
	codeInvalidID             = "InvalidID"
	codeVpcNotFound           = "InvalidVpcID.NotFound"
	codeVpcMalformed          = "InvalidVpcID.Malformed"
	codeSubnetNotFound        = "InvalidSubnetID.NotFound"
	codeSubnetMalformed       = "InvalidSubnetID.Malformed"
	codeGroupNotFound         = "InvalidGroup.NotFound"
	codeGroupMalformed        = "InvalidGroupId.Malformed"
	codeGroupDuplicate        = "InvalidGroup.Duplicate"
	codeGroupReserved         = "InvalidGroup.Reserved"
	codeENINotFound           = "InvalidNetworkInterfaceID.NotFound"
	codeENIMalformed          = "InvalidNetworkInterfaceID.Malformed"
	codeRuleNotFound          = "InvalidSecurityGroupRuleId.NotFound"
	codeRuleMalformed         = "InvalidSecurityGroupRuleId.Malformed"
	codeSubnetRange           = "InvalidSubnet.Range"
	codeSubnetConflict        = "InvalidSubnet.Conflict"
	codeVpcRange              = "InvalidVpc.Range"
	codePermissionDuplicate   = "InvalidPermission.Duplicate"
	codePermissionNotFound    = "InvalidPermission.NotFound"
	codeDependencyViolation   = "DependencyViolation"
	codeCannotDelete          = "CannotDelete"
	codeVPCIDNotSpecified     = "VPCIdNotSpecified"
	codeRulesLimitExceeded    = "RulesPerSecurityGroupLimitExceeded"
	codeTagLimitExceeded      = "TagLimitExceeded"
	codeInvalidNextToken      = "InvalidNextToken"
	codeECSInvalidParameter   = "InvalidParameterException"
)

func apiErr(code, format string, args ...any) *protocol.Error {
	return protocol.NewError(code, http.StatusBadRequest, format, args...)
}

func errAuthFailure() error {
	return protocol.NewError(codeAuthFailure, http.StatusUnauthorized, "AWS was not able to validate the provided access credentials")
}

func errDryRun() error {
	return protocol.NewError(codeDryRun, http.StatusPreconditionFailed, "Request would have succeeded, but DryRun flag is set.")
}

func errMissing(param string) error {
	return apiErr(codeMissingParameter, "The request must contain the parameter %s", param)
}

func errInvalidValue(format string, args ...any) error {
	return apiErr(codeInvalidParameterValue, format, args...)
}

// errBadParam is EC2's "Value (x) for parameter p is invalid. why".
func errBadParam(param, value, why string) error {
	msg := fmt.Sprintf("Value (%s) for parameter %s is invalid.", value, param)
	if why != "" {
		msg += " " + why
	}
	return apiErr(codeInvalidParameterValue, "%s", msg)
}

func errCombination(format string, args ...any) error {
	return apiErr(codeInvalidParameterCombo, format, args...)
}

// kind names a resource type in EC2's messages and picks its error codes.
type kind struct {
	noun      string // "vpc", "subnet", "security group", "networkInterface"
	notFound  string
	malformed string
	prefix    string // id prefix without the dash: "vpc", "subnet", "sg", "eni"
}

var (
	kindVpc    = kind{"vpc", codeVpcNotFound, codeVpcMalformed, "vpc"}
	kindSubnet = kind{"subnet", codeSubnetNotFound, codeSubnetMalformed, "subnet"}
	kindGroup  = kind{"security group", codeGroupNotFound, codeGroupMalformed, "sg"}
	kindENI    = kind{"networkInterface", codeENINotFound, codeENIMalformed, "eni"}
	kindRule   = kind{"security group rule", codeRuleNotFound, codeRuleMalformed, "sgr"}
)

// errNotFound is the kind's NotFound error naming one or more ids:
// "The vpc ID 'vpc-1' does not exist", "The subnet IDs 'a, b' do not exist".
func errNotFound(k kind, ids ...string) error {
	if k == kindGroup {
		if len(ids) == 1 {
			return apiErr(k.notFound, "The security group '%s' does not exist", ids[0])
		}
		return apiErr(k.notFound, "The security groups '%s' do not exist", strings.Join(ids, ", "))
	}
	if k == kindRule {
		return apiErr(k.notFound, "The security group rule ID '%s' does not exist", strings.Join(ids, ", "))
	}
	if len(ids) == 1 {
		return apiErr(k.notFound, "The %s ID '%s' does not exist", k.noun, ids[0])
	}
	return apiErr(k.notFound, "The %s IDs '%s' do not exist", k.noun, strings.Join(ids, ", "))
}

// errMalformed is the kind's Malformed error for an id of the wrong shape.
func errMalformed(k kind, id string) error {
	switch k {
	case kindVpc, kindSubnet:
		return apiErr(k.malformed, "The %s ID '%s' is malformed", k.noun, id)
	default:
		return apiErr(k.malformed, "Invalid id: \"%s\" (expecting \"%s-...\")", id, k.prefix)
	}
}

func errGroupNameNotFound(name, vpcID string) error {
	if vpcID == "" {
		return apiErr(codeGroupNotFound, "The security group '%s' does not exist", name)
	}
	return apiErr(codeGroupNotFound, "The security group '%s' does not exist in VPC '%s'", name, vpcID)
}

func errNoDefaultVpc() error {
	return apiErr(codeVPCIDNotSpecified, "No default VPC for this user")
}

func errDependency(noun, id string) error {
	return apiErr(codeDependencyViolation, "The %s '%s' has dependencies and cannot be deleted.", noun, id)
}

func errGroupDependency(id string) error {
	return apiErr(codeDependencyViolation, "resource %s has a dependent object", id)
}

func errCIDRInvalid(code, cidr string) error {
	return apiErr(code, "The CIDR '%s' is invalid.", cidr)
}

func errSubnetConflict(cidr string) error {
	return apiErr(codeSubnetConflict, "The CIDR '%s' conflicts with another subnet", cidr)
}

func errZone(param, value string, zones []string) error {
	return apiErr(codeInvalidParameterValue,
		"Value (%s) for parameter %s is invalid. Subnets can currently only be created in the following availability zones: %s.",
		value, param, strings.Join(zones, ", "))
}

func errGroupDuplicate(name, vpcID string) error {
	return apiErr(codeGroupDuplicate, "The security group '%s' already exists for VPC '%s'", name, vpcID)
}

func errPermissionDuplicate(r ruleRecord) error {
	return apiErr(codePermissionDuplicate, "the specified rule \"%s\" already exists", describeRule(r))
}

func errPermissionNotFound() error {
	return apiErr(codePermissionNotFound, "The specified rule does not exist in this security group.")
}

// describeRule words a rule as EC2 does in its duplicate message:
// peer: 10.0.0.0/8, TCP, from port: 22, to port: 22, ALLOW.
func describeRule(r ruleRecord) string {
	peer := r.CIDR
	if peer == "" {
		peer = r.SourceGroup
	}
	proto := strings.ToUpper(r.Protocol)
	if r.Protocol == "-1" {
		proto = "ALL"
	}
	if hasPorts(r.Protocol) {
		return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, proto, r.FromPort, r.ToPort)
	}
	return fmt.Sprintf("peer: %s, %s, ALLOW", peer, proto)
}

func errInvalidFilter(name string) error {
	return apiErr(codeInvalidParameterValue, "The filter '%s' is invalid", name)
}

// ecsInvalid is an error ECS passes on to its caller as it is: ECS's
// InvalidParameterException.
func ecsInvalid(format string, args ...any) error {
	return protocol.NewError(codeECSInvalidParameter, http.StatusBadRequest, format, args...)
}

// stopError explains why a task cannot get a network interface, so ECS stops
// it (TaskFailedToStart) with Reason rather than trying again. ECS tests for
// it through the StopReason method.
type stopError struct{ reason string }

func (e *stopError) Error() string      { return e.reason }
func (e *stopError) StopReason() string { return e.reason }

func stopErr(format string, args ...any) error {
	return &stopError{reason: "ResourceInitializationError: " + fmt.Sprintf(format, args...)}
}

// asAPIErr returns err's *protocol.Error (err is one of ours, so it has one).
func asAPIErr(err error) *protocol.Error {
	var e *protocol.Error
	if errors.As(err, &e) {
		return e
	}
	return &protocol.Error{Code: "InternalError", Message: err.Error()}
}
