package logs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// CloudWatch Logs exception names. Every error the API returns is one of
// these, mapped here and nowhere else.
const (
	codeResourceNotFound      = "ResourceNotFoundException"
	codeResourceAlreadyExists = "ResourceAlreadyExistsException"
	codeInvalidParameter      = "InvalidParameterException"
	codeAccessDenied          = "AccessDeniedException"
	codeServiceUnavailable    = "ServiceUnavailableException"
)

// AWS's messages.
const (
	msgGroupNotFound  = "The specified log group does not exist."
	msgStreamNotFound = "The specified log stream does not exist."
	msgGroupExists    = "The specified log group already exists"
	msgStreamExists   = "The specified log stream already exists"
)

func invalidParam(format string, args ...any) error {
	return protocol.NewError(codeInvalidParameter, 400, format, args...)
}

// apiError translates a store error to the wire; other errors pass through
// (and become an opaque internal error at the edge).
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrGroupNotFound):
		return protocol.NewError(codeResourceNotFound, 400, msgGroupNotFound)
	case errors.Is(err, ErrStreamNotFound):
		return protocol.NewError(codeResourceNotFound, 400, msgStreamNotFound)
	case errors.Is(err, ErrGroupExists):
		return protocol.NewError(codeResourceAlreadyExists, 400, msgGroupExists)
	case errors.Is(err, ErrStreamExists):
		return protocol.NewError(codeResourceAlreadyExists, 400, msgStreamExists)
	}
	return err
}

var (
	groupNameRE  = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`)
	streamNameRE = regexp.MustCompile(`^[^:*]*$`)
)

// validation is AWS's "1 validation error detected" message.
func validation(field, value, constraint string) error {
	return invalidParam("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

func missing(field string) error {
	return invalidParam("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

func checkGroupName(field, name string) error {
	switch {
	case name == "":
		return missing(field)
	case len(name) > 512:
		return validation(field, name, "Member must have length less than or equal to 512")
	case !groupNameRE.MatchString(name):
		return validation(field, name, `Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+`)
	}
	return nil
}

func checkStreamName(field, name string) error {
	switch {
	case name == "":
		return missing(field)
	case len(name) > 512:
		return validation(field, name, "Member must have length less than or equal to 512")
	case !streamNameRE.MatchString(name):
		return validation(field, name, "Member must satisfy regular expression pattern: [^:*]*")
	}
	return nil
}

// groupFromIdentifier resolves logGroupName or logGroupIdentifier (a name
// or an ARN of the caller's own scope) to a group name.
func groupFromIdentifier(sc Scope, name, identifier string) (string, error) {
	switch {
	case name != "" && identifier != "":
		return "", invalidParam("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
	case identifier != "":
		if rest, ok := strings.CutPrefix(identifier, "arn:aws:logs:"); ok {
			parts := strings.SplitN(rest, ":", 4) // region, account, "log-group", name[:*]
			if len(parts) != 4 || !strings.HasPrefix(parts[3], "log-group:") {
				return "", invalidParam("Invalid ARN: %s", identifier)
			}
			if parts[0] != sc.Region || parts[1] != sc.Account {
				return "", protocol.NewError(codeResourceNotFound, 400, msgGroupNotFound)
			}
			name = strings.TrimSuffix(strings.TrimPrefix(parts[3], "log-group:"), ":*")
		} else {
			name = identifier
		}
		return name, checkGroupName("logGroupIdentifier", name)
	}
	return name, checkGroupName("logGroupName", name)
}

// retentionDays are the values PutRetentionPolicy accepts.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

func checkRetention(days int) error {
	for _, d := range retentionDays {
		if d == days {
			return nil
		}
	}
	set := make([]string, len(retentionDays))
	for i, d := range retentionDays {
		set[i] = fmt.Sprint(d)
	}
	return validation("retentionInDays", fmt.Sprint(days), "Member must satisfy enum value set: ["+strings.Join(set, ", ")+"]")
}
