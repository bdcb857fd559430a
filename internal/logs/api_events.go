package logs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// CloudWatch Logs' limits.
const (
	maxBatchEvents  = 10000
	maxBatchBytes   = 1048576
	maxEventBytes   = 1048576 - 26
	maxReadEvents   = 10000
	maxReadBytes    = 1 << 20
	tooOldAge       = 14 * 24 * time.Hour
	tooNewAhead     = 2 * time.Hour
	maxBatchSpan    = 24 * time.Hour
	filterScanLimit = 200000 // events examined per FilterLogEvents call
)

// InputLogEvent is an event as PutLogEvents takes it.
type InputLogEvent struct {
	Timestamp *int64  `json:"timestamp"`
	Message   *string `json:"message"`
}

type putLogEventsInput struct {
	LogGroupName  string          `json:"logGroupName"`
	LogStreamName string          `json:"logStreamName"`
	LogEvents     []InputLogEvent `json:"logEvents"`
	SequenceToken string          `json:"sequenceToken"`
}

// RejectedLogEventsInfo says which events of a batch were not stored.
type RejectedLogEventsInfo struct {
	TooNewLogEventStartIndex *int `json:"tooNewLogEventStartIndex,omitempty"`
	TooOldLogEventEndIndex   *int `json:"tooOldLogEventEndIndex,omitempty"`
	ExpiredLogEventEndIndex  *int `json:"expiredLogEventEndIndex,omitempty"`
}

type putLogEventsOutput struct {
	NextSequenceToken     string                 `json:"nextSequenceToken"`
	RejectedLogEventsInfo *RejectedLogEventsInfo `json:"rejectedLogEventsInfo,omitempty"`
}

// sequenceToken is an opaque upload sequence token (ignored on input, as
// AWS now ignores it).
func sequenceToken(stream, seq uint64) string {
	return fmt.Sprintf("%d%036d", stream, seq)
}

func (s *Service) putLogEvents(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in putLogEventsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	if err := checkStreamName("logStreamName", in.LogStreamName); err != nil {
		return nil, err
	}
	switch {
	case in.LogEvents == nil:
		return nil, missing("logEvents")
	case len(in.LogEvents) == 0:
		return nil, validation("logEvents", "[]", "Member must have length greater than or equal to 1")
	case len(in.LogEvents) > maxBatchEvents:
		return nil, validation("logEvents", "[...]", "Member must have length less than or equal to 10000")
	}
	size := 0
	var minTS, maxTS int64 = math.MaxInt64, math.MinInt64
	for i, e := range in.LogEvents {
		if e.Timestamp == nil {
			return nil, missing(fmt.Sprintf("logEvents.%d.member.timestamp", i+1))
		}
		if e.Message == nil {
			return nil, missing(fmt.Sprintf("logEvents.%d.member.message", i+1))
		}
		if len(*e.Message) < 1 {
			return nil, validation(fmt.Sprintf("logEvents.%d.member.message", i+1), "", "Member must have length greater than or equal to 1")
		}
		if len(*e.Message) > maxEventBytes {
			return nil, invalidParam("Log event too large: %d bytes exceeds limit of %d", len(*e.Message)+26, maxEventBytes+26)
		}
		size += len(*e.Message) + 26
		minTS, maxTS = min(minTS, *e.Timestamp), max(maxTS, *e.Timestamp)
	}
	if size > maxBatchBytes {
		return nil, invalidParam("Upload too large: %d bytes exceeds limit of %d", size, maxBatchBytes)
	}
	if time.Duration(maxTS-minTS)*time.Millisecond > maxBatchSpan {
		return nil, invalidParam("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	g, err := s.st.Group(sc, in.LogGroupName)
	if err != nil {
		return nil, apiError(err)
	}
	now := s.cfg.Now()
	events, rejected := admit(in.LogEvents, now, g.RetentionInDays)
	out := putLogEventsOutput{RejectedLogEventsInfo: rejected}
	var last uint64
	if len(events) > 0 {
		if last, err = s.st.Append(sc, in.LogGroupName, in.LogStreamName, events, now, PutOptions{}); err != nil {
			return nil, apiError(err)
		}
	} else if _, err := s.st.readStream(sc, in.LogGroupName, in.LogStreamName, pos{}, pos{}, true, 0, 0); err != nil {
		return nil, apiError(err) // a missing stream is an error even if nothing is stored
	}
	out.NextSequenceToken = sequenceToken(0, last)
	return out, nil
}

// admit drops the events CloudWatch Logs would reject for their age (more
// than 14 days, or the group's retention, in the past; more than 2 hours in
// the future) and says which. Rejected indices are reported as AWS does:
// the end index of the too-old ones, the start index of the too-new ones,
// under the assumption that the batch is in order.
func admit(in []InputLogEvent, now time.Time, retentionDays int) ([]Event, *RejectedLogEventsInfo) {
	oldest := now.Add(-tooOldAge).UnixMilli()
	expired := int64(math.MinInt64)
	if retentionDays > 0 {
		expired = now.Add(-time.Duration(retentionDays) * 24 * time.Hour).UnixMilli()
	}
	newest := now.Add(tooNewAhead).UnixMilli()
	var rej RejectedLogEventsInfo
	any := false
	out := make([]Event, 0, len(in))
	for i, e := range in {
		ts := *e.Timestamp
		switch {
		case ts < expired:
			rej.ExpiredLogEventEndIndex, any = &i, true
		case ts < oldest || ts < 0:
			rej.TooOldLogEventEndIndex, any = &i, true
		case ts > newest:
			if rej.TooNewLogEventStartIndex == nil {
				rej.TooNewLogEventStartIndex = &i
			}
			any = true
		default:
			out = append(out, Event{Timestamp: ts, Message: *e.Message})
		}
	}
	if !any {
		return out, nil
	}
	return out, &rej
}

type getLogEventsInput struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
	LogStreamName      string `json:"logStreamName"`
	StartTime          *int64 `json:"startTime"`
	EndTime            *int64 `json:"endTime"`
	NextToken          string `json:"nextToken"`
	Limit              *int   `json:"limit"`
	StartFromHead      bool   `json:"startFromHead"`
}

// OutputLogEvent is an event as GetLogEvents returns it.
type OutputLogEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

// GetLogEventsOutput is GetLogEvents' reply.
type GetLogEventsOutput struct {
	Events            []OutputLogEvent `json:"events"`
	NextForwardToken  string           `json:"nextForwardToken"`
	NextBackwardToken string           `json:"nextBackwardToken"`
}

// Tokens of GetLogEvents name a position in the stream, like AWS's
// "f/<digits>" and "b/<digits>": f/P reads forward from P (inclusive), b/P
// reads backward from P (exclusive).
func encodeToken(dir byte, p pos) string { return fmt.Sprintf("%c/%020d%020d", dir, p.ts, p.seq) }

func decodeToken(tok string) (byte, pos, error) {
	bad := invalidParam("The specified nextToken is invalid.")
	if len(tok) != 42 || (tok[0] != 'f' && tok[0] != 'b') || tok[1] != '/' {
		return 0, pos{}, bad
	}
	ts, err1 := strconv.ParseUint(tok[2:22], 10, 64)
	seq, err2 := strconv.ParseUint(tok[22:], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, pos{}, bad
	}
	return tok[0], pos{ts: ts, seq: seq}, nil
}

// timeRange is [startTime, endTime) as positions.
func timeRange(start, end *int64) (pos, pos, error) {
	from, to := pos{}, pos{ts: math.MaxUint64, seq: math.MaxUint64}
	if start != nil {
		if *start < 0 {
			return from, to, validation("startTime", strconv.FormatInt(*start, 10), "Member must have value greater than or equal to 0")
		}
		from = pos{ts: uint64(*start)}
	}
	if end != nil {
		if *end < 0 {
			return from, to, validation("endTime", strconv.FormatInt(*end, 10), "Member must have value greater than or equal to 0")
		}
		to = pos{ts: uint64(*end)}
	}
	return from, to, nil
}

func (s *Service) getLogEvents(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in getLogEventsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	group, err := groupFromIdentifier(sc, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if err := checkStreamName("logStreamName", in.LogStreamName); err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, maxReadEvents)
	if err != nil {
		return nil, err
	}
	from, to, err := timeRange(in.StartTime, in.EndTime)
	if err != nil {
		return nil, err
	}
	forward := in.StartFromHead
	if in.NextToken != "" {
		dir, p, err := decodeToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		forward = dir == 'f'
		if forward && from.less(p) {
			from = p
		}
		if !forward && p.less(to) {
			to = p
		}
	}
	events, err := s.st.readStream(sc, group, in.LogStreamName, from, to, forward, limit, maxReadBytes)
	if err != nil {
		return nil, apiError(err)
	}
	out := GetLogEventsOutput{Events: make([]OutputLogEvent, 0, len(events))}
	for _, e := range events {
		out.Events = append(out.Events, OutputLogEvent{Timestamp: e.Timestamp, Message: e.Message, IngestionTime: e.IngestionTime})
	}
	switch {
	case len(events) > 0:
		first, last := events[0], events[len(events)-1]
		out.NextForwardToken = encodeToken('f', pos{ts: uint64(last.Timestamp), seq: last.Seq}.next())
		out.NextBackwardToken = encodeToken('b', pos{ts: uint64(first.Timestamp), seq: first.Seq})
	case forward:
		// Nothing new: the same forward token again, which is how clients
		// know they reached the end.
		out.NextForwardToken, out.NextBackwardToken = encodeToken('f', from), encodeToken('b', from)
	default:
		out.NextForwardToken, out.NextBackwardToken = encodeToken('f', to), encodeToken('b', to)
	}
	return out, nil
}

type filterLogEventsInput struct {
	LogGroupName        string   `json:"logGroupName"`
	LogGroupIdentifier  string   `json:"logGroupIdentifier"`
	LogStreamNames      []string `json:"logStreamNames"`
	LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
	StartTime           *int64   `json:"startTime"`
	EndTime             *int64   `json:"endTime"`
	FilterPattern       string   `json:"filterPattern"`
	NextToken           string   `json:"nextToken"`
	Limit               *int     `json:"limit"`
	Interleaved         bool     `json:"interleaved"`
}

// FilteredLogEvent is an event as FilterLogEvents returns it.
type FilteredLogEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

// FilterLogEventsOutput is FilterLogEvents' reply.
type FilterLogEventsOutput struct {
	Events             []FilteredLogEvent `json:"events"`
	SearchedLogStreams []struct{}         `json:"searchedLogStreams"`
	NextToken          string             `json:"nextToken,omitempty"`
}

// eventID names an event uniquely within its group (seq is unique in the
// store), as a string of digits like AWS's.
func eventID(e Event) string { return fmt.Sprintf("%020d%020d", e.Timestamp, e.Seq) }

func encodeFilterToken(p pos) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "p:%d:%d", p.ts, p.seq))
}

func decodeFilterToken(tok string) (pos, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	parts := strings.Split(string(b), ":")
	if err != nil || len(parts) != 3 || parts[0] != "p" {
		return pos{}, invalidParam("The specified nextToken is invalid.")
	}
	ts, err1 := strconv.ParseUint(parts[1], 10, 64)
	seq, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return pos{}, invalidParam("The specified nextToken is invalid.")
	}
	return pos{ts: ts, seq: seq}, nil
}

func (s *Service) filterLogEvents(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in filterLogEventsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	group, err := groupFromIdentifier(sc, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != "" {
		return nil, invalidParam("Cannot specify both logStreamNames and logStreamNamePrefix.")
	}
	if len(in.LogStreamNames) > 100 {
		return nil, validation("logStreamNames", "[...]", "Member must have length less than or equal to 100")
	}
	limit, err := checkLimit(in.Limit, maxReadEvents)
	if err != nil {
		return nil, err
	}
	from, to, err := timeRange(in.StartTime, in.EndTime)
	if err != nil {
		return nil, err
	}
	pat, err := ParsePattern(in.FilterPattern)
	if errors.Is(err, ErrUnsupportedPattern) {
		return nil, invalidParam("Filter pattern %q is not supported by berth: only terms, quoted phrases, ?terms and -terms are.", in.FilterPattern)
	} else if err != nil {
		return nil, invalidParam("Invalid filter pattern")
	}
	if in.NextToken != "" {
		p, err := decodeFilterToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		if from.less(p) {
			from = p
		}
	}
	names := map[string]bool{}
	for _, n := range in.LogStreamNames {
		names[n] = true
	}
	want := func(name string) bool {
		if len(names) > 0 {
			return names[name]
		}
		return strings.HasPrefix(name, in.LogStreamNamePrefix)
	}
	out := FilterLogEventsOutput{Events: []FilteredLogEvent{}, SearchedLogStreams: []struct{}{}}
	size := 0
	next, more, err := s.st.scanGroup(sc, group, want, from, to, filterScanLimit, func(e Event) bool {
		if !pat.Match(e.Message) {
			return true
		}
		if len(out.Events) == limit || size+eventCost(e) > maxReadBytes && len(out.Events) > 0 {
			return false
		}
		size += eventCost(e)
		out.Events = append(out.Events, FilteredLogEvent{LogStreamName: e.Stream, Timestamp: e.Timestamp,
			Message: e.Message, IngestionTime: e.IngestionTime, EventID: eventID(e)})
		return true
	})
	if err != nil {
		return nil, apiError(err)
	}
	if more {
		out.NextToken = encodeFilterToken(next)
	}
	return out, nil
}
