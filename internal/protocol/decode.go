package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
)

// Decode decodes an awsJson request body into v (a pointer), strictly enough
// for clients to learn what they got wrong:
//
//   - an empty body is "{}";
//   - malformed JSON is a SerializationException;
//   - a value of the wrong JSON type is a SerializationException naming the
//     field (its dotted path from the top);
//   - unknown fields are ignored, as AWS ignores them.
//
// An *Error returned by a field's own UnmarshalJSON passes through unchanged.
// Misuse (v not a non-nil pointer) is an internal error, not the client's.
//
// Field names match case-insensitively (encoding/json's rule), where AWS is
// case-sensitive; no client sends differently-cased members, so the looser
// match is harmless.
func Decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	if e := asAPIError(err); e != nil {
		return e
	}
	var (
		syntaxErr  *json.SyntaxError
		typeErr    *json.UnmarshalTypeError
		invalidErr *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &invalidErr):
		return fmt.Errorf("decode request: %w", err)
	case errors.As(err, &syntaxErr):
		return NewError(CodeSerialization, http.StatusBadRequest,
			"Malformed JSON request body at offset %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return NewError(CodeSerialization, http.StatusBadRequest,
				"Cannot deserialize request: expected %s, got %s", jsonKind(typeErr.Type), typeErr.Value)
		}
		return NewError(CodeSerialization, http.StatusBadRequest,
			"Cannot deserialize field '%s': expected %s, got %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	default:
		// A field's own UnmarshalJSON rejected its value (a bad timestamp,
		// an unknown enum): that is about the input, so say it.
		return NewError(CodeSerialization, http.StatusBadRequest, "Cannot deserialize request: %s", err.Error())
	}
}

// jsonKind names a Go type the way the AWS API models name shapes.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "map"
	case reflect.Struct:
		return "structure"
	default:
		return "value"
	}
}
