package ecr

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// renamed returns req addressed to the stored repository name: the path's
// /v2/REPO/ becomes /v2/STORED/.
func renamed(req *http.Request, repo, stored string) *http.Request {
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/"+repo)
	if !ok {
		return req
	}
	out := req.Clone(req.Context())
	out.URL.Path = "/v2/" + stored + rest
	out.URL.RawPath = ""
	out.RequestURI = out.URL.RequestURI()
	return out
}

// renamingWriter rewrites what Distribution says about the stored name
// back to the client's: the Location and Link headers, and (tagsName) the
// "name" of a tags list.
type renamingWriter struct {
	http.ResponseWriter
	from, to    string // "/v2/STORED/", "/v2/REPO/"
	wroteHeader bool
	tagsName    *renamedTags
}

// renamedTags buffers a tags list body to rename it.
type renamedTags struct {
	stored, repo string
	status       int
	buf          bytes.Buffer
}

func (w *renamingWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	h := w.Header()
	if loc := h.Get("Location"); strings.HasPrefix(loc, w.from) {
		h.Set("Location", w.to+loc[len(w.from):])
	}
	if link := h.Get("Link"); strings.HasPrefix(link, "<"+w.from) {
		h.Set("Link", "<"+w.to+link[len(w.from)+1:])
	}
	if t := w.tagsName; t != nil && status == http.StatusOK {
		t.status = status
		return // sent by finish
	}
	w.tagsName = nil
	w.ResponseWriter.WriteHeader(status)
}

func (w *renamingWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.tagsName != nil {
		return w.tagsName.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the server's io.ReaderFrom path (sendfile for blobs read
// from the filesystem) that wrapping the writer would otherwise hide.
func (w *renamingWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.tagsName != nil {
		return w.tagsName.buf.ReadFrom(r)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(w.ResponseWriter, r)
}

// finish sends a buffered tags list with the client's name in it.
func (w *renamingWriter) finish() {
	t := w.tagsName
	if t == nil || t.status == 0 {
		return
	}
	body := t.buf.Bytes()
	var list map[string]json.RawMessage
	if err := json.Unmarshal(body, &list); err == nil {
		if name, err := json.Marshal(t.repo); err == nil {
			list["name"] = name
			if b, err := json.Marshal(list); err == nil {
				body = append(b, '\n')
			}
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(t.status)
	_, _ = w.ResponseWriter.Write(body)
}
