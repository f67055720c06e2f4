package e2efleet

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/test/pgtest"
)

// BenchmarkFleetPropagation writes consents at sidecar A of three on one
// database and measures the write's latency (until A answers) and the
// propagation latency (from A's answer until B, then C, answers the new
// value of GET …/enabled, polled continuously). It reports p50 and p99 of
// each. Run it with a fixed count, e.g. -benchtime=300x (see BENCHMARKS.md).
func BenchmarkFleetPropagation(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	f := dsnFile(b, dsn)
	nodes := []*node{launchB(b, "A", f), launchB(b, "B", f), launchB(b, "C", f)}
	a := nodes[0]
	bodyOf := func(n *node, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, n.URL+path, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		return resp.StatusCode, strings.TrimSpace(string(answer))
	}
	if st, body := bodyOf(a, http.MethodPost, permissions, `{"group": "`+khepri+`", "operations": ["CHANGE"]}`); st >= 300 {
		b.Fatalf("request: %d %s", st, body)
	}
	var writes, props []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		enabled := fmt.Sprint(i%2 == 0)
		start := time.Now()
		if st, body := bodyOf(a, http.MethodPut, consentPath, enabled); st != http.StatusOK {
			b.Fatalf("consent: %d %s", st, body)
		}
		acked := time.Now()
		writes = append(writes, acked.Sub(start))
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, n := range nodes[1:] {
			wg.Add(1)
			go func(n *node) {
				defer wg.Done()
				deadline := acked.Add(10 * time.Second)
				for {
					if _, body := bodyOf(n, http.MethodGet, consentPath, ""); body == enabled {
						mu.Lock()
						props = append(props, time.Since(acked))
						mu.Unlock()
						return
					}
					if time.Now().After(deadline) {
						b.Errorf("%s did not see consent %s within 10 s", n.name, enabled)
						return
					}
				}
			}(n)
		}
		wg.Wait()
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(writes, 0.50), "write-p50-ms")
	b.ReportMetric(pct(writes, 0.99), "write-p99-ms")
	b.ReportMetric(pct(props, 0.50), "propagation-p50-ms")
	b.ReportMetric(pct(props, 0.99), "propagation-p99-ms")
}

func launchB(b *testing.B, name, dsnPath string) *node {
	b.Helper()
	args := []string{"--bundle", demoBundle, "--state-db-file", dsnPath, "--log-level", "warn"}
	return launch(b, name, "/health/ready", args)
}
