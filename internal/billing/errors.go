package billing

import "github.com/berthdev/berth/internal/protocol"

// Cost Explorer's exception names. Every error the API returns is one of
// these, mapped here and nowhere else.
const (
	codeValidation      = "ValidationException"
	codeDataUnavailable = "DataUnavailableException"
	codeAccessDenied    = "AccessDeniedException"
	codeInvalidToken    = "InvalidNextTokenException"
)

func validation(format string, args ...any) error {
	return protocol.NewError(codeValidation, 400, format, args...)
}

func dataUnavailable(format string, args ...any) error {
	return protocol.NewError(codeDataUnavailable, 400, format, args...)
}

func accessDenied() error {
	return protocol.NewError(codeAccessDenied, 400, "The request is not authenticated.")
}

func invalidToken() error {
	return protocol.NewError(codeInvalidToken, 400, "The next page token is invalid.")
}
