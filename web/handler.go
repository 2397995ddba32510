package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
)

// HealthPath is answered with 200 "ok" by every Handler, before any file.
const HealthPath = "/healthz"

// Handler serves a tree of static files. It is safe for concurrent use.
type Handler struct {
	fsys fs.FS
	root *os.Root // set by Open; nil for New
}

// New returns a Handler serving fsys. fsys must not resolve names outside
// itself: an embed.FS, or the FS of an os.Root (use Open for a directory).
// os.DirFS is not enough, because it follows symbolic links out of its root.
func New(fsys fs.FS) *Handler {
	return &Handler{fsys: fsys}
}

// Open returns a Handler serving the directory dir. Names are resolved through
// os.Root, so neither ".." nor a symbolic link can reach outside dir. Close
// releases the directory.
func Open(dir string) (*Handler, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("web: static directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("web: static directory: %s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("web: static directory: %w", err)
	}
	return &Handler{fsys: root.FS(), root: root}, nil
}

// Close releases the directory opened by Open; for New it does nothing.
func (h *Handler) Close() error {
	if h.root == nil {
		return nil
	}
	return h.root.Close()
}

// ServeHTTP answers GET and HEAD with the file the path names; 404 when there
// is none (or the path is not a clean name inside the root); 405 with an
// Allow header for other methods. A directory path without a trailing slash
// is redirected to one; a directory is served through its index.html.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == HealthPath {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", "3")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			io.WriteString(w, "ok\n")
		}
		return
	}
	name, dirSlash, ok := fsName(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, st, err := h.open(name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if st.IsDir() {
		f.Close()
		if !dirSlash {
			redirectSlash(w, r)
			return
		}
		name = path.Join(name, "index.html")
		if f, st, err = h.open(name); err != nil {
			h.fail(w, r, err)
			return
		}
	} else if dirSlash {
		// "/file.txt/" names no directory.
		f.Close()
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if !st.Mode().IsRegular() { // a directory named index.html, a device, a FIFO
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		b, err := io.ReadAll(f)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		rs = bytes.NewReader(b)
	}
	// ServeContent sets Content-Type from the extension (sniffing only when
	// the extension is unknown), handles HEAD, ranges and conditional requests.
	// An embed.FS has no modification times: ServeContent then sends no
	// Last-Modified.
	http.ServeContent(w, r, path.Base(name), st.ModTime(), rs)
}

func (h *Handler) open(name string) (fs.File, fs.FileInfo, error) {
	f, err := h.fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// fail answers an open error: the client learns "not found" for anything that
// is not there or not reachable (including names os.Root refuses because they
// escape it), and 500 only for real I/O trouble.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) ||
		errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENAMETOOLONG) || isEscape(err) {
		http.NotFound(w, r)
		return
	}
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

// isEscape reports an os.Root refusal of a path (or link) that leaves the root.
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
}

// fsName turns a URL path into an fs.FS name. It refuses (ok false) anything
// that is not already clean: "." or ".." elements, empty elements ("//"),
// backslashes and NUL bytes. Refusing instead of cleaning means a request
// can never name a file by a second spelling.
func fsName(urlPath string) (name string, dirSlash, ok bool) {
	if urlPath == "" || urlPath[0] != '/' {
		return "", false, false
	}
	if strings.ContainsAny(urlPath, "\\\x00") {
		return "", false, false
	}
	name = urlPath[1:]
	if name == "" {
		return ".", true, true
	}
	if strings.HasSuffix(name, "/") {
		dirSlash = true
		name = name[:len(name)-1]
	}
	if !fs.ValidPath(name) {
		return "", false, false
	}
	return name, dirSlash, true
}

// redirectSlash sends a directory path without its trailing slash to the
// path with it, keeping the query, as a relative reference so that the
// handler works behind a path prefix.
func redirectSlash(w http.ResponseWriter, r *http.Request) {
	target := path.Base(r.URL.Path) + "/"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusMovedPermanently)
}
