package main

import (
	"strings"
	"testing"
)

func TestParseCacheCount(t *testing.T) {
	text := `# HELP verdict_decision_cache_lookups_total Decision cache lookups.
# TYPE verdict_decision_cache_lookups_total counter
verdict_decision_cache_lookups_total{result="hit"} 1.234567e+06
verdict_decision_cache_lookups_total{result="miss"} 42
# HELP verdict_decisions_total Decisions.
# TYPE verdict_decisions_total counter
verdict_decisions_total{code="iam.no_allow",outcome="deny"} 7
`
	c, err := parseCacheCount(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if c != (cacheCount{hits: 1234567, misses: 42}) {
		t.Errorf("got %+v", c)
	}
	if _, err := parseCacheCount(strings.NewReader("# TYPE other counter\nother 1\n")); err == nil {
		t.Error("no error without the cache counter")
	}
	r := &runResult{CacheHits: 3, CacheMisses: 1}
	if h, ok := r.hitRatio(); !ok || h != 0.75 {
		t.Errorf("hitRatio = %v, %v", h, ok)
	}
	if _, ok := (&runResult{}).hitRatio(); ok {
		t.Error("hitRatio of a run without lookups is ok")
	}
}
