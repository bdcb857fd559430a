// Package protocol owns berth's AWS wire edge: the single HTTP endpoint every
// AWS CLI, SDK and berth client talks to.
//
// It routes each request to the service that owns it, verifies the caller's
// AWS Signature Version 4 against the account's keys, decodes the request,
// and writes replies and errors in the shape the protocol prescribes, so the
// real AWS tools accept them. Services (internal/ecs, internal/ecr, …) only
// register operations with a Router and return values or *Error; they never
// see HTTP, signatures or wire error shapes.
//
// Protocols:
//
//   - awsJson1_1 (ECS, ECR, CloudWatch Logs, Cost Explorer): POST / with
//     X-Amz-Target: <TargetPrefix>.<Operation>, JSON in and out. Register with
//     [Router.AddJSONService].
//   - query (EC2, ELBv2, IAM): no X-Amz-Target; a form-encoded POST (or a
//     GET with the parameters in the query string) naming an Action and a
//     Version, XML out. Register with [Router.AddQueryService]: one
//     [QueryService] per API Version, in [StyleEC2] (<requestId>, EC2's
//     <Response><Errors> errors) or [StyleStandard] (<ActionResult>,
//     <ErrorResponse> errors). Handlers read the flattened form with
//     [QueryList], [QueryMemberList], [QueryStructs], [QueryMemberStructs],
//     [QueryInt] and [QueryBool], and return a struct with `xml` tags
//     ([ItemList] and [MemberList] for lists; see [QueryHandler]).
//     Authentication failures use the query protocol's codes (EC2's
//     AuthFailure, the others' InvalidClientTokenId, SignatureDoesNotMatch).
//   - Anything that is not an AWS protocol (the OCI registry under /v2/, the
//     agent API, /metrics) is mounted by path prefix with [Router.Handle] and
//     does its own authentication.
//
// Errors are translated to the wire once, at the edge: a handler returns an
// *Error (or wraps one) and the Router writes it; any other error is logged
// and becomes an opaque 500 so internal detail never leaks to clients.
package protocol
