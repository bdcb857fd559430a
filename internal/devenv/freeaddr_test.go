package devenv

import (
	"net"
	"strconv"
	"testing"
)

// FreeAddr gives a loopback port below the kernel's ephemeral range (so no
// outgoing connection can take it while an env restarts), free to listen on.
func TestFreeAddr(t *testing.T) {
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, p, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("FreeAddr() = %q, want 127.0.0.1:port", addr)
		}
		port, _ := strconv.Atoi(p)
		if low := ephemeralLow(); port < 10000 || port >= low {
			t.Errorf("port %d: want one in [10000, %d), below the ephemeral range", port, low)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		l.Close()
	}
}
