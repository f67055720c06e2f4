package main

import "testing"

func TestCPUListCount(t *testing.T) {
	for _, tc := range []struct {
		list string
		want int
		ok   bool
	}{
		{"0", 1, true}, {"1", 1, true}, {"0-1", 2, true}, {"0,2-3", 3, true},
		{"", 0, false}, {"a", 0, false}, {"2-1", 0, false}, {"-1", 0, false}, {"0-", 0, false},
	} {
		got, err := cpuListCount(tc.list)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("cpuListCount(%q) = %d, %v; want %d, ok %v", tc.list, got, err, tc.want, tc.ok)
		}
	}
}
