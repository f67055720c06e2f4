package acl

import (
	"errors"
	"net/netip"
)

// CanonicalIP returns s, which must be exactly one IP address, in the one
// spelling the rules compare: netip's form, an IPv4-mapped IPv6 address
// written as IPv4 (::ffff:203.0.113.66 is 203.0.113.66), IPv6 compressed in
// lower case. Spaces, leading zeros, lists and zones are refused: a rule
// comparing addresses exactly would not apply to them. Every door that
// hands Rego a client address (context.ip, the proxies' IP header, Envoy's
// source address) reads it through this function.
func CanonicalIP(s string) (string, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return "", err
	}
	if addr.Zone() != "" {
		return "", errors.New("an IP address with a zone names no address a rule can compare")
	}
	return addr.Unmap().String(), nil
}
