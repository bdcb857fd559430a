package protocol

// The query protocol (EC2, ELBv2, IAM): routing, authentication and dispatch.
// The reply and error documents are in query_xml.go, the error-code mapping
// in query_errors.go and the form helpers services use in query_form.go.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// QueryHandler serves one query-protocol action (EC2, ELBv2, IAM). params is
// the decoded form of the request (Action and Version included; lists as
// "Name.N" for EC2 and "Name.member.N" for the others: see the Query*
// helpers). The result is a struct whose exported fields carry `xml:"…"`
// tags; the Router writes those fields as the children of the reply (EC2)
// or of its <ActionResult> element (ELBv2, IAM). nil means no fields.
// Return an *Error (or wrap one) for a client-visible failure; any other
// error is logged and answered with an opaque 500.
//
// Shaping results: element names are the service's own (EC2 lowerCamel:
// vpcId, cidrBlock; ELBv2 and IAM UpperCamel: LoadBalancerArn). EC2 lists
// are <vpcSet><item>…</item></vpcSet>, the others'
// <LoadBalancers><member>…</member></LoadBalancers>: an [ItemList] or
// [MemberList] field tagged `xml:"vpcSet"`, or a plain slice tagged
// `xml:"vpcSet>item"`. Both write <vpcSet></vpcSet> for an empty (or nil)
// list, which clients read as an empty list (the AWS CLI prints []); to leave
// an empty list out (the CLI then omits the key), tag an ItemList or
// MemberList `xml:"vpcSet,omitempty"` (omitempty does not drop a plain
// slice's "vpcSet>" parent). A nil pointer field is left out, so optional
// scalars are pointers.
//
//	type vpc struct {
//		VpcID     string `xml:"vpcId"`
//		CidrBlock string `xml:"cidrBlock"`
//		IsDefault bool   `xml:"isDefault"`
//	}
//	type describeVpcsResult struct {
//		Vpcs      protocol.ItemList[vpc] `xml:"vpcSet"`
//		NextToken *string                `xml:"nextToken"`
//	}
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
	// Empty accepts any.
	SigningName string
	// XMLNamespace is the reply's xmlns, e.g.
	// "http://ec2.amazonaws.com/doc/2016-11-15/".
	XMLNamespace string
	Style        QueryStyle
	// Ops maps action names ("DescribeVpcs") to handlers. A name must be
	// an XML name of ASCII letters and digits: it becomes the reply's
	// element names.
	Ops map[string]QueryHandler
	// InternalErrorCode is the code of an internal failure (default
	// "InternalError" for StyleEC2, as EC2 says, else "InternalFailure").
	InternalErrorCode string
}

// Error codes of the query protocol the edge itself produces.
const (
	// CodeInvalidAction: a known Version with an unknown Action, or an
	// unknown Version.
	CodeInvalidAction = "InvalidAction"
	// CodeMissingAction: the request names no Action.
	CodeMissingAction = "MissingAction"
	// CodeMissingParameter: a required parameter (Version here) is absent.
	CodeMissingParameter = "MissingParameter"
	// CodeMalformedQueryString: the form could not be parsed.
	CodeMalformedQueryString = "MalformedQueryString"
	// CodeInvalidParameterValue: a parameter's value (or list index) is
	// invalid; the Query* helpers return it.
	CodeInvalidParameterValue = "InvalidParameterValue"
)

const codeEC2InternalError = "InternalError"

// AddQueryService registers a query-protocol service. It panics on an empty
// or already registered Version: that is a wiring bug.
func (r *Router) AddQueryService(s QueryService) {
	if s.Version == "" {
		panic("protocol: query service without a Version")
	}
	if s.Style != StyleEC2 && s.Style != StyleStandard {
		panic(fmt.Sprintf("protocol: query service %s has an unknown style %d", s.Version, s.Style))
	}
	ops := make(map[string]QueryHandler, len(s.Ops))
	for name, h := range s.Ops {
		if !isActionName(name) {
			panic(fmt.Sprintf("protocol: invalid action name %q for query service %s", name, s.Version))
		}
		if h == nil {
			panic(fmt.Sprintf("protocol: nil handler for %s %s", s.Version, name))
		}
		ops[name] = h
	}
	s.Ops = ops
	if s.InternalErrorCode == "" {
		s.InternalErrorCode = CodeInternalFailure
		if s.Style == StyleEC2 {
			s.InternalErrorCode = codeEC2InternalError
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.query[s.Version]; dup {
		panic(fmt.Sprintf("protocol: query service version %q registered twice", s.Version))
	}
	r.query[s.Version] = s
}

// isActionName reports whether name can be an action: 1-128 ASCII letters
// and digits starting with a letter. It becomes an XML element name.
func isActionName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// formContentType is the media type of a query request's body.
const formContentType = "application/x-www-form-urlencoded"

// isQueryRequest reports whether req (which has no X-Amz-Target) is a query
// request: a form-encoded POST, or a GET whose query string has an Action.
func isQueryRequest(req *http.Request) bool {
	switch req.Method {
	case http.MethodPost:
		mt, _, _ := strings.Cut(req.Header.Get("Content-Type"), ";")
		return strings.EqualFold(strings.TrimSpace(mt), formContentType)
	case http.MethodGet:
		q, err := url.ParseQuery(req.URL.RawQuery)
		return err == nil && q.Has("Action")
	}
	return false
}

// queryShape is how errors of a query request are written: the service's
// style and namespace once it is known, the standard shape before.
type queryShape struct {
	style QueryStyle
	xmlns string
}

// serveQuery serves a query request. It writes the reply on success and
// returns the error to be written otherwise, in the shape c.query says.
func (r *Router) serveQuery(ctx context.Context, w http.ResponseWriter, req *http.Request, c *call) error {
	c.query = &queryShape{style: StyleStandard}
	body, err := r.readBody(req)
	if err != nil {
		return err
	}
	params, perr := queryParams(req, body)
	action, version := params.Get("Action"), params.Get("Version")
	r.mu.RLock()
	svc, known := r.query[version]
	r.mu.RUnlock()
	known = known && perr == nil
	var h QueryHandler
	if known {
		c.query = &queryShape{style: svc.Style, xmlns: svc.XMLNamespace}
		c.service, c.internalCode = svc.SigningName, svc.InternalErrorCode
		if c.service == "" {
			c.service = svc.Version
		}
		if h = svc.Ops[action]; h != nil {
			c.operation = action
		}
	} else {
		svc = QueryService{} // sign for any service; learn nothing more
	}

	// Authenticate before routing further: a caller without valid
	// credentials learns nothing, not even whether an action exists.
	ctx, err = r.authenticate(ctx, req, body, svc.SigningName, c)
	if err != nil {
		return err
	}

	switch {
	case perr != nil:
		return perr
	case action == "":
		return NewError(CodeMissingAction, http.StatusBadRequest, "The request must contain the parameter Action.")
	case version == "":
		return NewError(CodeMissingParameter, http.StatusBadRequest, "The request must contain the parameter Version.")
	case !known:
		return NewError(CodeInvalidAction, http.StatusBadRequest, "Could not find operation %s for version %s",
			truncate(action, 128), truncate(version, 64))
	case h == nil:
		return NewError(CodeInvalidAction, http.StatusBadRequest, "The action %s is not valid for this web service.",
			truncate(action, 128))
	}
	if err := r.throttle(c); err != nil {
		return err
	}
	out, err := invoke(ctx, h, params)
	if err != nil {
		return err
	}
	reply, err := queryReply(svc.Style, svc.XMLNamespace, action, RequestIDFrom(ctx), out)
	if err != nil {
		return fmt.Errorf("%s %s: %w", svc.Version, action, err)
	}
	writeXML(w, http.StatusOK, reply)
	return nil
}

// queryParams decodes a query request's parameters: the body of a POST, then
// the query string (as http.Request.ParseForm orders them); the query string
// of a GET. A malformed form is a MalformedQueryString *Error.
func queryParams(req *http.Request, body []byte) (url.Values, error) {
	malformed := NewError(CodeMalformedQueryString, http.StatusBadRequest, "The query string contains a syntax error.")
	q, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return q, malformed
	}
	if req.Method != http.MethodPost {
		return q, nil
	}
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return params, malformed
	}
	for k, vs := range q {
		params[k] = append(params[k], vs...)
	}
	return params, nil
}
