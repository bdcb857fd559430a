package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// The real AWS CLI v2 against the CloudWatch Logs API through berth's
// protocol router: it must send what the handlers read and parse what they
// reply.

const awsCLI = "/usr/bin/aws"

type cliKeys map[string]string

func (k cliKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	if acct, ok := k[akid]; ok {
		return "secret", acct, nil
	}
	return "", "", protocol.ErrUnknownKey
}

type cliEnv struct {
	t              *testing.T
	endpoint, home string

	mu      sync.Mutex
	targets []string // X-Amz-Target of every request, in order
}

func newCLIEnv(t *testing.T) *cliEnv {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("AWS CLI not installed at %s", awsCLI)
	}
	s := New(Config{Store: newTestStore(t)})
	router := protocol.NewRouter(cliKeys{"a": "111111111111", "b": "222222222222"}, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddJSONService(s.JSONService())
	c := &cliEnv{t: t, home: t.TempDir()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.mu.Lock()
		c.targets = append(c.targets, r.Header.Get("X-Amz-Target")+" "+string(body))
		c.mu.Unlock()
		router.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.endpoint = srv.URL
	if err := os.WriteFile(filepath.Join(c.home, "config"), []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cliEnv) cmd(ctx context.Context, key string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, awsCLI, append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + c.home,
		"AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(c.home, "credentials"),
		"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	return cmd
}

func (c *cliEnv) aws(key string, args ...string) (string, string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, key, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err == nil
}

func (c *cliEnv) ok(v any, args ...string) {
	c.t.Helper()
	out, errOut, ok := c.aws("a", args...)
	if !ok {
		c.t.Fatalf("aws %s: %s", strings.Join(args, " "), errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s: %v in %q", strings.Join(args, " "), err, out)
		}
	}
}

func (c *cliEnv) fails(key, code string, args ...string) {
	c.t.Helper()
	_, errOut, ok := c.aws(key, args...)
	if ok || !strings.Contains(errOut, "An error occurred ("+code+")") {
		c.t.Fatalf("aws %s: ok=%v %q, want %s", strings.Join(args, " "), ok, errOut, code)
	}
}

func TestAWSCLI(t *testing.T) {
	c := newCLIEnv(t)
	c.ok(nil, "logs", "create-log-group", "--log-group-name", "/cli/app")
	c.fails("a", "ResourceAlreadyExistsException", "logs", "create-log-group", "--log-group-name", "/cli/app")
	c.fails("a", "InvalidParameterException", "logs", "create-log-group", "--log-group-name", "no spaces")
	c.ok(nil, "logs", "create-log-stream", "--log-group-name", "/cli/app", "--log-stream-name", "web/1")
	c.fails("a", "ResourceNotFoundException", "logs", "create-log-stream", "--log-group-name", "/nope", "--log-stream-name", "s")

	now := time.Now().UnixMilli()
	var evs []map[string]any
	for i := 1; i <= 25; i++ {
		evs = append(evs, map[string]any{"timestamp": now + int64(i), "message": fmt.Sprintf("line %d", i)})
	}
	b, _ := json.Marshal(evs)
	evFile := filepath.Join(c.home, "events.json")
	if err := os.WriteFile(evFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var put struct {
		NextSequenceToken string `json:"nextSequenceToken"`
	}
	c.ok(&put, "logs", "put-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "web/1", "--log-events", "file://"+evFile)
	if put.NextSequenceToken == "" {
		t.Fatal("no nextSequenceToken")
	}
	c.fails("a", "ResourceNotFoundException", "logs", "put-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "nope",
		"--log-events", fmt.Sprintf("timestamp=%d,message=x", now))

	// get-log-events, 10 per page, until the forward token repeats.
	var got []string
	token := ""
	for pages := 0; pages < 10; pages++ {
		args := []string{"logs", "get-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "web/1", "--start-from-head", "--limit", "10"}
		if token != "" {
			args = append(args, "--next-token", token)
		}
		var out struct {
			Events []struct {
				Message       string `json:"message"`
				Timestamp     int64  `json:"timestamp"`
				IngestionTime int64  `json:"ingestionTime"`
			} `json:"events"`
			NextForwardToken  string `json:"nextForwardToken"`
			NextBackwardToken string `json:"nextBackwardToken"`
		}
		c.ok(&out, args...)
		for _, e := range out.Events {
			got = append(got, e.Message)
		}
		if out.NextForwardToken == token {
			break
		}
		token = out.NextForwardToken
	}
	if len(got) != 25 || got[0] != "line 1" || got[24] != "line 25" {
		t.Fatalf("get-log-events pages: %v", got)
	}

	// filter-log-events: a term, a quoted phrase; the CLI pages by itself.
	var filtered struct {
		Events []struct {
			Message, LogStreamName, EventID string
		} `json:"events"`
	}
	c.ok(&filtered, "logs", "filter-log-events", "--log-group-name", "/cli/app", "--filter-pattern", `"line 17"`)
	if len(filtered.Events) != 1 || filtered.Events[0].Message != "line 17" || filtered.Events[0].LogStreamName != "web/1" {
		t.Fatalf("filter: %+v", filtered.Events)
	}
	c.ok(&filtered, "logs", "filter-log-events", "--log-group-name", "/cli/app", "--page-size", "4")
	if len(filtered.Events) != 25 {
		t.Fatalf("filter, paged by the CLI: %d events", len(filtered.Events))
	}

	// describe-*, retention.
	c.ok(nil, "logs", "put-retention-policy", "--log-group-name", "/cli/app", "--retention-in-days", "7")
	c.fails("a", "InvalidParameterException", "logs", "put-retention-policy", "--log-group-name", "/cli/app", "--retention-in-days", "2")
	var groups struct {
		LogGroups []LogGroup `json:"logGroups"`
	}
	c.ok(&groups, "logs", "describe-log-groups", "--log-group-name-prefix", "/cli/")
	if len(groups.LogGroups) != 1 || groups.LogGroups[0].RetentionInDays == nil || *groups.LogGroups[0].RetentionInDays != 7 ||
		groups.LogGroups[0].StoredBytes == 0 {
		t.Fatalf("describe-log-groups: %+v", groups.LogGroups)
	}
	var streams struct {
		LogStreams []LogStream `json:"logStreams"`
	}
	c.ok(&streams, "logs", "describe-log-streams", "--log-group-name", "/cli/app", "--order-by", "LastEventTime", "--descending")
	if len(streams.LogStreams) != 1 || streams.LogStreams[0].LastEventTimestamp == nil || *streams.LogStreams[0].LastEventTimestamp != now+25 {
		t.Fatalf("describe-log-streams: %+v", streams.LogStreams)
	}
	// Another account sees nothing.
	c.fails("b", "ResourceNotFoundException", "logs", "describe-log-streams", "--log-group-name", "/cli/app")

	// aws logs tail: FilterLogEvents with interleaved and a start time.
	out, errOut, ok := c.aws("a", "logs", "tail", "/cli/app", "--format", "short")
	if !ok || strings.Count(out, "\n") != 25 || !strings.Contains(out, " line 25\n") {
		t.Fatalf("aws logs tail: %v %q %q", ok, out, errOut)
	}
	// --follow polls FilterLogEvents (every 5 s) from the newest timestamp
	// it has seen; new events show up, old ones are not repeated.
	c.mu.Lock()
	c.targets = nil
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := c.cmd(ctx, "a", "logs", "tail", "/cli/app", "--follow", "--format", "short")
	var fout syncBuffer
	follow.Stdout = &fout
	follow.Env = append(follow.Env, "PYTHONUNBUFFERED=1") // print each line as it comes
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool { return strings.Count(fout.String(), "\n") == 25 })
	c.ok(nil, "logs", "put-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "web/1",
		"--log-events", fmt.Sprintf("timestamp=%d,message=followed", time.Now().UnixMilli()))
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(fout.String(), " followed\n") })
	cancel()
	_ = follow.Wait()
	if n := strings.Count(fout.String(), "\n"); n != 26 {
		t.Fatalf("--follow printed %d lines:\n%s", n, fout.String())
	}
	c.mu.Lock()
	for _, r := range c.targets {
		if strings.HasPrefix(r, TargetPrefix+".FilterLogEvents ") {
			if !strings.Contains(r, `"interleaved": true`) || !strings.Contains(r, `"startTime"`) {
				t.Errorf("--follow sent %s", r)
			}
		} else if !strings.HasPrefix(r, TargetPrefix+".PutLogEvents") {
			t.Errorf("--follow sent %s", r)
		}
	}
	c.mu.Unlock()

	// Deletes.
	c.ok(nil, "logs", "delete-retention-policy", "--log-group-name", "/cli/app")
	c.ok(nil, "logs", "delete-log-stream", "--log-group-name", "/cli/app", "--log-stream-name", "web/1")
	c.fails("a", "ResourceNotFoundException", "logs", "get-log-events", "--log-group-name", "/cli/app", "--log-stream-name", "web/1")
	c.ok(nil, "logs", "delete-log-group", "--log-group-name", "/cli/app")
	c.fails("a", "ResourceNotFoundException", "logs", "delete-log-group", "--log-group-name", "/cli/app")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
