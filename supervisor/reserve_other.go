//go:build !linux

package supervisor

import "errors"

// ReservePort: only Linux balances connections over processes that share a
// port with SO_REUSEPORT, so only there can workers share one.
func ReservePort(addr string) (string, func(), error) {
	return "", nil, errors.New("supervisor: worker processes sharing a port need Linux (SO_REUSEPORT balancing); run one process per port behind a proxy instead")
}
