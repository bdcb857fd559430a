package protocol

import (
	"context"
	"net/url"
)

// QueryHandler serves one query-protocol action (EC2, ELBv2, IAM). params is
// the decoded form of the request (Action and Version included; lists as
// "Name.N" for EC2 and "Name.member.N" for the others: see the Query*
// helpers). The result is a struct whose exported fields carry `xml:"…"`
// tags; the Router writes those fields as the children of the reply (EC2)
// or of its <ActionResult> element (ELBv2, IAM). nil means no fields.
// Return an *Error (or wrap one) for a client-visible failure; any other
// error is logged and answered with an opaque 500.
type QueryHandler func(ctx context.Context, params url.Values) (any, error)

// QueryStyle is how a query-protocol service shapes replies and errors.
type QueryStyle int

const (
	// StyleEC2: <ActionResponse xmlns=…><requestId>…</requestId>fields…
	// </ActionResponse>; errors are <Response><Errors><Error><Code/>
	// <Message/></Error></Errors><RequestID/></Response>.
	StyleEC2 QueryStyle = iota
	// StyleStandard (ELBv2, IAM): <ActionResponse xmlns=…><ActionResult>
	// fields…</ActionResult><ResponseMetadata><RequestId/></ResponseMetadata>
	// </ActionResponse>; errors are <ErrorResponse><Error><Type>Sender
	// </Type><Code/><Message/></Error><RequestId/></ErrorResponse>.
	StyleStandard
)

// QueryService is a query-protocol service: the actions of one API Version.
type QueryService struct {
	// Version is the API version requests carry, e.g. "2016-11-15".
	Version string
	// SigningName is the service the credential scope must name ("ec2").
	SigningName string
	// XMLNamespace is the reply's xmlns, e.g.
	// "http://ec2.amazonaws.com/doc/2016-11-15/".
	XMLNamespace string
	Style        QueryStyle
	// Ops maps action names ("DescribeVpcs") to handlers.
	Ops map[string]QueryHandler
	// InternalErrorCode is the code of an internal failure
	// (default "InternalFailure"; EC2 says "InternalError").
	InternalErrorCode string
}

// AddQueryService registers a query-protocol service. It panics on an empty
// or already registered Version: that is a wiring bug.
func (r *Router) AddQueryService(s QueryService) {
	panic("protocol: AddQueryService not implemented yet")
}
