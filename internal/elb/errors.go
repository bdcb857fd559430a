package elb

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// ELBv2 error codes (botocore's elbv2 model). Every client-visible error of
// the API is built here, worded as ELBv2 words it.
const (
	codeAccessDenied          = "AccessDenied"
	codeValidation            = "ValidationError"
	codeLBNotFound            = "LoadBalancerNotFound"
	codeTGNotFound            = "TargetGroupNotFound"
	codeListenerNotFound      = "ListenerNotFound"
	codeRuleNotFound          = "RuleNotFound"
	codeDuplicateLBName       = "DuplicateLoadBalancerName"
	codeDuplicateTGName       = "DuplicateTargetGroupName"
	codeDuplicateListener     = "DuplicateListener"
	codeDuplicateTagKeys      = "DuplicateTagKeys"
	codePriorityInUse         = "PriorityInUse"
	codeResourceInUse         = "ResourceInUse"
	codeInvalidTarget         = "InvalidTarget"
	codeInvalidConfiguration  = "InvalidConfigurationRequest"
	codeSubnetNotFound        = "SubnetNotFound"
	codeInvalidSubnet         = "InvalidSubnet"
	codeInvalidSecurityGroup  = "InvalidSecurityGroup"
	codeTooManyTargets        = "TooManyTargets"
	codeTooManyTags           = "TooManyTags"
	codeTooManyListeners      = "TooManyListeners"
	codeTooManyRules          = "TooManyRules"
	codeUnsupportedProtocol   = "UnsupportedProtocol"
	codeTGAssociationLimit    = "TargetGroupAssociationLimit"
	codeIncompatibleProtocols = "IncompatibleProtocols"
	codeOperationNotPermitted = "OperationNotPermitted"
	codeInvalidLBAction       = "InvalidLoadBalancerAction"
	codeCertificateNotFound   = "CertificateNotFound"
)

func apiErr(code, format string, args ...any) *protocol.Error {
	return protocol.NewError(code, http.StatusBadRequest, format, args...)
}

func errAccessDenied() error {
	return protocol.NewError(codeAccessDenied, http.StatusForbidden, "Unable to determine the caller's account.")
}

func errValidation(format string, args ...any) error { return apiErr(codeValidation, format, args...) }

// errMissing is the query protocol's message for an absent required member.
func errMissing(param string) error {
	return errValidation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(param))
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func errLBNotFound() error { return apiErr(codeLBNotFound, "One or more load balancers not found") }
func errTGNotFound() error { return apiErr(codeTGNotFound, "One or more target groups not found") }
func errListenerNotFound() error {
	return apiErr(codeListenerNotFound, "One or more listeners not found")
}
func errRuleNotFound() error { return apiErr(codeRuleNotFound, "One or more rules not found") }

func errInvalidARN(arn, what string) error {
	return errValidation("'%s' is not a valid %s ARN", arn, what)
}

func errDuplicateLBName() error {
	return apiErr(codeDuplicateLBName, "A load balancer with the same name already exists")
}

func errDuplicateTGName() error {
	return apiErr(codeDuplicateTGName, "A target group with the same name already exists")
}

func errDuplicateListener() error {
	return apiErr(codeDuplicateListener, "A listener already exists on this port for this load balancer")
}

func errPriorityInUse(p int) error {
	return apiErr(codePriorityInUse, "Priority '%d' is currently in use", p)
}

func errTGInUse(arn string) error {
	return apiErr(codeResourceInUse, "Target group '%s' is currently in use by a listener or a rule", arn)
}

func errInvalidTarget(format string, args ...any) error {
	return apiErr(codeInvalidTarget, format, args...)
}

func errInvalidConfig(format string, args ...any) error {
	return apiErr(codeInvalidConfiguration, format, args...)
}

func errSubnetNotFound(ids []string) error {
	return apiErr(codeSubnetNotFound, "The subnet ID%s '%s' %s not found", plural(ids), strings.Join(ids, ", "), isAre(ids))
}

func errInvalidSubnet(format string, args ...any) error {
	return apiErr(codeInvalidSubnet, format, args...)
}

func errInvalidSecurityGroup(ids []string) error {
	return apiErr(codeInvalidSecurityGroup, "One or more security groups are invalid: '%s'", strings.Join(ids, ", "))
}

func errTooManyTargets() error {
	return apiErr(codeTooManyTargets, "You've reached the limit on the number of targets per target group (%d)", maxTargets)
}

func errTooManyTags() error {
	return apiErr(codeTooManyTags, "The quota for the number of tags that can be assigned to a load balancer resource has been reached (%d)", maxTags)
}

func errTooManyListeners() error {
	return apiErr(codeTooManyListeners, "You've reached the limit on the number of listeners per load balancer (%d)", maxListenersPerLB)
}

func errTooManyRules() error {
	return apiErr(codeTooManyRules, "You've reached the limit on the number of rules per listener (%d)", maxRulesPerListener)
}

func errDuplicateTagKeys(key string) error {
	return apiErr(codeDuplicateTagKeys, "Tag key '%s' is duplicated", key)
}

func errUnsupportedProtocol(proto, lbType string) error {
	return apiErr(codeUnsupportedProtocol, "Protocol '%s' is not supported for load balancers of type '%s'", proto, lbType)
}

func errTGAssociationLimit(arns []string) error {
	return apiErr(codeTGAssociationLimit, "The following target groups cannot be associated with more than one load balancer: %s", strings.Join(arns, ", "))
}

func errIncompatibleProtocols(listenerProto, tgProto string) error {
	return apiErr(codeIncompatibleProtocols, "Listener protocol '%s' is not supported with a target group with the protocol '%s'", listenerProto, tgProto)
}

func errNotPermitted(format string, args ...any) error {
	return apiErr(codeOperationNotPermitted, format, args...)
}

func errInvalidAction(format string, args ...any) error {
	return apiErr(codeInvalidLBAction, format, args...)
}

func plural(s []string) string {
	if len(s) > 1 {
		return "s"
	}
	return ""
}

func isAre(s []string) string {
	if len(s) > 1 {
		return "are"
	}
	return "is"
}

// errInternal wraps a failure that is not the client's.
func errInternal(what string, err error) error { return fmt.Errorf("%s: %w", what, err) }
