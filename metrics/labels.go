package metrics

import "github.com/wsloop/wsloop/session"

// The label values of the series resolved at New. Their sets are fixed so
// that a peer cannot grow the number of series: a close code or status not
// listed is counted as "other".

// statusLabels are the HTTP statuses a handshake failure is counted under.
var statusLabels = [...]string{"none", "400", "403", "404", "405", "408", "413", "426", "429", "431", "500", "501", "503", "505", "other"}

// statusIndex maps an HTTP status to its index in statusLabels.
func statusIndex(status int) int {
	switch status {
	case 0:
		return 0
	case 400:
		return 1
	case 403:
		return 2
	case 404:
		return 3
	case 405:
		return 4
	case 408:
		return 5
	case 413:
		return 6
	case 426:
		return 7
	case 429:
		return 8
	case 431:
		return 9
	case 500:
		return 10
	case 501:
		return 11
	case 503:
		return 12
	case 505:
		return 13
	}
	return len(statusLabels) - 1
}

// closeLabels are the close codes of RFC 6455 and the IANA registry
// (1000-1015, 1004 reserved and never seen), then the application ranges.
var closeLabels = [...]string{
	"1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007",
	"1008", "1009", "1010", "1011", "1012", "1013", "1014", "1015",
	"3000-3999", "4000-4999", "other",
}

// closeIndex maps a close code to its index in closeLabels.
func closeIndex(code uint16) int {
	switch {
	case code >= 1000 && code <= 1015:
		return int(code - 1000)
	case code >= 3000 && code <= 3999:
		return 16
	case code >= 4000 && code <= 4999:
		return 17
	}
	return 18
}

// overflowLabels name the session.Overflow policies.
var overflowLabels = [...]string{"error", "drop", "close_1008", "close_1013", "other"}

// overflowIndex maps a policy to its index in overflowLabels.
func overflowIndex(p session.Overflow) int {
	switch p {
	case session.OverflowError:
		return 0
	case session.OverflowDrop:
		return 1
	case session.OverflowClose1008:
		return 2
	case session.OverflowClose1013:
		return 3
	}
	return 4
}
