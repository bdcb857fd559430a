package lbproxy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestALBH2CPriorKnowledge(t *testing.T) {
	e := newTestEngine(t, Options{})
	b := newBackend(t, "b", nil)
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, httpTG("tg", b.target())))
	base := listenerURL(t, e, "listener/app/lb/1")

	// Prior knowledge: the client speaks HTTP/2 from the first byte.
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for range 3 {
		resp, body := get(t, c, base+"/h2")
		if resp.ProtoMajor != 2 || body != "b" {
			t.Fatalf("got %s %q", resp.Proto, body)
		}
	}
	if got := b.lastRequest().Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For over h2c = %q", got)
	}
}

func TestALBH2CUpgrade(t *testing.T) {
	e := newTestEngine(t, Options{})
	b := newBackend(t, "upgraded", nil)
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, httpTG("tg", b.target())))
	addr := e.ListenerAddrs("listener/app/lb/1")[0].String()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var settings bytes.Buffer
	fr := http2.NewFramer(&settings, nil)
	fr.WriteSettings()
	payload := settings.Bytes()[9:] // strip the frame header
	io.WriteString(c, "GET /up HTTP/1.1\r\nHost: "+addr+"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"+
		"HTTP2-Settings: "+base64.RawURLEncoding.EncodeToString(payload)+"\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 101") {
		t.Fatalf("upgrade answer %q", line)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	io.WriteString(c, http2.ClientPreface)
	framer := http2.NewFramer(c, br)
	framer.WriteSettings()
	var status string
	var body []byte
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for {
		f, err := framer.ReadFrame()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				framer.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if f.StreamID == 1 {
				dec.Write(f.HeaderBlockFragment())
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				body = append(body, f.Data()...)
				if f.StreamEnded() {
					if status != "200" || string(body) != "upgraded" {
						t.Fatalf("stream 1: status %q body %q", status, body)
					}
					return
				}
			}
		}
	}
}
