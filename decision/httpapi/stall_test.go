package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
	decide := func() (int, string) {
		resp, err := client.Post(srv.URL+"/v1/decide", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for i := range 20 {
		if code, out := decide(); code != http.StatusOK {
			t.Fatalf("decision %d while %d bodies stall: %d %s", i, len(stalled), code, out)
		}
	}
	var wg sync.WaitGroup
	// As many at once as there are slots: none has to wait for another.
	codes := make(chan string, slots)
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, out := decide(); code != http.StatusOK {
				codes <- fmt.Sprintf("%d %s", code, out)
			}
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		t.Errorf("a concurrent decision while bodies stall: %s", c)
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
