package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

const ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."

var testCreds = &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}

// rawReply is an awsJson reply as it came over the wire.
type rawReply struct {
	Status  int
	Type    string // __type of an error
	Message string
	Body    string
}

// rawCall POSTs body to the ECS endpoint with X-Amz-Target target, signed
// with creds for service "ecs" in us-east-1 (unsigned when creds is nil).
func rawCall(t *testing.T, e *devEnv, target string, body []byte, creds *aws.Credentials) rawReply {
	t.Helper()
	r, err := doRaw(e, target, body, creds)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	return r
}

// doRaw is rawCall without the test: safe to use from any goroutine.
func doRaw(e *devEnv, target string, body []byte, creds *aws.Credentials) (rawReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/", bytes.NewReader(body))
	if err != nil {
		return rawReply{}, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if creds != nil {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, *creds, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", time.Now()); err != nil {
			return rawReply{}, err
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rawReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return rawReply{}, err
	}
	r := rawReply{Status: resp.StatusCode, Body: string(b)}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &eb); err != nil {
			return r, fmt.Errorf("error reply %d is not JSON: %q", resp.StatusCode, b)
		}
		r.Type, r.Message = eb.Type, eb.Message
		if h := resp.Header.Get("X-Amzn-Errortype"); h != "" && h != eb.Type {
			return r, fmt.Errorf("x-amzn-ErrorType %q but __type %q", h, eb.Type)
		}
	}
	return r, nil
}

// ecsCall is a signed call of an ECS operation with a JSON body.
func ecsCall(t *testing.T, e *devEnv, op, body string) rawReply {
	t.Helper()
	return rawCall(t, e, ecsTargetPrefix+op, []byte(body), testCreds)
}

// wantError checks an error reply: status, __type and a message.
func wantError(t *testing.T, what string, r rawReply, status int, code string) {
	t.Helper()
	if r.Status != status || r.Type != code {
		t.Errorf("%s: HTTP %d %q, want %d %s (body %s)", what, r.Status, r.Type, status, code, r.Body)
		return
	}
	if strings.TrimSpace(r.Message) == "" {
		t.Errorf("%s: %s without a message (body %s)", what, code, r.Body)
	}
}

// badInputFixture is what must survive every bad request: a cluster, a task
// definition and a running task.
type badInputFixture struct {
	cluster, taskDef, task string
}

func newBadInputFixture(t *testing.T, e *devEnv) badInputFixture {
	t.Helper()
	f := badInputFixture{cluster: "keep"}
	f.taskDef = e.registerTask("keep", "256", "512", e.container("main", "sleep", "300"))
	f.task = e.runTask(f.cluster, f.taskDef)
	if got := e.waitStatus(f.cluster, f.task, "RUNNING", time.Minute); aws.ToString(got.LastStatus) != "RUNNING" {
		t.Fatalf("fixture task is %s", aws.ToString(got.LastStatus))
	}
	return f
}

// intact checks the server still answers a good call and the fixture is as
// it was.
func (f badInputFixture) intact(t *testing.T, e *devEnv, after string) {
	t.Helper()
	r := ecsCall(t, e, "ListClusters", "{}")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, ":cluster/keep") {
		t.Fatalf("after %s: ListClusters %d %s", after, r.Status, r.Body)
	}
	ctx := e.ctx()
	if _, err := e.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(f.taskDef)}); err != nil {
		t.Fatalf("after %s: DescribeTaskDefinition: %v", after, err)
	}
	if task := e.describe(f.cluster, f.task); aws.ToString(task.LastStatus) != "RUNNING" || aws.ToString(task.DesiredStatus) != "RUNNING" {
		t.Fatalf("after %s: fixture task %s/%s", after, aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus))
	}
}

const goodNet = `"launchType":"FARGATE","networkConfiguration":{"awsvpcConfiguration":{"subnets":["subnet-1"]}}`

// TestBadInputRequests sends malformed and invalid requests, signed as a
// real client would: each gets the ECS error AWS gives, and the server keeps
// serving with everything it held intact.
func TestBadInputRequests(t *testing.T) {
	e := startDev(t)
	f := newBadInputFixture(t, e)

	fargateTD := func(cpu, mem, container string) string {
		return `{"family":"bad","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"` + cpu +
			`","memory":"` + mem + `","containerDefinitions":[` + container + `]}`
	}
	goodContainer := `{"name":"main","image":"` + e.Image + `","essential":true,"command":["sleep","1"]}`
	cases := []struct {
		name, op, body string
		status         int
		code           string
		msgHas         []string // substrings the message must contain
	}{
		{"truncated JSON", "ListClusters", `{"maxResults":`, 400, "SerializationException", nil},
		{"not JSON", "RunTask", `cluster=keep&taskDefinition=keep`, 400, "SerializationException", nil},
		{"JSON array", "ListTasks", `[1,2,3]`, 400, "SerializationException", nil},
		{"trailing garbage", "ListClusters", `{} {}`, 400, "SerializationException", nil},
		{"wrong field type", "RunTask", `{"cluster":"keep","taskDefinition":"keep","count":"three"}`, 400, "SerializationException", []string{"count"}},
		{"unknown operation", "FrobnicateWidgets", `{}`, 400, "UnknownOperationException", nil},
		{"RunTask without taskDefinition", "RunTask", `{"cluster":"keep",` + goodNet + `}`, 400, "ClientException", nil},
		{"RegisterTaskDefinition without containerDefinitions", "RegisterTaskDefinition",
			`{"family":"bad","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512"}`,
			400, "ClientException", nil},
		{"RegisterTaskDefinition without family", "RegisterTaskDefinition",
			`{"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512","containerDefinitions":[` + goodContainer + `]}`,
			400, "ClientException", nil},
		{"invalid Fargate cpu/memory pair", "RegisterTaskDefinition", fargateTD("256", "4096", goodContainer),
			400, "ClientException", []string{"512", "1024", "2048"}},
		{"invalid Fargate cpu", "RegisterTaskDefinition", fargateTD("300", "512", goodContainer),
			400, "ClientException", []string{"256", "16384"}},
		{"privileged container on FARGATE", "RegisterTaskDefinition",
			fargateTD("256", "512", `{"name":"main","image":"`+e.Image+`","essential":true,"privileged":true}`),
			400, "ClientException", []string{"privileged"}},
		{"unknown cluster in RunTask", "RunTask", `{"cluster":"nope","taskDefinition":"keep",` + goodNet + `}`,
			400, "ClusterNotFoundException", nil},
		{"unknown cluster in ListTasks", "ListTasks", `{"cluster":"nope"}`, 400, "ClusterNotFoundException", nil},
		{"unknown cluster in DescribeTasks", "DescribeTasks", `{"cluster":"nope","tasks":["x"]}`, 400, "ClusterNotFoundException", nil},
		{"unknown task in StopTask", "StopTask", `{"cluster":"keep","task":"0123456789abcdef0123456789abcdef"}`,
			400, "InvalidParameterException", nil},
		{"unknown task definition in RunTask", "RunTask", `{"cluster":"keep","taskDefinition":"nope:7",` + goodNet + `}`,
			400, "ClientException", nil},
		{"count 11", "RunTask", `{"cluster":"keep","taskDefinition":"keep","count":11,` + goodNet + `}`,
			400, "InvalidParameterException", []string{"10"}},
		{"count 0", "RunTask", `{"cluster":"keep","taskDefinition":"keep","count":0,` + goodNet + `}`,
			400, "InvalidParameterException", nil},
		{"awsvpc without networkConfiguration", "RunTask", `{"cluster":"keep","taskDefinition":"keep","launchType":"FARGATE"}`,
			400, "InvalidParameterException", []string{"awsvpc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ecsCall(t, e, tc.op, tc.body)
			wantError(t, tc.name, r, tc.status, tc.code)
			for _, s := range tc.msgHas {
				if !strings.Contains(r.Message, s) {
					t.Errorf("%s: message %q does not mention %q", tc.name, r.Message, s)
				}
			}
			f.intact(t, e, tc.name)
		})
	}

	// Nothing the bad requests named was created.
	r := ecsCall(t, e, "ListTaskDefinitionFamilies", "{}")
	if r.Status != http.StatusOK || strings.Contains(r.Body, `"bad"`) {
		t.Errorf("ListTaskDefinitionFamilies after bad registrations: %d %s", r.Status, r.Body)
	}
	r = ecsCall(t, e, "ListTasks", `{"cluster":"keep"}`)
	var lt struct {
		TaskArns []string `json:"taskArns"`
	}
	if err := json.Unmarshal([]byte(r.Body), &lt); err != nil || len(lt.TaskArns) != 1 || lt.TaskArns[0] != f.task {
		t.Errorf("ListTasks after bad RunTasks: %d %s, want only %s", r.Status, r.Body, f.task)
	}
}

// TestBadInputGarbage throws random bodies at every kind of operation, many
// at once: each gets a 4xx in the awsJson error shape (never a 5xx or a
// dropped connection), and the server keeps serving.
func TestBadInputGarbage(t *testing.T) {
	e := startDev(t)
	f := newBadInputFixture(t, e)
	ops := []string{"RunTask", "StopTask", "DescribeTasks", "ListTasks", "RegisterTaskDefinition",
		"DescribeClusters", "TagResource", "DeleteCluster"}
	rng := rand.New(rand.NewSource(1))
	var bodies [][]byte
	for i := 0; i < 64; i++ {
		b := make([]byte, 1+rng.Intn(200))
		rng.Read(b)
		if i%2 == 0 { // half of them start like JSON
			b = append([]byte(`{"cluster":`), b...)
		}
		bodies = append(bodies, b)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for i, b := range bodies {
		wg.Add(1)
		go func(op string, b []byte) {
			defer wg.Done()
			r, err := doRaw(e, ecsTargetPrefix+op, b, testCreds)
			if err != nil || r.Status < 400 || r.Status > 499 || r.Type == "" || r.Message == "" {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %v %s", op, err, r.Body))
				mu.Unlock()
			}
		}(ops[i%len(ops)], b)
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d garbage requests were not answered with a 4xx error:\n%s", len(bad), len(bodies), strings.Join(bad, "\n"))
	}
	f.intact(t, e, "garbage requests")
	// Go's transport may have dialed connections it never sent a request
	// on; net/http's graceful Shutdown waits 5 s before it counts those as
	// idle, so drop them rather than slow down berth's exit.
	http.DefaultClient.CloseIdleConnections()
}

// TestBadInputAuth: a wrong secret, an unknown key, no signature at all and a
// stale signature are refused with AWS's error codes, before anything is
// touched, and good calls keep working.
func TestBadInputAuth(t *testing.T) {
	e := startDev(t)
	f := newBadInputFixture(t, e)
	stopFixture := `{"cluster":"keep","task":"` + f.task + `"}`

	cases := []struct {
		name  string
		creds *aws.Credentials
		op    string
		code  string
	}{
		{"wrong secret", &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "not-the-secret"}, "StopTask", "InvalidSignatureException"},
		{"unknown access key", &aws.Credentials{AccessKeyID: "AKIAUNKNOWNKEY000000", SecretAccessKey: "test"}, "StopTask", "UnrecognizedClientException"},
		{"no Authorization", nil, "StopTask", "MissingAuthenticationTokenException"},
		{"unknown operation without Authorization", nil, "FrobnicateWidgets", "MissingAuthenticationTokenException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rawCall(t, e, ecsTargetPrefix+tc.op, []byte(stopFixture), tc.creds)
			wantError(t, tc.name, r, 400, tc.code)
			f.intact(t, e, tc.name)
		})
	}

	t.Run("tampered body", func(t *testing.T) {
		// Signed for one body, sent with another.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		signed := []byte(`{"cluster":"keep"}`)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/", bytes.NewReader([]byte(stopFixture)))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", ecsTargetPrefix+"StopTask")
		sum := sha256.Sum256(signed)
		if err := v4.NewSigner().SignHTTP(ctx, *testCreds, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "Exception") {
			t.Errorf("tampered body: %d %s", resp.StatusCode, b)
		}
		if strings.Contains(string(b), `"task"`) {
			t.Errorf("tampered body was served: %s", b)
		}
		f.intact(t, e, "tampered body")
	})

	t.Run("stale signature", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		body := []byte(stopFixture)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", ecsTargetPrefix+"StopTask")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, *testCreds, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1",
			time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 403 || !strings.Contains(string(b), "Exception") {
			t.Errorf("signature an hour old: %d %s", resp.StatusCode, b)
		}
		f.intact(t, e, "stale signature")
	})

	// The good key still works for the call the bad ones tried.
	r := ecsCall(t, e, "ListTasks", `{"cluster":"keep"}`)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, f.task) {
		t.Errorf("ListTasks with good keys: %d %s", r.Status, r.Body)
	}
}
