package soak

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// closed says whether c is closed.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// batchBody is a batch of n decisions on the embedded demo bundle.
func batchBody(n int) string {
	items := strings.Repeat(`{"action":"finmars:Portfolio:list"},`, n)
	return `{"tenant":"bank","member":"user_a","items":[` + strings.TrimSuffix(items, ",") + `]}`
}

// postBatch sends one batch on its own connection; written is closed once
// the whole request is on the wire.
func postBatch(url, body string, written chan<- struct{}) (int, []byte, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/decide/batch", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var once sync.Once
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(written) }) },
	}))
	resp, err := c.Do(req)
	once.Do(func() { close(written) })
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// TestGracefulShutdown sends SIGTERM while batches of 1,000 decisions are
// being evaluated: each of them completes with 200 and all 1,000 results,
// the listener refuses new connections before the process is gone, and the
// process exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	const inFlight = 6
	// The cap equals the batches sent, so a probe answered 503 proves that
	// every batch is being evaluated (a request still in the kernel's accept
	// queue when the listener closes is reset, and was never in flight).
	s := start(t, "--max-concurrent-decisions", strconv.Itoa(inFlight))
	body := batchBody(1000)
	began := time.Now()
	if code, _, err := postBatch(s.URL, body, make(chan struct{})); err != nil || code != http.StatusOK {
		t.Fatalf("warm-up batch: %d %v", code, err)
	}
	one := time.Since(began)

	type result struct {
		code int
		raw  []byte
		err  error
		at   time.Time
	}
	probe := func() int {
		resp, err := http.Post(s.URL+"/v1/decide", "application/json", strings.NewReader(`{"tenant":"soak","action":"finmars:Portfolio:list"}`))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Send the batches and wait until a probe is refused 503: every slot
	// is then taken by one of them. On a busy machine the first batch can
	// be answered before the last is read; then the window was missed,
	// and the batches are sent again (at most five times).
	var results []result
	var wg sync.WaitGroup
	for attempt := 1; ; attempt++ {
		results = make([]result, inFlight)
		for i := range inFlight {
			written := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, raw, err := postBatch(s.URL, body, written)
				results[i] = result{code, raw, err, time.Now()}
			}()
			select {
			case <-written:
			case <-time.After(10 * time.Second):
				t.Fatal("a batch was not sent within 10 s")
			}
		}
		answered := make(chan struct{})
		go func() { wg.Wait(); close(answered) }()
		allInFlight := false
		for deadline := time.Now().Add(10 * time.Second); !allInFlight && !closed(answered); {
			if time.Now().After(deadline) {
				t.Fatal("the batches were not all being evaluated within 10 s")
			}
			if allInFlight = probe() == http.StatusServiceUnavailable; !allInFlight {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if allInFlight {
			break
		}
		if attempt == 5 {
			t.Fatalf("in %d attempts, the first batch was answered before the last was being evaluated (a batch alone takes %v)", attempt, one)
		}
		t.Logf("attempt %d: the first batch was answered before the last was being evaluated; sending them again", attempt)
	}
	sigAt := time.Now()
	if err := s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// New connections are refused while the process is still finishing.
	refusedAt := time.Time{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			conn.Close()
			continue
		}
		// Refused, or reset when the SYN met the listener as it closed.
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial after SIGTERM: %v", err)
		}
		refusedAt = time.Now()
		break
	}
	select {
	case <-s.Done:
		t.Logf("the process had exited when the first dial was refused (a batch takes %v)", one)
	default:
	}
	if refusedAt.IsZero() {
		t.Fatal("new connections were still accepted 10 s after SIGTERM")
	}

	wg.Wait()
	lastDone := sigAt
	for i, r := range results {
		var res struct {
			Results []struct {
				DecisionID string `json:"decision_id"`
				Allow      bool   `json:"allow"`
			} `json:"results"`
		}
		if r.err != nil || r.code != http.StatusOK {
			t.Fatalf("in-flight batch %d: HTTP %d, %v\n%s", i, r.code, r.err, s.Out.String())
		}
		if err := json.Unmarshal(r.raw, &res); err != nil || len(res.Results) != 1000 || res.Results[999].DecisionID == "" {
			t.Fatalf("in-flight batch %d: %d results, %v", i, len(res.Results), err)
		}
		if r.at.After(lastDone) {
			lastDone = r.at
		}
	}
	select {
	case <-s.Done:
	case <-time.After(15 * time.Second):
		t.Fatal("verdict did not exit within 15 s of SIGTERM")
	}
	if s.WaitErr != nil {
		t.Fatalf("exit: %v\n%s", s.WaitErr, s.Out.String())
	}
	t.Logf("one batch alone: %v; SIGTERM → refused: %v, → last in-flight answer: %v",
		one, refusedAt.Sub(sigAt), lastDone.Sub(sigAt))
	if lastDone.Sub(sigAt) < 0 || !refusedAt.Before(lastDone) {
		t.Logf("note: the in-flight batches finished before the listener was seen closed")
	}
}
