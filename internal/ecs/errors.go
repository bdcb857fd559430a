package ecs

import "github.com/berthdev/berth/internal/protocol"

// ECS exception names. Every error the ECS API returns is one of these,
// mapped here and nowhere else.
const (
	codeClient               = "ClientException"
	codeInvalidParameter     = "InvalidParameterException"
	codeClusterNotFound      = "ClusterNotFoundException"
	codeClusterContainsTasks = "ClusterContainsTasksException"
	codeAccessDenied         = "AccessDeniedException"
	codeServer               = "ServerException"
	codeResourceNotFound     = "ResourceNotFoundException"
	codeServiceNotFound      = "ServiceNotFoundException"
	codeServiceNotActive     = "ServiceNotActiveException"
	codeTargetNotFound       = "TargetNotFoundException"
	codeAttributeLimit       = "AttributeLimitExceededException"
)

func clientErr(format string, args ...any) error {
	return protocol.NewError(codeClient, 400, format, args...)
}

func invalidParam(format string, args ...any) error {
	return protocol.NewError(codeInvalidParameter, 400, format, args...)
}

func clusterNotFound() error {
	return protocol.NewError(codeClusterNotFound, 400, "Cluster not found.")
}

func newErr(code, msg string) error { return protocol.NewError(code, 400, "%s", msg) }
