package session

import (
	"net/url"
	"strings"
)

// originAllowed reports whether a browser page at origin may connect to a
// server reached as host, given the extra allowed origins. A request without
// Origin is not from a browser page and is allowed: the check exists to stop
// other sites' pages from using a visitor's browser (and its cookies).
func originAllowed(origin, host string, allowed []string) bool {
	if origin == "" {
		return true
	}
	for _, a := range allowed {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	// Same origin: the page was served by this server. The scheme is not
	// compared: a TLS-terminating proxy forwards https pages' requests over
	// plain HTTP.
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host) ||
		strings.EqualFold(u.Host, withDefaultPort(host, u.Scheme)) ||
		strings.EqualFold(withDefaultPort(u.Host, u.Scheme), host)
}

// withDefaultPort adds the scheme's default port to a host without one, so
// that "example.com" and "example.com:80" compare equal.
func withDefaultPort(host, scheme string) string {
	if strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']') {
		return host
	}
	switch scheme {
	case "http", "ws":
		return host + ":80"
	case "https", "wss":
		return host + ":443"
	}
	return host
}
