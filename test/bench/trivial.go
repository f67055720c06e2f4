package main

import (
	"io"
	"net"
	"net/http"
	"time"
)

// serveTrivial is the physical-limit server: a net/http handler that reads
// the body and answers a constant decision. The harness runs itself with
// -trivial-serve to get it as a separate process, like the real servers.
func serveTrivial(addr string) error {
	mux := http.NewServeMux()
	answer := []byte(`{"allow":true}` + "\n")
	mux.HandleFunc("POST /v1/decide", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ready\n"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	return srv.Serve(ln)
}
