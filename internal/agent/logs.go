package agent

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// LogsPath is the agent's HTTP route for reading a container's log file.
const LogsPath = "/logs"

var safeName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// LogHandler serves container log files to the control plane:
// GET /logs?task=ID&container=NAME&offset=N&limit=M answers with up to limit
// bytes from offset and the next offset in X-Berth-Next-Offset. Callers
// present the agents' join token as a bearer token.
func LogHandler(dataDir string, tokenValid func(string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !tokenValid(tok) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		task, name := q.Get("task"), q.Get("container")
		if !safeName.MatchString(task) || !safeName.MatchString(name) {
			http.Error(w, "task and container are required", http.StatusBadRequest)
			return
		}
		offset, _ := strconv.ParseInt(q.Get("offset"), 10, 64)
		limit, err := strconv.ParseInt(q.Get("limit"), 10, 64)
		if err != nil || limit <= 0 || limit > 1<<20 {
			limit = 1 << 20
		}
		f, err := os.Open(LogPath(dataDir, task, name))
		if errors.Is(err, os.ErrNotExist) {
			w.Header().Set("X-Berth-Next-Offset", strconv.FormatInt(offset, 10))
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		if offset < 0 {
			offset = 0
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b, err := io.ReadAll(io.LimitReader(f, limit))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Berth-Next-Offset", strconv.FormatInt(offset+int64(len(b)), 10))
		_, _ = w.Write(b)
	})
}

// TokenMatcher returns a constant-time check against one token.
func TokenMatcher(token string) func(string) bool {
	return func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(token)) == 1 }
}
