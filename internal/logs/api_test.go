package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

type apiEnv struct {
	t   *testing.T
	s   *Service
	now time.Time
}

func newAPIEnv(t *testing.T) *apiEnv {
	e := &apiEnv{t: t, now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	e.s = New(Config{Store: newTestStore(t), Now: func() time.Time { return e.now }})
	return e
}

func ctxFor(account string) context.Context {
	return protocol.WithIdentity(context.Background(), protocol.Identity{AccountID: account, Region: "us-east-1"})
}

// call invokes an operation as account a (111111111111) and decodes the
// reply into out; it returns the API error code ("" on success).
func (e *apiEnv) call(op string, in any, out any) (string, string) {
	return e.callAs("111111111111", op, in, out)
}

func (e *apiEnv) callAs(account, op string, in any, out any) (string, string) {
	e.t.Helper()
	body, _ := json.Marshal(in)
	res, err := e.s.JSONService().Ops[op](ctxFor(account), body)
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			e.t.Fatalf("%s: internal error %v", op, err)
		}
		return pe.Code, pe.Message
	}
	if out != nil {
		b, _ := json.Marshal(res)
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatal(err)
		}
	}
	return "", ""
}

func (e *apiEnv) ok(op string, in any, out any) {
	e.t.Helper()
	if code, msg := e.call(op, in, out); code != "" {
		e.t.Fatalf("%s: %s: %s", op, code, msg)
	}
}

type m = map[string]any

func (e *apiEnv) put(group, stream string, msgs ...string) {
	e.t.Helper()
	var evs []m
	for i, msg := range msgs {
		evs = append(evs, m{"timestamp": e.now.UnixMilli() + int64(i), "message": msg})
	}
	e.ok("PutLogEvents", m{"logGroupName": group, "logStreamName": stream, "logEvents": evs}, nil)
}

func TestAPIErrors(t *testing.T) {
	e := newAPIEnv(t)
	e.ok("CreateLogGroup", m{"logGroupName": "/app/web"}, nil)
	e.ok("CreateLogStream", m{"logGroupName": "/app/web", "logStreamName": "s1"}, nil)
	tests := []struct {
		op, code, msg string
		in            m
	}{
		{"CreateLogGroup", codeResourceAlreadyExists, msgGroupExists, m{"logGroupName": "/app/web"}},
		{"CreateLogGroup", codeInvalidParameter, "regular expression pattern", m{"logGroupName": "bad name"}},
		{"CreateLogGroup", codeInvalidParameter, "Member must not be null", m{}},
		{"CreateLogStream", codeResourceAlreadyExists, msgStreamExists, m{"logGroupName": "/app/web", "logStreamName": "s1"}},
		{"CreateLogStream", codeResourceNotFound, msgGroupNotFound, m{"logGroupName": "/nope", "logStreamName": "s1"}},
		{"CreateLogStream", codeInvalidParameter, "[^:*]*", m{"logGroupName": "/app/web", "logStreamName": "a:b"}},
		{"DeleteLogGroup", codeResourceNotFound, msgGroupNotFound, m{"logGroupName": "/nope"}},
		{"DeleteLogStream", codeResourceNotFound, msgStreamNotFound, m{"logGroupName": "/app/web", "logStreamName": "nope"}},
		{"PutRetentionPolicy", codeInvalidParameter, "enum value set", m{"logGroupName": "/app/web", "retentionInDays": 2}},
		{"PutRetentionPolicy", codeResourceNotFound, msgGroupNotFound, m{"logGroupName": "/nope", "retentionInDays": 1}},
		{"PutLogEvents", codeResourceNotFound, msgStreamNotFound, m{"logGroupName": "/app/web", "logStreamName": "nope",
			"logEvents": []m{{"timestamp": e.now.UnixMilli(), "message": "x"}}}},
		{"PutLogEvents", codeResourceNotFound, msgGroupNotFound, m{"logGroupName": "/nope", "logStreamName": "s1",
			"logEvents": []m{{"timestamp": e.now.UnixMilli(), "message": "x"}}}},
		{"PutLogEvents", codeInvalidParameter, "length greater than or equal to 1", m{"logGroupName": "/app/web", "logStreamName": "s1", "logEvents": []m{}}},
		{"PutLogEvents", codeInvalidParameter, "Upload too large", m{"logGroupName": "/app/web", "logStreamName": "s1",
			"logEvents": []m{{"timestamp": 1, "message": strings.Repeat("x", 600000)}, {"timestamp": 1, "message": strings.Repeat("x", 600000)}}}},
		{"PutLogEvents", codeInvalidParameter, "24 hours", m{"logGroupName": "/app/web", "logStreamName": "s1",
			"logEvents": []m{{"timestamp": 1, "message": "a"}, {"timestamp": 2 * 86400000, "message": "b"}}}},
		{"GetLogEvents", codeResourceNotFound, msgStreamNotFound, m{"logGroupName": "/app/web", "logStreamName": "nope"}},
		{"GetLogEvents", codeInvalidParameter, "nextToken", m{"logGroupName": "/app/web", "logStreamName": "s1", "nextToken": "f/123"}},
		{"GetLogEvents", codeInvalidParameter, "less than or equal to 10000", m{"logGroupName": "/app/web", "logStreamName": "s1", "limit": 10001}},
		{"FilterLogEvents", codeResourceNotFound, msgGroupNotFound, m{"logGroupName": "/nope"}},
		{"FilterLogEvents", codeInvalidParameter, "not supported", m{"logGroupName": "/app/web", "filterPattern": "{ $.a = 1 }"}},
		{"FilterLogEvents", codeInvalidParameter, "Invalid filter pattern", m{"logGroupName": "/app/web", "filterPattern": `"open`}},
		{"FilterLogEvents", codeInvalidParameter, "Cannot specify both", m{"logGroupName": "/app/web", "logStreamNames": []string{"s1"}, "logStreamNamePrefix": "s"}},
		{"DescribeLogStreams", codeResourceNotFound, msgGroupNotFound, m{"logGroupName": "/nope"}},
		{"DescribeLogStreams", codeInvalidParameter, "Cannot order by LastEventTime", m{"logGroupName": "/app/web", "orderBy": "LastEventTime", "logStreamNamePrefix": "s"}},
		{"DescribeLogGroups", codeInvalidParameter, "less than or equal to 50", m{"limit": 51}},
	}
	for _, tt := range tests {
		t.Run(tt.op+"/"+tt.code, func(t *testing.T) {
			code, msg := e.call(tt.op, tt.in, nil)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%s %v: got %s %q, want %s containing %q", tt.op, tt.in, code, msg, tt.code, tt.msg)
			}
		})
	}
	// Another account sees none of it.
	if code, _ := e.callAs("222222222222", "DescribeLogStreams", m{"logGroupName": "/app/web"}, nil); code != codeResourceNotFound {
		t.Fatalf("other account: %s", code)
	}
}

func TestAPIGetLogEventsPaging(t *testing.T) {
	e := newAPIEnv(t)
	e.ok("CreateLogGroup", m{"logGroupName": "g"}, nil)
	e.ok("CreateLogStream", m{"logGroupName": "g", "logStreamName": "s"}, nil)
	var msgs []string
	for i := 1; i <= 25; i++ {
		msgs = append(msgs, fmt.Sprint(i))
	}
	e.put("g", "s", msgs...)
	type page struct {
		Events []struct {
			Message string `json:"message"`
		} `json:"events"`
		NextForwardToken  string `json:"nextForwardToken"`
		NextBackwardToken string `json:"nextBackwardToken"`
	}
	get := func(in m) (p page, got []string) {
		in["logGroupName"], in["logStreamName"] = "g", "s"
		e.ok("GetLogEvents", in, &p)
		for _, ev := range p.Events {
			got = append(got, ev.Message)
		}
		return p, got
	}
	// Forward from the head, 10 at a time, until the token repeats.
	var all []string
	tok := ""
	for n := 0; n < 10; n++ {
		in := m{"startFromHead": true, "limit": 10}
		if tok != "" {
			in["nextToken"] = tok
		}
		p, got := get(in)
		all = append(all, got...)
		if !strings.HasPrefix(p.NextForwardToken, "f/") || !strings.HasPrefix(p.NextBackwardToken, "b/") {
			t.Fatalf("tokens %q %q", p.NextForwardToken, p.NextBackwardToken)
		}
		if p.NextForwardToken == tok {
			break
		}
		tok = p.NextForwardToken
	}
	if fmt.Sprint(all) != fmt.Sprint(msgs) {
		t.Fatalf("forward pages: %v", all)
	}
	// New events appear behind the last forward token.
	e.now = e.now.Add(time.Minute)
	e.put("g", "s", "26")
	if _, got := get(m{"nextToken": tok}); fmt.Sprint(got) != "[26]" {
		t.Fatalf("after more events: %v", got)
	}
	// Without startFromHead: the newest events; then backward.
	p, got := get(m{"limit": 5})
	if fmt.Sprint(got) != "[22 23 24 25 26]" {
		t.Fatalf("tail: %v", got)
	}
	if _, got = get(m{"limit": 5, "nextToken": p.NextBackwardToken}); fmt.Sprint(got) != "[17 18 19 20 21]" {
		t.Fatalf("backward: %v", got)
	}
	// Time range: [start, end).
	start := e.now.UnixMilli() + 2
	if _, got = get(m{"startFromHead": true, "startTime": start - 60000, "endTime": start - 60000 + 3}); fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("time range: %v", got)
	}
}

func TestAPIFilterLogEvents(t *testing.T) {
	e := newAPIEnv(t)
	e.ok("CreateLogGroup", m{"logGroupName": "g"}, nil)
	for _, s := range []string{"web/1", "web/2", "db/1"} {
		e.ok("CreateLogStream", m{"logGroupName": "g", "logStreamName": s}, nil)
	}
	e.put("g", "web/1", "GET /a 200", "GET /b 500 error")
	e.put("g", "web/2", "POST /c 200", "disk full error")
	e.put("g", "db/1", "ERROR deadlock", "checkpoint")
	tests := []struct {
		name string
		in   m
		want string
	}{
		{"all, interleaved by time", m{}, "[GET /a 200 POST /c 200 ERROR deadlock GET /b 500 error disk full error checkpoint]"},
		{"term", m{"filterPattern": "error"}, "[GET /b 500 error disk full error]"},
		{"terms are case sensitive", m{"filterPattern": "ERROR"}, "[ERROR deadlock]"},
		{"all terms", m{"filterPattern": "GET 200"}, "[GET /a 200]"},
		{"quoted phrase", m{"filterPattern": `"disk full"`}, "[disk full error]"},
		{"any", m{"filterPattern": "?deadlock ?POST"}, "[POST /c 200 ERROR deadlock]"},
		{"exclude", m{"filterPattern": "error -disk"}, "[GET /b 500 error]"},
		{"stream prefix", m{"logStreamNamePrefix": "web/"}, "[GET /a 200 POST /c 200 GET /b 500 error disk full error]"},
		{"stream names", m{"logStreamNames": []string{"db/1"}}, "[ERROR deadlock checkpoint]"},
		{"time range", m{"startTime": e.now.UnixMilli() + 1}, "[GET /b 500 error disk full error checkpoint]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in["logGroupName"] = "g"
			var out struct {
				Events []struct {
					Message, LogStreamName, EventID string
				} `json:"events"`
				NextToken string `json:"nextToken"`
			}
			e.ok("FilterLogEvents", tt.in, &out)
			var got []string
			for _, ev := range out.Events {
				got = append(got, ev.Message)
				if ev.EventID == "" || ev.LogStreamName == "" {
					t.Fatalf("event %+v", ev)
				}
			}
			if fmt.Sprint(got) != tt.want || out.NextToken != "" {
				t.Fatalf("got %v (next %q), want %s", got, out.NextToken, tt.want)
			}
		})
	}
	// Paging with limit: every event once.
	var got []string
	tok := ""
	for n := 0; n < 10; n++ {
		in := m{"logGroupName": "g", "limit": 4}
		if tok != "" {
			in["nextToken"] = tok
		}
		var out struct {
			Events    []struct{ Message string } `json:"events"`
			NextToken string                     `json:"nextToken"`
		}
		e.ok("FilterLogEvents", in, &out)
		for _, ev := range out.Events {
			got = append(got, ev.Message)
		}
		if tok = out.NextToken; tok == "" {
			break
		}
	}
	if len(got) != 6 {
		t.Fatalf("paged filter: %v", got)
	}
}

func TestAPIDescribeAndRetention(t *testing.T) {
	e := newAPIEnv(t)
	for _, g := range []string{"/b", "/a/1", "/a/2", "/c"} {
		e.ok("CreateLogGroup", m{"logGroupName": g}, nil)
	}
	e.ok("PutRetentionPolicy", m{"logGroupName": "/a/1", "retentionInDays": 7}, nil)
	var names []string
	tok := ""
	for {
		in := m{"limit": 3}
		if tok != "" {
			in["nextToken"] = tok
		}
		var out struct {
			LogGroups []LogGroup `json:"logGroups"`
			NextToken string     `json:"nextToken"`
		}
		e.ok("DescribeLogGroups", in, &out)
		for _, g := range out.LogGroups {
			names = append(names, g.LogGroupName)
			if g.LogGroupName == "/a/1" && (g.RetentionInDays == nil || *g.RetentionInDays != 7) {
				t.Errorf("retention of /a/1: %v", g.RetentionInDays)
			}
			if g.Arn != "arn:aws:logs:us-east-1:111111111111:log-group:"+g.LogGroupName+":*" {
				t.Errorf("arn %s", g.Arn)
			}
		}
		if tok = out.NextToken; tok == "" {
			break
		}
	}
	if fmt.Sprint(names) != "[/a/1 /a/2 /b /c]" {
		t.Fatalf("groups: %v", names)
	}
	var pref struct {
		LogGroups []LogGroup `json:"logGroups"`
	}
	e.ok("DescribeLogGroups", m{"logGroupNamePrefix": "/a/"}, &pref)
	if len(pref.LogGroups) != 2 {
		t.Fatalf("prefix: %+v", pref.LogGroups)
	}

	// Streams, by name and by last event time.
	for _, s := range []string{"x", "y", "z"} {
		e.ok("CreateLogStream", m{"logGroupName": "/b", "logStreamName": s}, nil)
	}
	e.put("/b", "y", "1")
	e.now = e.now.Add(time.Second)
	e.put("/b", "x", "2")
	var streams struct {
		LogStreams []LogStream `json:"logStreams"`
	}
	e.ok("DescribeLogStreams", m{"logGroupName": "/b", "orderBy": "LastEventTime", "descending": true}, &streams)
	var order []string
	for _, s := range streams.LogStreams {
		order = append(order, s.LogStreamName)
	}
	if fmt.Sprint(order) != "[x y z]" || streams.LogStreams[0].StoredBytes != 1 || streams.LogStreams[0].LastEventTimestamp == nil {
		t.Fatalf("streams by last event: %v %+v", order, streams.LogStreams[0])
	}

	// Expiry by the retention policy: the controller deletes old events.
	e.ok("PutRetentionPolicy", m{"logGroupName": "/b", "retentionInDays": 1}, nil)
	e.now = e.now.Add(25 * time.Hour)
	e.s.expire()
	var got struct {
		Events []struct{ Message string } `json:"events"`
	}
	e.ok("FilterLogEvents", m{"logGroupName": "/b"}, &got)
	if len(got.Events) != 0 {
		t.Fatalf("after expiry: %+v", got.Events)
	}
	e.ok("DeleteRetentionPolicy", m{"logGroupName": "/b"}, nil)
	e.ok("DeleteLogStream", m{"logGroupName": "/b", "logStreamName": "x"}, nil)
	e.ok("DeleteLogGroup", m{"logGroupName": "/b"}, nil)
	if code, _ := e.call("DescribeLogStreams", m{"logGroupName": "/b"}, nil); code != codeResourceNotFound {
		t.Fatalf("deleted group: %s", code)
	}
}

func TestAPIPutRejectsByAge(t *testing.T) {
	e := newAPIEnv(t)
	e.ok("CreateLogGroup", m{"logGroupName": "g"}, nil)
	e.ok("CreateLogStream", m{"logGroupName": "g", "logStreamName": "s"}, nil)
	now := e.now.UnixMilli()
	var out struct {
		NextSequenceToken     string                `json:"nextSequenceToken"`
		RejectedLogEventsInfo RejectedLogEventsInfo `json:"rejectedLogEventsInfo"`
	}
	e.ok("PutLogEvents", m{"logGroupName": "g", "logStreamName": "s", "logEvents": []m{
		{"timestamp": now - 15*86400000, "message": "old"}, {"timestamp": now - 15*86400000 + 1, "message": "old2"}}}, &out)
	r := out.RejectedLogEventsInfo
	if r.TooOldLogEventEndIndex == nil || *r.TooOldLogEventEndIndex != 1 || out.NextSequenceToken == "" {
		t.Fatalf("rejected %+v", out)
	}
	out.RejectedLogEventsInfo = RejectedLogEventsInfo{}
	e.ok("PutLogEvents", m{"logGroupName": "g", "logStreamName": "s", "logEvents": []m{
		{"timestamp": now, "message": "ok"}, {"timestamp": now + 3*3600000, "message": "new"}}}, &out)
	r = out.RejectedLogEventsInfo
	if r.TooNewLogEventStartIndex == nil || *r.TooNewLogEventStartIndex != 1 {
		t.Fatalf("rejected %+v", out)
	}
}
