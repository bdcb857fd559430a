// Command benchhttp is the ALB benchmark's backend (bench/alb): a static
// HTTP/1.1 server that answers every request on every path with 200 and a
// short fixed body, over keep-alive connections. It is built with
// CGO_ENABLED=0 and shipped as a one-layer image (bench/alb/image.go).
//
// Environment: PORT (default 8080) and BODY (default "hello"; the rollout
// measurement runs two task definition revisions of the same image that
// differ only in BODY).
package main

import (
	"log"
	"net/http"
	"os"
	"strconv"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	body := os.Getenv("BODY")
	if body == "" {
		body = "hello"
	}
	b := []byte(body + "\n")
	length := strconv.Itoa(len(b))
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{"text/plain"}
		hd["Content-Length"] = []string{length}
		_, _ = w.Write(b)
	})
	log.Printf("benchhttp: listening on :%s, body %q", port, body)
	log.Fatal((&http.Server{Addr: ":" + port, Handler: h}).ListenAndServe())
}
