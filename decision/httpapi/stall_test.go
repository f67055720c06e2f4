package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdict-authz/verdict/decision/admission"
	"github.com/verdict-authz/verdict/decision/httpapi"
	"github.com/verdict-authz/verdict/loader/loadertest"
)

// The issue 14 replay over loopback sockets: more clients than there are
// evaluation slots send a decision request's header and then nothing of
// the body they announced. Legitimate decisions made meanwhile, one after
// the other and concurrently, are all answered 200: a body is read before
// a slot is taken, so a stalled body holds no slot.
func TestStalledBodiesDoNotStarveDecisions(t *testing.T) {
	const slots = 4
	engine, _ := loadertest.Demo(t)
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet, Admission: admission.New(slots)}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	body := []byte(okDecide + `}`)
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	for _, path := range []string{"/v1/decide", "/v1/decide/batch", "/v1/plan", "/v1/data/verdict/decision"} {
		for range 2 * slots {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			stalled = append(stalled, c)
			// The header and the first byte of the body, then nothing.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: verdict\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, len(body))
		}
	}
	// Let the server take every stalled request in.
	time.Sleep(300 * time.Millisecond)

	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 20 {
		if code, out := postDecide(client, srv.URL, body); code != http.StatusOK {
			t.Fatalf("decision %d while %d bodies stall: %d %s", i, len(stalled), code, out)
		}
	}
	// As many at once as there are slots: none has to wait for another.
	for _, failed := range decideConcurrently(client, srv.URL, body, slots) {
		t.Errorf("a concurrent decision while bodies stall: %s", failed)
	}
	resp, err := client.Get(srv.URL + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health/ready = %d: stalled clients are no overload", resp.StatusCode)
	}
}

// Review 2, finding 2, over loopback sockets: clients that send a large
// body all but its last byte and then stall hold the whole body budget
// (2 × slots × MaxBodyBytes). Small decisions sent meanwhile are still
// answered 200 — their bytes are within the allowance the budget does not
// count — while a large body is still refused 503, so memory stays bounded.
func TestStalledLargeBodiesDoNotStarveSmallDecisions(t *testing.T) {
	const (
		slots   = 2
		maxBody = 256 << 10
	)
	engine, _ := loadertest.Demo(t)
	srv := httptest.NewServer(httpapi.New(engine, httpapi.Options{Log: loadertest.Quiet, Admission: admission.New(slots), MaxBodyBytes: maxBody}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	stall := func(sent int) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "POST /v1/decide HTTP/1.1\r\nHost: verdict\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", maxBody)
		c.Write(bytes.Repeat([]byte(" "), sent)) // a refused one may be closed: ignore errors
		time.Sleep(50 * time.Millisecond)        // read before the next one
	}
	// 2 × slots bodies of maxBody-1 bytes: without an allowance, the
	// budget less 2 × slots bytes; then more, which the budget refuses,
	// and small stalled bodies besides.
	for range 2*slots + 2 {
		stall(maxBody - 1)
	}
	for range 16 {
		stall(100)
	}
	time.Sleep(200 * time.Millisecond)

	client := &http.Client{Timeout: 10 * time.Second}
	small := []byte(okDecide + `}`)
	for i := range 20 {
		if code, out := postDecide(client, srv.URL, small); code != http.StatusOK {
			t.Fatalf("small decision %d while large bodies stall: %d %s", i, code, out)
		}
	}
	for _, failed := range decideConcurrently(client, srv.URL, small, slots) {
		t.Errorf("a concurrent small decision while large bodies stall: %s", failed)
	}
	// The budget still bounds large bodies.
	large := append(bytes.Repeat([]byte(" "), 100<<10), small...)
	if code, out := postDecide(client, srv.URL, large); code != http.StatusServiceUnavailable || !strings.Contains(out, "memory budget") {
		t.Errorf("a large body while the budget is held: %d %s, want 503 (memory budget)", code, out)
	}
}

// postDecide posts body to baseURL's /v1/decide and returns the status and
// the answer (status 0 and the error when there is none).
func postDecide(client *http.Client, baseURL string, body []byte) (int, string) {
	resp, err := client.Post(baseURL+"/v1/decide", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// decideConcurrently posts body n times at once and returns the answers
// that are not 200.
func decideConcurrently(client *http.Client, baseURL string, body []byte, n int) []string {
	var wg sync.WaitGroup
	failed := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, out := postDecide(client, baseURL, body); code != http.StatusOK {
				failed <- fmt.Sprintf("%d %s", code, out)
			}
		}()
	}
	wg.Wait()
	close(failed)
	var out []string
	for f := range failed {
		out = append(out, f)
	}
	return out
}
