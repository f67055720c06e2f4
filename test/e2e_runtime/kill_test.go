package e2eruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// kill -9 during a burst of concurrent PUTs loses no write that was
// acknowledged: every PUT answered 200 before the kill is there after the
// restart, with its document, and decisions use it.
func TestKill9DuringConcurrentPutsLosesNoAcknowledgedWrite(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	s := start(t, "--bundle", demoBundle, "--state-dir", state, "--admin-token-file", tokenFile(t, "t0ken"), "--log-level", "warn")

	const (
		total   = 400
		workers = 16
		killAt  = 120 // acknowledged writes before the kill
	)
	doc := func(i int) string {
		return fmt.Sprintf(`{"routes": [{"method": "POST", "path": "/burst/%d/{id}", "action": "burst%d:items:create"}]}`, i, i)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var (
		mu       sync.Mutex
		acked    = map[int]bool{}
		failed   atomic.Int32
		nAcked   atomic.Int32
		killed   = make(chan struct{})
		killOnce sync.Once
		next     atomic.Int32
		wg       sync.WaitGroup
	)
	put := func(i int) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/v1/services/burst-%d", s.URL, i), strings.NewReader(doc(i)))
		req.Header.Set("Authorization", "Bearer t0ken")
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		// Acknowledged: the whole answer arrived and says 200.
		return err == nil && resp.StatusCode == http.StatusOK && json.Valid(body)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Workers keep sending after the kill: those PUTs fail.
				i := int(next.Add(1))
				if i > total {
					return
				}
				if put(i) {
					mu.Lock()
					acked[i] = true
					mu.Unlock()
					if nAcked.Add(1) == killAt {
						killOnce.Do(func() {
							s.kill()
							close(killed)
						})
					}
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("the burst ended before %d writes were acknowledged (%d failed):\n%s", killAt, failed.Load(), s.Out.String())
	}
	mu.Lock()
	ackedCount := len(acked)
	mu.Unlock()
	if ackedCount >= total {
		t.Fatalf("every PUT was acknowledged: the kill did not land mid-burst")
	}
	t.Logf("%d PUTs acknowledged before kill -9, %d failed or cut off", ackedCount, failed.Load())

	s = start(t, "--bundle", demoBundle, "--state-dir", state, "--log-level", "warn")
	var list struct {
		Services []struct {
			Name     string
			Source   string
			Document json.RawMessage
		}
	}
	s.must(t, http.StatusOK, http.MethodGet, "/v1/services", "").decode(t, &list)
	present := map[string]string{}
	for _, svc := range list.Services {
		present[svc.Name] = string(svc.Document)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range acked {
		name := fmt.Sprintf("burst-%d", i)
		got, ok := present[name]
		if !ok {
			t.Errorf("%s was acknowledged and is lost", name)
			continue
		}
		var a, b any
		json.Unmarshal([]byte(got), &a)
		json.Unmarshal([]byte(doc(i)), &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s: document %s, want %s", name, got, doc(i))
		}
	}
	// No torn file: nothing is reported at start.
	var st struct {
		Runtime struct {
			Registrations int                              `json:"registrations"`
			StateProblems []struct{ File, Message string } `json:"state_problems"`
		}
	}
	s.must(t, http.StatusOK, http.MethodGet, "/v1/status", "").decode(t, &st)
	if len(st.Runtime.StateProblems) != 0 || st.Runtime.Registrations < ackedCount {
		t.Errorf("status after the restart: %+v", st.Runtime)
	}
	// Decisions use them.
	for i := range acked {
		s.expect(t, "a restored registration", ask{tenant: "bank", member: "admin", method: "POST", path: fmt.Sprintf("/burst/%d/7", i)}, true, 200, "iam.admin")
		break
	}
}
