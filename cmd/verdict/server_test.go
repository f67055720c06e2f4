package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The limits of `verdict run`'s server, proved over real loopback TCP with a
// server that newHTTPServerWith builds like production but with one short
// limit and the rest long, so that what closes a connection is the limit
// under test and nothing else.
const (
	shortLimit = 250 * time.Millisecond
	longLimit  = time.Minute
	// closedWithin is how long a client waits for the server to act on a
	// shortLimit: generous, so a loaded machine does not make the tests flaky.
	closedWithin = 3 * time.Second
	// notBefore is the least time a limit-driven close may take: a close
	// sooner than this is not the limit's doing (a limit of 0, a server that
	// hangs up at once). Well below shortLimit, because the server starts its
	// clock a little before the client starts its own.
	notBefore = shortLimit / 5
)

// limitsWith returns limits that are all long, changed by set.
func limitsWith(set func(*serverLimits)) serverLimits {
	l := serverLimits{ReadHeader: longLimit, Read: longLimit, Write: longLimit, Idle: longLimit, MaxHeaderBytes: 64 << 10}
	set(&l)
	return l
}

// serve serves srv on a fresh 127.0.0.1 port until the test ends and returns
// the address.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dial opens a TCP connection to addr, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, closedWithin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func write(t *testing.T, conn net.Conn, s string) {
	t.Helper()
	conn.SetWriteDeadline(time.Now().Add(closedWithin))
	if _, err := io.WriteString(conn, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// ok answers 200 "ok", reading the request body first.
var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			http.Error(w, "body timed out", http.StatusRequestTimeout)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	io.WriteString(w, "ok")
})

// TestServerClosesConnection: a client that stalls is disconnected once the
// limit for what it is stalling in has passed, not before and not never.
func TestServerClosesConnection(t *testing.T) {
	cases := []struct {
		name   string
		limits serverLimits
		// stall sends what the client sends before it stops; the clock starts
		// when it returns.
		stall func(t *testing.T, conn net.Conn, r *bufio.Reader)
		// wantBefore is what the server sends between the stall and the close.
		wantBefore string
	}{{
		name:   "slow-loris: incomplete header, cut off by ReadHeader",
		limits: limitsWith(func(l *serverLimits) { l.ReadHeader = shortLimit }),
		stall: func(t *testing.T, conn net.Conn, _ *bufio.Reader) {
			write(t, conn, "GET /v1/health HTTP/1.1\r\nHost: verdict\r\nX-Slow: ")
		},
	}, {
		name:   "stalled body, cut off by Read",
		limits: limitsWith(func(l *serverLimits) { l.Read = shortLimit }),
		stall: func(t *testing.T, conn net.Conn, _ *bufio.Reader) {
			write(t, conn, "POST /v1/decide HTTP/1.1\r\nHost: verdict\r\nContent-Length: 100\r\n\r\n{\"ten")
		},
		// The handler sees its body read fail with a deadline, answers, and
		// the server hangs up because the body was never finished.
		wantBefore: "HTTP/1.1 408 Request Timeout\r\n",
	}, {
		name:   "idle keep-alive connection, closed by Idle",
		limits: limitsWith(func(l *serverLimits) { l.Idle = shortLimit }),
		stall: func(t *testing.T, conn net.Conn, r *bufio.Reader) {
			write(t, conn, "GET /v1/health HTTP/1.1\r\nHost: verdict\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(closedWithin))
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("first response: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != "ok" || resp.Close {
				t.Fatalf("first response: %d %q (close %v), %v; want a kept-alive 200 ok", resp.StatusCode, body, resp.Close, err)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := serve(t, newHTTPServerWith(ok, c.limits))
			conn := dial(t, addr)
			r := bufio.NewReader(conn)
			c.stall(t, conn, r)
			start := time.Now()
			conn.SetReadDeadline(start.Add(closedWithin))
			got, err := io.ReadAll(r) // until the server closes the connection
			elapsed := time.Since(start)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after %v: %v; want the server to close the connection within %v (limit %v)", elapsed.Round(time.Millisecond), err, closedWithin, shortLimit)
			}
			if elapsed < notBefore {
				t.Errorf("closed after %v; want no sooner than %v (limit %v)", elapsed, notBefore, shortLimit)
			}
			if !strings.HasPrefix(string(got), c.wantBefore) || (c.wantBefore == "" && len(got) > 0) {
				t.Errorf("before the close the server sent %q; want %q", got, c.wantBefore)
			}
			t.Logf("closed after %v", elapsed.Round(time.Millisecond))
		})
	}
}

// TestServerHeaderSize: the production server answers a request whose header
// is larger than MaxHeaderBytes (plus the 4 KiB net/http allows on top) with
// 431, and serves one just below it.
func TestServerHeaderSize(t *testing.T) {
	addr := serve(t, newHTTPServer(ok))
	cases := []struct {
		name       string
		headerSize int // bytes of one header's value
		wantStatus int
	}{
		{"small header", 100, http.StatusOK},
		// Literal sizes, not ones computed from productionLimits, so that
		// this checks the documented 64 KiB on its own.
		{"60 KiB header, below the limit", 60 << 10, http.StatusOK},
		{"72 KiB header, above the limit and its slack", 72 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{"header far above the limit", 1 << 20, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, addr)
			req := fmt.Sprintf("GET /v1/health HTTP/1.1\r\nHost: verdict\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", c.headerSize))
			// Write concurrently: the server answers 431 without reading the
			// rest of a header that is too large.
			go func() {
				conn.SetWriteDeadline(time.Now().Add(closedWithin))
				io.WriteString(conn, req)
			}()
			conn.SetReadDeadline(time.Now().Add(closedWithin))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("response: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.wantStatus {
				t.Errorf("status %d; want %d", resp.StatusCode, c.wantStatus)
			}
		})
	}
}

// TestServerWriteTimeout: a response that is not written by the Write limit
// (counted from the end of the request's header) does not reach the client
// complete. net/http does not stop the handler; its late writes fail and the
// connection is closed, so the client sees no response, or a cut-off body.
func TestServerWriteTimeout(t *testing.T) {
	const late = 2 * shortLimit
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		wantResp bool   // a status line and header arrive; if not, nothing does
		wantBody string // what arrives of the body
		wantErr  error  // reading the body
	}{{
		name: "prompt response arrives complete",
		handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "complete")
		},
		wantResp: true, wantBody: "complete",
	}, {
		name: "late response is lost",
		handler: func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(late)
			io.WriteString(w, "too late")
		},
	}, {
		name: "response flushed in part before the limit is cut short",
		handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "first half, ")
			w.(http.Flusher).Flush()
			time.Sleep(late)
			io.WriteString(w, "second half")
		},
		wantResp: true, wantBody: "first half, ", wantErr: io.ErrUnexpectedEOF,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := serve(t, newHTTPServerWith(c.handler, limitsWith(func(l *serverLimits) { l.Write = shortLimit })))
			conn := dial(t, addr)
			write(t, conn, "GET /v1/health HTTP/1.1\r\nHost: verdict\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(closedWithin))
			if !c.wantResp {
				got, err := io.ReadAll(conn) // until the server closes the connection
				if len(got) > 0 || err != nil {
					t.Fatalf("got %q, error %v; want nothing, then the connection closed", got, err)
				}
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("response: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != c.wantBody || !errors.Is(err, c.wantErr) {
				t.Errorf("got %d %q, error %v; want 200 %q, error %v", resp.StatusCode, body, err, c.wantBody, c.wantErr)
			}
		})
	}
}

// TestProductionServerLimits pins the limits `verdict run` serves with: a
// change to one of them must be deliberate, here as well as in server.go.
func TestProductionServerLimits(t *testing.T) {
	handler := http.NewServeMux() // a pointer, so comparable
	srv := newHTTPServer(handler)
	cases := []struct {
		name      string
		got, want any
	}{
		{"ReadHeaderTimeout", srv.ReadHeaderTimeout, 5 * time.Second},
		{"ReadTimeout", srv.ReadTimeout, 10 * time.Second},
		{"WriteTimeout", srv.WriteTimeout, 10 * time.Second},
		{"IdleTimeout", srv.IdleTimeout, 2 * time.Minute},
		{"MaxHeaderBytes", srv.MaxHeaderBytes, 64 << 10},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if srv.Handler != http.Handler(handler) {
		t.Errorf("Handler = %v; want the one given", srv.Handler)
	}
}
