package main

import (
	"strings"
	"testing"
)

// A decision cache bound that is not a positive number of bytes is refused
// before anything is loaded, naming the flag; a positive one gets past the
// check (to the unusable --addr, which keeps the run from serving).
func TestRunChecksTheDecisionCacheMaxBytes(t *testing.T) {
	for _, tc := range []struct{ value, wantError string }{
		{"0", "--decision-cache-max-bytes"},
		{"-1", "--decision-cache-max-bytes"},
		{"1048576", "--addr"},
	} {
		_, _, code, err := runVerdict(t, "run", "--log-level", "error", "--addr", "256.0.0.1:1", "--decision-cache-size", "100", "--decision-cache-max-bytes", tc.value)
		if code == 0 || err == nil || !strings.HasPrefix(err.Error(), tc.wantError) {
			t.Errorf("--decision-cache-max-bytes %s: exit %d, error %v; want an error naming %s", tc.value, code, err, tc.wantError)
		}
	}
}
