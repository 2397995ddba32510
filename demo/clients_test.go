package demo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Real clients of other languages against the demo, over ws and wss on
// every engine: Node's `ws` and Python's `websockets` run echo, chat and
// push (demo/testdata/clients), verifying the wss server with the test's
// CA certificate.
//
// Node's ws is the one loop/testdata/node pins (CI installs it: cd
// loop/testdata/node && npm ci), or the one in WSLOOP_NODE_MODULES;
// Python's is in a python3 that can import websockets (Debian: apt-get
// install python3-websockets). Without them the tests skip, except in CI
// (CI=true), where that is a failure.

func TestNodeWSClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	modules := os.Getenv("WSLOOP_NODE_MODULES")
	if modules == "" {
		modules, _ = filepath.Abs("../loop/testdata/node/node_modules")
	}
	if _, err := os.Stat(filepath.Join(modules, "ws", "package.json")); err != nil {
		missing(t, "Node's ws is not installed in "+modules+" (cd loop/testdata/node && npm ci)")
	}
	runClients(t, []string{node, "testdata/clients/client.js"}, "NODE_PATH="+modules)
}

func TestPythonWebsocketsClient(t *testing.T) {
	py := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import websockets").Run() == nil {
			py = path
			break
		}
	}
	if py == "" {
		missing(t, "no python3 with websockets (apt-get install python3-websockets)")
	}
	runClients(t, []string{py, "testdata/clients/client.py"})
}

// missing skips a test whose client is not installed, or fails it in CI.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (required in CI)")
	}
	t.Skip(why + "; skipped outside CI")
}

// runClients runs the client command (a program and its script; the base
// URL and, for wss, the CA file are added) against the demo on every
// engine, plain and over TLS, and checks its verdict.
func runClients(t *testing.T, command []string, env ...string) {
	ca, _ := tlsCert(t).WriteFiles(t)
	for _, engine := range engines {
		for _, variant := range []string{engine, engine + "+tls"} {
			t.Run(variant, func(t *testing.T) {
				_, _, addr := serve(t, variant, Options{PushInterval: 100 * time.Millisecond}, nil)
				base, caFile := "ws://"+addr, ""
				if strings.HasSuffix(variant, "+tls") {
					base, caFile = "wss://"+addr, ca
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				args := append(append([]string{}, command[1:]...), base)
				if caFile != "" {
					args = append(args, caFile)
				}
				c := exec.CommandContext(ctx, command[0], args...)
				c.Env = append(os.Environ(), env...)
				out, err := c.CombinedOutput()
				got := strings.TrimSpace(string(out))
				t.Logf("%s: %s", variant, got)
				if err != nil || !strings.HasPrefix(got, "PASS ") {
					t.Fatalf("client failed (%v): %s", err, got)
				}
				for _, want := range []string{"echo=ok", "chat=ok", "push=ok"} {
					if !strings.Contains(got, want) {
						t.Errorf("verdict %q lacks %q", got, want)
					}
				}
			})
		}
	}
}
