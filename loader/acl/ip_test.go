package acl

import "testing"

func TestCanonicalIP(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"203.0.113.66", "203.0.113.66", true},
		{"::ffff:203.0.113.66", "203.0.113.66", true},
		{"2001:DB8::0:1", "2001:db8::1", true},
		{"fe80::1%eth0", "", false},
		{" 203.0.113.66", "", false},
		{"203.000.113.066", "", false},
		{"10.0.0.1, 203.0.113.66", "", false},
		{"", "", false},
	} {
		got, err := CanonicalIP(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CanonicalIP(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
