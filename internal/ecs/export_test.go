package ecs

import "encoding/json"

// DecodeTaskRecord is unmarshalTask for the external tests, which read
// stored task records (compressed: see recordcodec.go) into their own
// types.
func DecodeTaskRecord(stored []byte, v any) error {
	return withTaskJSON(stored, func(b []byte) error { return json.Unmarshal(b, v) })
}
