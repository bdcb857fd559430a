package logs

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

type createLogGroupInput struct {
	LogGroupName string            `json:"logGroupName"`
	Tags         map[string]string `json:"tags"`
}

func (s *Service) createLogGroup(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in createLogGroupInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	return nil, apiError(s.st.CreateGroup(sc, in.LogGroupName, s.cfg.Now()))
}

type describeLogGroupsInput struct {
	LogGroupNamePrefix string `json:"logGroupNamePrefix"`
	NextToken          string `json:"nextToken"`
	Limit              *int   `json:"limit"`
}

// LogGroup is a log group as DescribeLogGroups shows it.
type LogGroup struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime"`
	RetentionInDays   *int   `json:"retentionInDays,omitempty"`
	MetricFilterCount int    `json:"metricFilterCount"`
	Arn               string `json:"arn"`
	LogGroupArn       string `json:"logGroupArn"`
	StoredBytes       int64  `json:"storedBytes"`
	LogGroupClass     string `json:"logGroupClass"`
}

func (s *Service) describeLogGroups(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in describeLogGroupsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, 50)
	if err != nil {
		return nil, err
	}
	if in.LogGroupNamePrefix != "" {
		if err := checkGroupName("logGroupNamePrefix", in.LogGroupNamePrefix); err != nil {
			return nil, err
		}
	}
	after, err := decodeNameToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	groups, more, err := s.st.Groups(sc, in.LogGroupNamePrefix, after, limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		LogGroups []LogGroup `json:"logGroups"`
		NextToken string     `json:"nextToken,omitempty"`
	}{LogGroups: []LogGroup{}}
	for _, g := range groups {
		lg := LogGroup{LogGroupName: g.Name, CreationTime: g.CreationTime, Arn: groupArn(sc, g.Name) + ":*",
			LogGroupArn: groupArn(sc, g.Name), StoredBytes: g.StoredBytes, LogGroupClass: "STANDARD"}
		if g.RetentionInDays > 0 {
			d := g.RetentionInDays
			lg.RetentionInDays = &d
		}
		out.LogGroups = append(out.LogGroups, lg)
	}
	if more && len(groups) > 0 {
		out.NextToken = encodeNameToken(groups[len(groups)-1].Name)
	}
	return out, nil
}

func checkLimit(l *int, max int) (int, error) {
	if l == nil {
		return max, nil
	}
	if *l < 1 {
		return 0, validation("limit", strconv.Itoa(*l), "Member must have value greater than or equal to 1")
	}
	if *l > max {
		return 0, validation("limit", strconv.Itoa(*l), "Member must have value less than or equal to "+strconv.Itoa(max))
	}
	return *l, nil
}

// Describe tokens are opaque to clients: base64 of a name (or an index).
func encodeNameToken(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("n:" + name))
}

func decodeNameToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	name, ok := strings.CutPrefix(string(b), "n:")
	if err != nil || !ok {
		return "", invalidParam("The specified nextToken is invalid.")
	}
	return name, nil
}

type groupNameInput struct {
	LogGroupName    string `json:"logGroupName"`
	RetentionInDays int    `json:"retentionInDays"`
}

func (s *Service) deleteLogGroup(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in groupNameInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	return nil, apiError(s.st.DeleteGroup(sc, in.LogGroupName))
}

func (s *Service) putRetentionPolicy(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in groupNameInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	if err := checkRetention(in.RetentionInDays); err != nil {
		return nil, err
	}
	return nil, apiError(s.st.SetRetention(sc, in.LogGroupName, in.RetentionInDays))
}

func (s *Service) deleteRetentionPolicy(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in groupNameInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	return nil, apiError(s.st.SetRetention(sc, in.LogGroupName, 0))
}

type streamInput struct {
	LogGroupName  string `json:"logGroupName"`
	LogStreamName string `json:"logStreamName"`
}

func (s *Service) createLogStream(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in streamInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	if err := checkStreamName("logStreamName", in.LogStreamName); err != nil {
		return nil, err
	}
	return nil, apiError(s.st.CreateStream(sc, in.LogGroupName, in.LogStreamName, s.cfg.Now()))
}

func (s *Service) deleteLogStream(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in streamInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName("logGroupName", in.LogGroupName); err != nil {
		return nil, err
	}
	if err := checkStreamName("logStreamName", in.LogStreamName); err != nil {
		return nil, err
	}
	return nil, apiError(s.st.DeleteStream(sc, in.LogGroupName, in.LogStreamName))
}

type describeLogStreamsInput struct {
	LogGroupName        string `json:"logGroupName"`
	LogGroupIdentifier  string `json:"logGroupIdentifier"`
	LogStreamNamePrefix string `json:"logStreamNamePrefix"`
	OrderBy             string `json:"orderBy"`
	Descending          bool   `json:"descending"`
	NextToken           string `json:"nextToken"`
	Limit               *int   `json:"limit"`
}

// LogStream is a log stream as DescribeLogStreams shows it.
type LogStream struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp *int64 `json:"firstEventTimestamp,omitempty"`
	LastEventTimestamp  *int64 `json:"lastEventTimestamp,omitempty"`
	LastIngestionTime   *int64 `json:"lastIngestionTime,omitempty"`
	UploadSequenceToken string `json:"uploadSequenceToken,omitempty"`
	Arn                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

func (s *Service) describeLogStreams(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in describeLogStreamsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	group, err := groupFromIdentifier(sc, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	limit, err := checkLimit(in.Limit, 50)
	if err != nil {
		return nil, err
	}
	byLast := false
	switch in.OrderBy {
	case "", "LogStreamName":
	case "LastEventTime":
		byLast = true
		if in.LogStreamNamePrefix != "" {
			return nil, invalidParam("Cannot order by LastEventTime with a logStreamNamePrefix.")
		}
	default:
		return nil, validation("orderBy", in.OrderBy, "Member must satisfy enum value set: [LogStreamName, LastEventTime]")
	}
	start := 0
	if in.NextToken != "" {
		b, derr := base64.RawURLEncoding.DecodeString(in.NextToken)
		i, ok := strings.CutPrefix(string(b), "i:")
		var err error
		if start, err = strconv.Atoi(i); derr != nil || err != nil || !ok || start < 0 {
			return nil, invalidParam("The specified nextToken is invalid.")
		}
	}
	list, err := s.st.Streams(sc, group, in.LogStreamNamePrefix)
	if err != nil {
		return nil, apiError(err)
	}
	sortStreams(list, byLast, in.Descending)
	out := struct {
		LogStreams []LogStream `json:"logStreams"`
		NextToken  string      `json:"nextToken,omitempty"`
	}{LogStreams: []LogStream{}}
	for i := start; i < len(list) && i < start+limit; i++ {
		r := list[i]
		ls := LogStream{LogStreamName: r.Name, CreationTime: r.CreationTime, Arn: streamArn(sc, group, r.Name), StoredBytes: r.StoredBytes}
		if r.Events > 0 {
			first, last := r.FirstEventTimestamp, r.LastEventTimestamp
			ls.FirstEventTimestamp, ls.LastEventTimestamp = &first, &last
		}
		if r.LastIngestionTime > 0 {
			ing := r.LastIngestionTime
			ls.LastIngestionTime = &ing
			ls.UploadSequenceToken = sequenceToken(r.ID, uint64(r.LastIngestionTime))
		}
		out.LogStreams = append(out.LogStreams, ls)
	}
	if start+limit < len(list) {
		out.NextToken = base64.RawURLEncoding.EncodeToString([]byte("i:" + strconv.Itoa(start+limit)))
	}
	return out, nil
}
