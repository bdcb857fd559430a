package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// containerPids lists the host pids of one container of a task: the
// container's cgroup is a child of the task's, named by its containerd id.
func containerPids(taskID, name string) []int {
	return cgroupProcs("/berth/" + taskID + "/" + taskID + "-" + name)
}

// section returns the lines of log between "==name" and the next "==" line.
func section(log, name string) string {
	var out []string
	in := false
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "==") {
			in = line == "=="+name
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestTaskIsolation: one task writes a file in /tmp and sleeps; another task
// sees neither the file nor any of the first task's processes: in its PID
// namespace, PID 1 is its own command and /proc lists only its own processes.
func TestTaskIsolation(t *testing.T) {
	e := startDev(t)
	secret, content := "secret-"+randHex(t, 8), "content-"+randHex(t, 8)
	sleepArg := strconv.Itoa(3000 + int(time.Now().UnixNano()%900)) // marks the writer's sleep
	writer := e.runTask("iso", e.registerTask("writer", "256", "512", e.container("writer", "sh", "-c",
		fmt.Sprintf("echo %s > /tmp/%s; echo written; sleep %s", content, secret, sleepArg))))
	e.waitContainerLog("iso", writer, "writer", "written", 60*time.Second)

	// The host sees the file in the writer's root and its sleep: what the
	// reader must not see is really there.
	writerID := idFromArn(writer)
	var sawFile, sawSleep bool
	for _, pid := range taskPids(writerID) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/%s", pid, secret)); err == nil && strings.Contains(string(b), content) {
			sawFile = true
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && string(b) == "sleep\x00"+sleepArg+"\x00" {
			sawSleep = true
		}
	}
	if !sawFile || !sawSleep {
		t.Fatalf("host view of the writer task (pids %v): file seen %v, sleep %s seen %v", taskPids(writerID), sawFile, sleepArg, sawSleep)
	}

	script := fmt.Sprintf(`echo ==secret; cat /tmp/%s 2>/dev/null || echo NO-SECRET; ls -a /tmp
echo ==pid1; tr '\0' ' ' < /proc/1/cmdline; echo
echo ==ps; ps
echo ==proc; ls /proc | grep '^[0-9]'
echo ==end`, secret)
	reader := e.runTask("iso", e.registerTask("reader", "256", "512", e.container("reader", "sh", "-c", script)))
	task := e.waitStatus("iso", reader, "STOPPED", 60*time.Second)
	if c := findContainer(task, "reader"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Fatalf("reader: %s", taskSummary(task))
	}
	log := e.containerLogs("iso", reader, "reader")
	if !strings.Contains(log, "==end") {
		t.Fatalf("reader log incomplete:\n%s", log)
	}
	if s := section(log, "secret"); strings.Contains(s, content) || !strings.Contains(s, "NO-SECRET") || strings.Contains(s, "secret-") {
		t.Errorf("reader sees the writer's file:\n%s", s)
	}
	if s := section(log, "pid1"); !strings.HasPrefix(s, "sh -c echo ==secret") {
		t.Errorf("PID 1 of the reader is %q, want its own sh -c command", s)
	}
	ps := section(log, "ps")
	if strings.Contains(ps, "sleep") || strings.Contains(log, content) {
		t.Errorf("reader's ps shows the writer's processes:\n%s", ps)
	}
	// Every process ps lists is the reader's own script (or ps forked from it).
	for _, line := range strings.Split(strings.TrimSpace(ps), "\n")[1:] {
		if !strings.Contains(line, "echo ==secret") {
			t.Errorf("reader's ps lists a process not its own: %q", line)
		}
	}
	pids := strings.Fields(section(log, "proc"))
	// sh (PID 1), ls and grep: a handful, where the host has hundreds.
	if len(pids) == 0 || pids[0] != "1" || len(pids) > 5 {
		t.Errorf("reader's /proc lists pids %v, want only its own few starting at 1", pids)
	}
	if st := e.describe("iso", writer); aws.ToString(st.LastStatus) != "RUNNING" {
		t.Errorf("writer task: %s, want RUNNING", taskSummary(st))
	}
}

// Default capabilities of a containerd (and Docker) container: CHOWN,
// DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP,
// SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE.
const (
	defaultCaps  = 0x00000000a80425fb
	capSysAdmin  = 21
	capSysPtrace = 19
)

// statusFields parses "Key:\tvalue" lines of /proc/self/status in a log.
func statusFields(log string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestContainerSecurity: containers run unprivileged: the default
// capabilities (no CAP_SYS_ADMIN, so no mounting), no-new-privileges and
// the default seccomp filter. SYS_PTRACE, the one capability Fargate lets a
// task add, is added on request and nothing else.
func TestContainerSecurity(t *testing.T) {
	e := startDev(t)
	script := `grep -E '^(Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status
if mount -t tmpfs none /mnt 2>/dev/null; then echo MOUNTED; else echo MOUNT-DENIED; fi`
	plain := e.container("plain", "sh", "-c", script)
	plain.Essential = aws.Bool(false)
	traced := e.container("traced", "sh", "-c", script)
	traced.Essential = aws.Bool(false)
	traced.LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE"}}}
	// A sleeping essential container keeps the task up until both have printed.
	arn := e.runTask("sec", e.registerTask("sec", "256", "512", e.container("main", "sleep", "300"), plain, traced))
	task := e.pollTask("sec", arn, 60*time.Second, "with both probes exited", func(t types.Task) bool {
		return (findContainer(t, "plain").ExitCode != nil && findContainer(t, "traced").ExitCode != nil) ||
			aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	for _, tc := range []struct {
		name string
		caps uint64
	}{{"plain", defaultCaps}, {"traced", defaultCaps | 1<<capSysPtrace}} {
		if c := findContainer(task, tc.name); c.ExitCode == nil || *c.ExitCode != 0 {
			t.Fatalf("%s: %s", tc.name, taskSummary(task))
		}
		log := e.waitContainerLog("sec", arn, tc.name, "MOUNT", 10*time.Second)
		st := statusFields(log)
		for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
			v, err := strconv.ParseUint(st[k], 16, 64)
			if err != nil {
				t.Fatalf("%s: %s %q: %v\n%s", tc.name, k, st[k], err, log)
			}
			if v&(1<<capSysAdmin) != 0 {
				t.Errorf("%s: %s %016x has CAP_SYS_ADMIN", tc.name, k, v)
			}
			if v != tc.caps {
				t.Errorf("%s: %s %016x, want %016x", tc.name, k, v, tc.caps)
			}
		}
		if st["CapAmb"] != "0000000000000000" {
			t.Errorf("%s: CapAmb %s, want none", tc.name, st["CapAmb"])
		}
		if st["NoNewPrivs"] != "1" {
			t.Errorf("%s: NoNewPrivs %q, want 1", tc.name, st["NoNewPrivs"])
		}
		if st["Seccomp"] != "2" {
			t.Errorf("%s: Seccomp %q, want 2 (filter)", tc.name, st["Seccomp"])
		}
		if !strings.Contains(log, "MOUNT-DENIED") {
			t.Errorf("%s: could mount a tmpfs:\n%s", tc.name, log)
		}
	}
}

// TestTaskSharedNetwork: the containers of one task share its network
// namespace (one serves HTTP on 127.0.0.1:8080, the other fetches it) but
// each has its own PID namespace.
func TestTaskSharedNetwork(t *testing.T) {
	e := startDev(t)
	web := e.container("web", "httpd", "-f", "-p", "8080", "-h", "/www")
	client := e.container("client", "sh", "-c", `i=0
until wget -qO- http://127.0.0.1:8080/; do i=$((i+1)); [ $i -ge 100 ] && echo NO-ANSWER && exit 1; usleep 100000; done
echo ==ps; ps; echo ==end; exec sleep 300`)
	client.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("web"), Condition: types.ContainerConditionStart}}
	arn := e.runTask("net", e.registerTask("net", "256", "512", web, client))
	log := e.waitContainerLog("net", arn, "client", "==end", 60*time.Second)
	if !strings.Contains(log, "hello from berth") {
		t.Fatalf("client did not reach web on 127.0.0.1:8080:\n%s", log)
	}
	if ps := section(log, "ps"); strings.Contains(ps, "httpd") {
		t.Errorf("client's ps shows web's httpd (shared PID namespace):\n%s", ps)
	}

	// On the host: one network namespace, two PID and mount namespaces.
	id := idFromArn(arn)
	webPids, clientPids := containerPids(id, "web"), containerPids(id, "client")
	if len(webPids) == 0 || len(clientPids) == 0 {
		t.Fatalf("container pids: web %v, client %v", webPids, clientPids)
	}
	ns := func(pid int, kind string) string {
		s, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		return s
	}
	w, c := webPids[0], clientPids[0]
	if ns(w, "net") != ns(c, "net") {
		t.Errorf("web and client in different network namespaces: %s, %s", ns(w, "net"), ns(c, "net"))
	}
	if ns(w, "net") == ns(os.Getpid(), "net") {
		t.Errorf("task shares the host's network namespace")
	}
	for _, kind := range []string{"pid", "mnt", "ipc", "uts"} {
		if ns(w, kind) == ns(c, kind) {
			t.Errorf("web and client share the %s namespace %s", kind, ns(w, kind))
		}
	}
}
