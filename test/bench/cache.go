package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// cacheMetric is verdict's decision cache counter on GET /metrics, by
// result (hit or miss).
const cacheMetric = "verdict_decision_cache_lookups_total"

// cacheCount is a reading of cacheMetric.
type cacheCount struct{ hits, misses uint64 }

// scrapeCache reads the decision cache counters of the verdict at addr.
func scrapeCache(ctx context.Context, addr string) (cacheCount, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return cacheCount{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cacheCount{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cacheCount{}, fmt.Errorf("GET /metrics: HTTP status %d", resp.StatusCode)
	}
	return parseCacheCount(resp.Body)
}

// parseCacheCount reads cacheMetric from a Prometheus text exposition.
func parseCacheCount(r io.Reader) (cacheCount, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return cacheCount{}, fmt.Errorf("parse /metrics: %w", err)
	}
	fam := fams[cacheMetric]
	if fam == nil {
		return cacheCount{}, fmt.Errorf("/metrics has no %s", cacheMetric)
	}
	var c cacheCount
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() != "result" {
				continue
			}
			switch v := uint64(m.GetCounter().GetValue()); l.GetValue() {
			case "hit":
				c.hits = v
			case "miss":
				c.misses = v
			}
		}
	}
	return c, nil
}

// hitRatio is the share of the window's decision cache lookups that hit;
// ok is false when none were counted (not verdict-cached, or not scraped).
func (r *runResult) hitRatio() (ratio float64, ok bool) {
	n := r.CacheHits + r.CacheMisses
	if n == 0 {
		return 0, false
	}
	return float64(r.CacheHits) / float64(n), true
}

// warmPass sends every request of the stream once, split between conns
// keep-alive connections as the closed loop splits it (no clock, nothing
// measured), so that a decision cache has decided every question of the
// stream before it is measured.
func warmPass(ctx context.Context, addr string, reqs payloads, conns int) error {
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(addr)
			if err != nil {
				errs[w] = err
				return
			}
			defer c.Close()
			for i := w * len(reqs) / conns; i < (w+1)*len(reqs)/conns; i++ {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				status, _, err := c.do(reqs[i])
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("HTTP status %d", status)
				}
				if err != nil {
					errs[w] = fmt.Errorf("warm pass: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
