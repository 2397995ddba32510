//go:build linux || darwin || freebsd

package demo

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsloop/wsloop/internal/logbuf"
	"github.com/wsloop/wsloop/internal/ssetest"
)

// TestNginxConfigFromREADME runs the nginx configuration that README.md
// recommends, unchanged except for addresses, in front of the demo, and
// checks that the page, echo and push work through it.
func TestNginxConfigFromREADME(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				nginx = p
			}
		}
	}
	if nginx == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("nginx is required in CI (apt-get install -y nginx)")
		}
		t.Skip("nginx not installed (apt-get install -y nginx); skipped outside CI")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- nginx-config: begin", "<!-- nginx-config: end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md lacks the marked nginx config")
	}
	block := s[i:j]
	block = block[strings.Index(block, "```nginx\n")+len("```nginx\n"):]
	block = block[:strings.LastIndex(block, "```")]
	for _, want := range []string{"proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;", "map $http_upgrade $connection_upgrade", "proxy_read_timeout"} {
		if !strings.Contains(block, want) {
			t.Fatalf("README's nginx config lacks %q", want)
		}
	}

	{
		_, _, upstream := serve(t, "epoll", Options{PushInterval: 50 * time.Millisecond}, nil)
		front := freePort(t)
		conf := strings.Replace(block, "server 127.0.0.1:8080;", "server "+upstream+";", 1)
		conf = strings.Replace(conf, "listen 80;", "listen "+front+";", 1)
		if strings.Contains(conf, "127.0.0.1:8080") || !strings.Contains(conf, front) {
			t.Fatalf("could not retarget README's config:\n%s", conf)
		}
		dir := t.TempDir()
		full := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, conf)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(full), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
		var out logbuf.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGQUIT)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}()
		errlog := func() string {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return out.String() + string(b)
		}
		// Wait until nginx listens.
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", front, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("nginx exited: %v\n%s", err, errlog())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %s\n%s", front, errlog())
			}
			time.Sleep(20 * time.Millisecond)
		}

		cl := &http.Client{Timeout: 15 * time.Second}
		resp, err := cl.Get("http://" + front + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "wsloop demo") {
			t.Fatalf("GET / through nginx: %d %.60q", resp.StatusCode, body)
		}

		// A browser on the proxied origin: the same-origin check must pass
		// through nginx's Host header.
		origin := http.Header{"Origin": {"http://" + front}}
		c, resp, err := websocket.Dial(ctx(t), "ws://"+front+"/ws/echo", &websocket.DialOptions{HTTPHeader: origin})
		if err != nil {
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			t.Fatalf("echo through nginx: %v (status %d)\n%s", err, code, errlog())
		}
		for _, m := range []string{"through the proxy", strings.Repeat("z", 100_000)} {
			c.SetReadLimit(1 << 20)
			if err := c.Write(ctx(t), websocket.MessageText, []byte(m)); err != nil {
				t.Fatal(err)
			}
			if _, got := read(t, c); got != m {
				t.Fatalf("echo through nginx: %d bytes back, want %d", len(got), len(m))
			}
		}
		c.Close(websocket.StatusNormalClosure, "")

		p := dial(t, front, "/ws/push", origin)
		_, r1 := read(t, p)
		_, r2 := read(t, p)
		if !strings.Contains(r1, `"seq":`) || !strings.Contains(r2, `"seq":`) || r1 == r2 {
			t.Fatalf("push through nginx: %q then %q", r1, r2)
		}
		p.CloseNow()

		// The feed as an event stream through the same config: the events
		// come through (nginx does not hold them back: X-Accel-Buffering),
		// and so does Last-Event-ID.
		es := ssetest.Dial(t, front, "/sse/push", "Origin: http://"+front)
		e1, e2 := es.Event(), es.Event()
		if !strings.HasPrefix(e1.ID, "push-") || !strings.Contains(e2.Data, `"seq":`) || e1.ID == e2.ID {
			t.Fatalf("event stream through nginx: %+v then %+v\n%s", e1, e2, errlog())
		}
		es.Close()
		back := ssetest.Dial(t, front, "/sse/push", "Last-Event-ID: "+e2.ID)
		n2, _ := strconv.ParseUint(strings.TrimPrefix(e2.ID, "push-"), 10, 64)
		if e3 := back.Event(); e3.ID != "push-"+strconv.FormatUint(n2+1, 10) {
			t.Fatalf("resumed through nginx after %s: %+v", e2.ID, e3)
		}
		back.Close()
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
