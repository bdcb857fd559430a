package protocol

// The query protocol's XML documents: replies, errors and the list types
// services shape results with.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
)

const (
	xmlDeclaration = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	xmlContentType = "text/xml;charset=UTF-8"
)

// ItemList is a list written the EC2 way: a field of this type tagged
// `xml:"vpcSet"` is <vpcSet><item>…</item>…</vpcSet>, and <vpcSet></vpcSet>
// when empty or nil, which clients read as an empty list (the AWS CLI prints
// [], as it does for EC2's own replies). Tagged `xml:"vpcSet,omitempty"`, an
// empty list is left out (the CLI omits the key). A plain slice tagged
// `xml:"vpcSet>item"` writes the same, but encoding/xml always writes its
// "vpcSet" parent, omitempty or not.
type ItemList[T any] []T

// MarshalXML writes l as <start><item>…</item>…</start>.
func (l ItemList[T]) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return marshalList(e, start, "item", l)
}

// MemberList is a list written the ELBv2 and IAM way: a field of this type
// tagged `xml:"LoadBalancers"` is
// <LoadBalancers><member>…</member>…</LoadBalancers>, and
// <LoadBalancers></LoadBalancers> when empty (see ItemList).
type MemberList[T any] []T

// MarshalXML writes l as <start><member>…</member>…</start>.
func (l MemberList[T]) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	return marshalList(e, start, "member", l)
}

func marshalList[T any](e *xml.Encoder, start xml.StartElement, item string, items []T) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	el := xml.StartElement{Name: xml.Name{Local: item}}
	for i := range items {
		if err := e.EncodeElement(items[i], el); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// queryReply builds the document of a successful reply to action: the
// result's fields inside <ActionResponse> after <requestId> (EC2), or inside
// <ActionResult> followed by <ResponseMetadata> (standard).
func queryReply(style QueryStyle, xmlns, action, requestID string, result any) ([]byte, error) {
	fields, err := encodeFields(result)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	resp := action + "Response"
	if style == StyleEC2 {
		b.WriteString(xmlDeclaration)
	}
	openElement(&b, resp, xmlns)
	if style == StyleEC2 {
		textElement(&b, "requestId", requestID)
		b.Write(fields)
	} else {
		res := action + "Result"
		openElement(&b, res, "")
		b.Write(fields)
		closeElement(&b, res)
		b.WriteString("<ResponseMetadata>")
		textElement(&b, "RequestId", requestID)
		b.WriteString("</ResponseMetadata>")
	}
	closeElement(&b, resp)
	return b.Bytes(), nil
}

// fieldsWrapper is the element encodeFields encodes a result in and then
// strips; any name works, since EncodeElement uses it in place of the type's.
const fieldsWrapper = "fields"

// encodeFields encodes the fields of result (a struct or a pointer to one;
// nil for none) as a sequence of XML elements, without an enclosing element.
func encodeFields(result any) ([]byte, error) {
	if result == nil {
		return nil, nil
	}
	v := reflect.ValueOf(result)
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, nil
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("encode query result: %T is not a struct or a pointer to one", result)
	}
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: fieldsWrapper}}); err != nil {
		return nil, fmt.Errorf("encode query result %T: %w", result, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode query result %T: %w", result, err)
	}
	const open, end = "<" + fieldsWrapper + ">", "</" + fieldsWrapper + ">"
	out := buf.Bytes()
	if len(out) < len(open)+len(end) || !bytes.HasPrefix(out, []byte(open)) || !bytes.HasSuffix(out, []byte(end)) {
		// An attribute field, or a MarshalXML writing its own element.
		return nil, fmt.Errorf("encode query result %T: it must encode as child elements only, got %.64q", result, out)
	}
	return out[len(open) : len(out)-len(end)], nil
}

// queryErrorDoc builds the error document for e in shape's style.
func queryErrorDoc(shape *queryShape, e *Error, requestID string) []byte {
	var b bytes.Buffer
	if shape.style == StyleEC2 {
		b.WriteString(xmlDeclaration)
		b.WriteString("<Response><Errors><Error>")
		textElement(&b, "Code", e.Code)
		textElement(&b, "Message", e.Message)
		b.WriteString("</Error></Errors>")
		textElement(&b, "RequestID", requestID)
		b.WriteString("</Response>")
		return b.Bytes()
	}
	errType := "Sender"
	if e.HTTPStatus() >= 500 {
		errType = "Receiver"
	}
	openElement(&b, "ErrorResponse", shape.xmlns)
	b.WriteString("<Error>")
	textElement(&b, "Type", errType)
	textElement(&b, "Code", e.Code)
	textElement(&b, "Message", e.Message)
	b.WriteString("</Error>")
	textElement(&b, "RequestId", requestID)
	closeElement(&b, "ErrorResponse")
	return b.Bytes()
}

// writeQueryError writes e as a query-protocol error in shape's style.
// Error.Fields are an awsJson feature and are not written.
func writeQueryError(w http.ResponseWriter, shape *queryShape, e *Error, requestID string) {
	writeXML(w, e.HTTPStatus(), queryErrorDoc(shape, e, requestID))
}

func writeXML(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", xmlContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// openElement writes <name> or <name xmlns="ns">; name is trusted (an
// action name or a constant).
func openElement(b *bytes.Buffer, name, xmlns string) {
	b.WriteByte('<')
	b.WriteString(name)
	if xmlns != "" {
		b.WriteString(` xmlns="`)
		_ = xml.EscapeText(b, []byte(xmlns)) // escapes '"' too
		b.WriteByte('"')
	}
	b.WriteByte('>')
}

func closeElement(b *bytes.Buffer, name string) {
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

// textElement writes <name>text</name>, text escaped (invalid UTF-8 and
// characters XML cannot carry become U+FFFD).
func textElement(b *bytes.Buffer, name, text string) {
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteByte('>')
	_ = xml.EscapeText(b, []byte(text)) // a bytes.Buffer does not fail
	closeElement(b, name)
}
