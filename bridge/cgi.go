package bridge

import (
	"bytes"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// CGIOptions configure a CGI handler.
type CGIOptions struct {
	// Prefix is the URL path the scripts are served under; default
	// "/cgi-bin/". /cgi-bin/name/more runs DIR/name with PATH_INFO /more.
	Prefix string
	// PassEnv names variables of wsloop's environment the scripts get (PATH
	// always); Env adds "NAME=value".
	PassEnv []string
	Env     []string
	// TLS tells the scripts (HTTPS=on) that the server serves TLS.
	TLS bool
	// Limit caps the programs running at once (shared with Exec); nil: no cap.
	Limit *Limit
	// Logger receives the scripts' stderr lines (Warn) and net/http/cgi's
	// errors; default slog.Default().
	Logger *slog.Logger
}

// CGI serves the executable files of one directory as CGI/1.1 scripts with
// the standard library's net/http/cgi: mounted in loop.Options.HTTP, static
// files, CGI scripts and WebSockets share one port.
//
// Only plain file names directly in the directory are scripts: no
// subdirectories, no names starting with '.', no symbolic links, and only
// files with an execute bit; anything else is 404. A request body
// (Content-Length, at most the server's MaxRequestBody; chunked bodies are
// refused with 411 before they get here) is the script's standard input.
// The response is streamed as the script writes it, at the pace the client
// reads; a script that never exits holds its request, and its place under
// the Limit, until it does (net/http/cgi has no timeout).
type CGI struct {
	dir  string
	opts CGIOptions
	log  *slog.Logger
}

// NewCGI serves the scripts in dir.
func NewCGI(dir string, opts CGIOptions) (*CGI, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("bridge: CGI directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("bridge: CGI directory %s is not a directory", dir)
	}
	if opts.Prefix == "" {
		opts.Prefix = "/cgi-bin/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.TLS {
		opts.Env = append([]string{"HTTPS=on"}, opts.Env...)
	}
	h := &CGI{dir: abs, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h, nil
}

// Prefix returns the URL path the scripts are served under.
func (h *CGI) Prefix() string { return h.opts.Prefix }

func (h *CGI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.opts.Prefix)
	name, _, _ := strings.Cut(rest, "/")
	if !ok || !scriptName(name) {
		http.NotFound(w, r)
		return
	}
	path := filepath.Join(h.dir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		http.NotFound(w, r)
		return
	}
	if !h.opts.Limit.acquire() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 too many programs running: try again later", http.StatusServiceUnavailable)
		return
	}
	defer h.opts.Limit.release()
	slog := h.log.With("script", name)
	stderr := &lineLogger{log: slog}
	defer stderr.flush()
	(&cgi.Handler{
		Path:       path,
		Root:       h.opts.Prefix + name,
		Dir:        h.dir,
		Env:        h.opts.Env,
		InheritEnv: h.opts.PassEnv,
		Logger:     log.New(stderr, "", 0),
		Stderr:     stderr,
	}).ServeHTTP(w, r)
}

// scriptName reports whether name may be a script: letters, digits, '.',
// '_', '-' and '+', not starting with '.'.
func scriptName(name string) bool {
	if name == "" || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}

// lineLogger logs what is written to it line by line (at most 4 KiB a line).
type lineLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 && len(l.buf) < 4<<10 {
			return len(p), nil
		}
		if i < 0 {
			i = len(l.buf)
		}
		if line := bytes.TrimRight(l.buf[:i], "\r"); len(line) > 0 {
			l.log.Warn("cgi stderr", "line", string(line))
		}
		l.buf = l.buf[min(i+1, len(l.buf)):]
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.log.Warn("cgi stderr", "line", string(l.buf))
		l.buf = nil
	}
}
