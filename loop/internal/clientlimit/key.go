package clientlimit

import (
	"net/netip"
)

// group maps an address to the prefix its limits apply to, as the 16-byte
// form of the masked address (IPv4 as IPv4-mapped IPv6).
func group(a netip.Addr, v4bits, v6bits int) (key [16]byte, ok bool) {
	if !a.IsValid() {
		return key, false
	}
	a = a.Unmap()
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return key, false
	}
	return p.Addr().As16(), true
}
