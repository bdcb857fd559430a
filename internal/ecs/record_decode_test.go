package ecs

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/klauspost/compress/s2"
)

// fill sets every field reachable from v to a value that is not its zero
// value (slices and maps of two), so that a round trip exercises each field.
func fill(v reflect.Value, n *int, depth int) {
	*n++
	switch {
	case v.Type() == reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.UnixMilli(1795677438000 + int64(*n)).UTC()))
		return
	case v.Type() == reflect.TypeOf(json.RawMessage{}):
		v.SetBytes([]byte(fmt.Sprintf(`{"k":%d}`, *n)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n % 100))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Pointer:
		if depth > 6 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n, depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n, depth+1)
			}
		}
	case reflect.Slice:
		if depth > 6 {
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if depth > 6 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n, depth+1)
			fill(e, n, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(fmt.Sprintf("i%d", *n)))
	}
}

// Task records are written by encoding/json and read by unmarshalTask (the
// JSON v2 prototype): both decoders must read every field alike, from a
// record with every field set and from one as RunTask leaves it.
func TestTaskRecordDecoders(t *testing.T) {
	var full taskRecord
	n := 0
	fill(reflect.ValueOf(&full).Elem(), &n, 0)
	sparse := taskRecord{Task: Task{TaskArn: "arn:aws:ecs:us-east-1:000000000000:task/c/t1", LastStatus: "PROVISIONING",
		CreatedAt: NewTime(time.UnixMilli(1795677438819))}}
	for name, rec := range map[string]taskRecord{"every field set": full, "sparse": sparse} {
		b, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		var v1, v2 taskRecord
		if err := json.Unmarshal(b, &v1); err != nil {
			t.Fatal(err)
		}
		if err := unmarshalTask(b, &v2); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(v1, v2) {
			a, _ := json.Marshal(&v1)
			c, _ := json.Marshal(&v2)
			t.Fatalf("%s: encoding/json and unmarshalTask disagree:\n%s\n%s", name, a, c)
		}
		if name == "every field set" && len(b) < 2000 {
			t.Fatalf("the filled record is only %d bytes: fill missed fields", len(b))
		}
		// As stored (compressed), it reads back the same, through both
		// the record's own decoder and the store's.
		stored, err := encodeTask(&rec)
		if err != nil {
			t.Fatal(err)
		}
		if stored[0] != summarizedRecord || len(stored) >= len(b) {
			t.Errorf("%s: stored %d bytes (tag %#x) for %d bytes of JSON", name, len(stored), stored[0], len(b))
		}
		// Stored with a summary, with a summary of the first eight fields
		// (as berth wrote them before they held the host), compressed
		// without one (before summaries), and as plain JSON (before that).
		old := append([]byte{compressedRecord}, s2.Encode(nil, b)...)
		sum := rec.indexed()
		var head []byte
		fields := sum.fields()
		for _, f := range fields[:hostlessFields] {
			head = append(binary.AppendUvarint(head, uint64(len(*f))), *f...)
		}
		hostless := append(binary.AppendUvarint([]byte{summarizedRecord}, uint64(len(head))), head...)
		hostless = append(hostless, s2.Encode(nil, b)...)
		for form, stored := range map[string][]byte{"summarized": stored, "hostless summary": hostless, "compressed": old, "plain": b} {
			var v3, v4 taskRecord
			if err := unmarshalTask(stored, &v3); err != nil || !reflect.DeepEqual(v1, v3) {
				t.Fatalf("%s, %s: the stored record reads back as %+v (%v)", name, form, v3, err)
			}
			if err := v4.DecodeStored(stored); err != nil || !reflect.DeepEqual(v1, v4) {
				t.Fatalf("%s, %s: DecodeStored: %v", name, form, err)
			}
			// The task index reads the same fields from the summary as
			// from the JSON.
			var fromJSON, indexed indexedRecord
			if err := jsonv2.Unmarshal(b, &fromJSON); err != nil {
				t.Fatal(err)
			}
			if err := decodeIndexed(stored, &indexed); err != nil || indexed != fromJSON {
				t.Fatalf("%s, %s: indexed fields %+v (%v), want %+v", name, form, indexed, err, fromJSON)
			}
			if ok, _ := parseSummary(stored, &indexed); ok != (form == "summarized") {
				t.Errorf("%s, %s: parseSummary found a summary: %v", name, form, ok)
			}
		}
	}
	// A corrupt record is an error, not a zero record.
	for name, stored := range map[string][]byte{
		"compressed data": {compressedRecord, 0xff, 0xff},
		"summary length":  {summarizedRecord, 0x7f, 'a'},
		"summary field":   {summarizedRecord, 0x02, 0x7f, 'a'},
	} {
		var v taskRecord
		var x indexedRecord
		if unmarshalTask(stored, &v) == nil || decodeIndexed(stored, &x) == nil {
			t.Errorf("a record with a corrupt %s decoded", name)
		}
	}
}
