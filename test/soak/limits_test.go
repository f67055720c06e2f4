package soak

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHeaderLimit: headers up to MaxHeaderBytes (64 KiB) are served, a
// request with 80 KiB of headers gets 431.
func TestHeaderLimit(t *testing.T) {
	t.Parallel()
	s := start(t)
	for _, c := range []struct {
		size int
		want int
	}{{60 << 10, http.StatusOK}, {80 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/health", nil)
		req.Header.Set("X-Pad", strings.Repeat("x", c.size))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%d bytes of header: %v", c.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%d bytes of header: HTTP %d, want %d", c.size, resp.StatusCode, c.want)
		}
	}
}

// readTimeoutCase opens a raw connection, sends head, then trickles body
// one byte a second, and returns how long until the server answered or
// closed, and what it answered.
func readTimeoutCase(t *testing.T, addr, head, body string) (time.Duration, string) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		got <- line
	}()
	for i := 0; ; i++ {
		select {
		case line := <-got:
			return time.Since(began), line
		case <-time.After(time.Second):
			if i < len(body) {
				conn.Write([]byte{body[i]}) // errors show as a closed read
			}
		}
	}
}

// TestServerReadTimeouts: a client that never finishes its headers is cut
// off by ReadHeaderTimeout (5 s); one that trickles its body by ReadTimeout
// (10 s) — neither holds a connection forever.
func TestServerReadTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s")
	}
	t.Parallel()
	s := start(t)
	t.Run("header", func(t *testing.T) {
		t.Parallel()
		took, line := readTimeoutCase(t, s.Addr, "GET /health HTTP/1.1\r\nHost: verdict\r\n", "")
		if took < 4*time.Second || took > 9*time.Second || strings.Contains(line, " 200 ") {
			t.Errorf("slow headers: cut after %v with %q, want about 5 s and no 200", took, line)
		}
	})
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		body := `{"tenant":"bank","member":"user_a","action":"finmars:Portfolio:list"}`
		head := "POST /v1/decide HTTP/1.1\r\nHost: verdict\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n"
		took, line := readTimeoutCase(t, s.Addr, head, body)
		if took < 9*time.Second || took > 14*time.Second || strings.Contains(line, " 200 ") {
			t.Errorf("slow body: cut after %v with %q, want about 10 s and no 200", took, line)
		}
	})
}
