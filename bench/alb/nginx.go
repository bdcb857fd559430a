package alb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/berthdev/berth/internal/netns"
)

// nginxAddr is where nginx listens: loopback inside the VPC's namespace.
var nginxAddr = netip.MustParseAddrPort("127.0.0.1:18080")

// nginxConf is the reverse proxy's configuration: as little as proxies one
// upstream over keep-alive, no logging. keepalive_requests is raised on both
// sides so that neither nginx nor its clients reconnect every 1000 requests
// (berth's ALB never closes an idle-able connection on a count).
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# bench/alb: nginx as a reverse proxy to the ALB's target.
worker_processes {{.Workers}};
daemon off;
master_process on;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;
    upstream backend {
        server {{.Upstream}};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`))

// nginxConfig renders the configuration.
func nginxConfig(dir string, workers int, listen, upstream netip.AddrPort) (string, error) {
	var b strings.Builder
	err := nginxConf.Execute(&b, struct {
		Dir              string
		Workers          int
		Listen, Upstream string
	}{dir, workers, listen.String(), upstream.String()})
	return b.String(), err
}

// nginx is a running nginx in a VPC's namespace.
type nginx struct {
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

// startNginx writes the configuration to a fresh directory and runs nginx
// in the VPC's namespace (ip netns exec), in its own process group, then
// waits until it accepts connections. stop must be called, also on error.
func startNginx(ctx context.Context, vpcID string, workers int, upstream netip.AddrPort) (*nginx, error) {
	dir, err := os.MkdirTemp("", "berth-bench-nginx-")
	if err != nil {
		return nil, fmt.Errorf("nginx dir: %w", err)
	}
	n := &nginx{dir: dir}
	if err := os.Chmod(dir, 0o755); err != nil {
		return n, fmt.Errorf("nginx dir: %w", err)
	}
	conf, err := nginxConfig(dir, workers, nginxAddr, upstream)
	if err != nil {
		return n, fmt.Errorf("nginx config: %w", err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return n, fmt.Errorf("nginx config: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return n, fmt.Errorf("nginx dir: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return n, fmt.Errorf("nginx log: %w", err)
	}
	defer logf.Close()
	n.cmd = exec.Command("ip", "netns", "exec", netns.VPCNamespace(vpcID), "nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		n.cmd = nil
		return n, fmt.Errorf("start nginx: %w", err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := netns.DialInVPC(ctx, vpcID, "tcp", nginxAddr.String())
		if err == nil {
			c.Close()
			return n, nil
		}
		select {
		case <-n.done:
			return n, fmt.Errorf("nginx exited: %s", n.log())
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("nginx not listening on %s after 10 s: %v; %s", nginxAddr, err, n.log())
		}
	}
}

// log is nginx's stderr and error log.
func (n *nginx) log() string {
	a, _ := os.ReadFile(filepath.Join(n.dir, "stderr.log"))
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return strings.TrimSpace(string(a) + string(b))
}

// stop ends nginx's process group (SIGQUIT, then SIGKILL after 5 s) and
// removes its directory. It is safe on a partly started nginx and twice.
func (n *nginx) stop() error {
	if n == nil {
		return nil
	}
	var err error
	if n.cmd != nil && n.cmd.Process != nil {
		pgid := n.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGQUIT)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			select {
			case <-n.done:
			case <-time.After(5 * time.Second):
				err = errors.New("nginx did not exit after SIGKILL")
			}
		}
		// Workers are in the group too; make sure none outlives the master.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		n.cmd = nil
	}
	if n.dir != "" {
		if rerr := os.RemoveAll(n.dir); rerr != nil && err == nil {
			err = rerr
		}
		n.dir = ""
	}
	return err
}

// nginxVersion is `nginx -v`'s version, e.g. "1.22.1", or "".
func nginxVersion() string {
	out, err := exec.Command("nginx", "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "nginx/")
	return v
}
