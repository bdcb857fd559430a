package runtime

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestTmpLog(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	bad := 0
	for i := 0; i < 40; i++ {
		spec := e.spec("touch", "/x")
		spec.ReadonlyRootfs = true
		if _, err := e.rt.Run(ctx, spec); err != nil {
			t.Fatal(err)
		}
		st, _ := e.rt.Wait(ctx, spec.ID)
		b1, _ := os.ReadFile(spec.LogPath)
		if err := e.rt.Delete(ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
		b2, _ := os.ReadFile(spec.LogPath)
		time.Sleep(500 * time.Millisecond)
		b3, _ := os.ReadFile(spec.LogPath)
		if len(b2) == 0 {
			bad++
			t.Logf("%d: code %d afterWait=%q afterDelete=%q later=%q", i, st.Code, b1, b2, b3)
		}
	}
	t.Logf("bad %d/40", bad)
	b, _ := os.ReadFile(e.dataDir + "/containerd.log")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=warn") || strings.Contains(l, "level=error") || strings.Contains(l, "copy") {
			t.Log(l)
		}
	}
}
