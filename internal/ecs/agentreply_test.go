package ecs

import (
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestAgentReplyLength: an agent reply carries its length, so that the
// agent reads it into one buffer.
func TestAgentReplyLength(t *testing.T) {
	w := httptest.NewRecorder()
	agentReply(w, map[string][]string{"tasks": {"a", "b"}})
	if got, want := w.Header().Get("Content-Length"), strconv.Itoa(w.Body.Len()); got != want || w.Body.String() != "{\"tasks\":[\"a\",\"b\"]}\n" {
		t.Errorf("Content-Length %q for %q, want %s", got, w.Body, want)
	}
}
