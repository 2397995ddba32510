package bridge

import (
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/wsloop/wsloop/session"
)

// cgiEnv returns the CGI/1.1 environment (RFC 3875, as websocketd sets it)
// of an upgrade request: the request's own variables, one HTTP_* variable
// per request header, then the variables named in passEnv that wsloop's own
// environment has (PATH always), then extra ("NAME=value").
//
// scriptName is the path the program is mounted at ("/app" or "/app/"):
// when the request path is below it, the rest is PATH_INFO ("/app/x/y":
// SCRIPT_NAME "/app", PATH_INFO "/x/y"); otherwise SCRIPT_NAME is the
// request path and PATH_INFO is empty. SERVER_NAME and SERVER_PORT
// come from the Host header (80 or 443 when it names no port), as
// net/http/cgi does; HTTPS=on is set when tls is. Header names map to
// HTTP_ + upper case with '-' (and anything else not alphanumeric) as '_';
// repeated headers are joined with ", " ("; " for Cookie); a Proxy header
// is skipped (httpoxy). A variable whose value would hold a NUL byte is left
// out: no environment can carry it.
func cgiEnv(r *session.Request, scriptName string, tls bool, passEnv, extra []string) []string {
	path := r.Path()
	scriptName = strings.TrimSuffix(scriptName, "/")
	pathInfo := ""
	if scriptName != "" && strings.HasPrefix(path, scriptName) &&
		(len(path) == len(scriptName) || path[len(scriptName)] == '/') {
		pathInfo = path[len(scriptName):]
	} else {
		scriptName = path
	}
	host := r.Host()
	serverName, serverPort := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		serverName, serverPort = h, p
	}
	if serverPort == "" {
		serverPort = "80"
		if tls {
			serverPort = "443"
		}
	}
	env := make([]string, 0, 24+len(passEnv)+len(extra))
	add := func(name, value string) {
		if strings.IndexByte(value, 0) < 0 {
			env = append(env, name+"="+value)
		}
	}
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_SOFTWARE", "wsloop")
	add("SERVER_PROTOCOL", "HTTP/1.1")
	add("SERVER_NAME", serverName)
	add("SERVER_PORT", serverPort)
	add("REQUEST_METHOD", r.Method())
	add("REQUEST_URI", r.Target())
	add("SCRIPT_NAME", scriptName)
	add("PATH_INFO", pathInfo)
	add("QUERY_STRING", r.RawQuery())
	if ap := r.RemoteAddrPort(); ap.IsValid() {
		ip := ap.Addr().Unmap().String()
		add("REMOTE_ADDR", ip)
		add("REMOTE_HOST", ip)
		add("REMOTE_PORT", strconv.Itoa(int(ap.Port())))
	}
	if tls || r.TLS() {
		add("HTTPS", "on")
	}
	h, names := requestHeaders(r)
	for _, k := range names {
		name := headerVar(k)
		if name == "HTTP_PROXY" {
			continue
		}
		sep := ", "
		if name == "HTTP_COOKIE" {
			sep = "; "
		}
		add(name, strings.Join(h[k], sep))
	}
	env = appendPassEnv(env, passEnv)
	return append(env, extra...)
}

// requestHeaders returns r's headers (canonical names) and their names,
// sorted.
func requestHeaders(r *session.Request) (http.Header, []string) {
	hr, err := r.HTTPRequest()
	if err != nil {
		return nil, nil
	}
	names := make([]string, 0, len(hr.Header))
	for k := range hr.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	return hr.Header, names
}

// appendPassEnv appends PATH and the variables named in names from wsloop's
// own environment (those it has).
func appendPassEnv(env, names []string) []string {
	seen := map[string]bool{}
	for _, n := range append([]string{"PATH"}, names...) {
		if seen[n] {
			continue
		}
		seen[n] = true
		if v, ok := os.LookupEnv(n); ok {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// headerVar is the CGI variable of a request header: "X-Forwarded-For" is
// HTTP_X_FORWARDED_FOR.
func headerVar(name string) string {
	b := make([]byte, 0, 5+len(name))
	b = append(b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}
