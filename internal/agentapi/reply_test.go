package agentapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestReadReply: a reply is read whole whether the server gave its length
// or sent it in chunks, and a reply shorter than its length is an error.
func TestReadReply(t *testing.T) {
	body := `{"tasks":[` + strings.Repeat(`{"taskArn":"arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef"},`, 200) + `{}]}`
	for _, tc := range []struct {
		name    string
		serve   func(w http.ResponseWriter)
		wantErr bool
	}{
		{"with its length", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write([]byte(body))
		}, false},
		{"in chunks", func(w http.ResponseWriter) {
			half := len(body) / 2
			_, _ = w.Write([]byte(body[:half]))
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte(body[half:]))
		}, false},
		{"shorter than its length", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)+10))
			_, _ = w.Write([]byte(body))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.serve(w) }))
			defer srv.Close()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := readReply(resp)
			if tc.wantErr {
				if err == nil {
					t.Errorf("read %d bytes, want an error", len(b))
				}
				return
			}
			if err != nil || string(b) != body {
				t.Errorf("read %d bytes (%v), want the %d sent", len(b), err, len(body))
			}
		})
	}
}
