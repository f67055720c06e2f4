package main

import (
	"net/http"
	"time"
)

// serverLimits are the per-connection limits of the HTTP server that
// `verdict run` serves decisions with. productionLimits holds the values it
// uses; tests build servers with shorter durations through newHTTPServerWith.
type serverLimits struct {
	// ReadHeader bounds the time from the start of a request (or, on a
	// kept-alive connection, from its first byte) to the end of its header,
	// so a slow-loris client that trickles a header byte by byte cannot hold
	// a connection (and a goroutine) open for ever.
	ReadHeader time.Duration
	// Read bounds reading the whole request, header and body, so a client
	// that sends a header promptly and then stalls in the body is cut off too.
	Read time.Duration
	// Write bounds the time from the end of reading a request's header to the
	// end of writing its response, so a client that stops reading (a stuck
	// writer on our side) does not pin the connection. net/http does not
	// interrupt the handler: it only makes writes after the deadline fail,
	// so a late response is lost (the connection is closed), not delayed.
	Write time.Duration
	// Idle bounds how long a keep-alive connection may wait for its next
	// request before it is closed, so idle clients do not accumulate
	// connections.
	Idle time.Duration
	// MaxHeaderBytes bounds the request line and header; a larger request is
	// answered 431 Request Header Fields Too Large. net/http allows 4 KiB of
	// slack above it (its read buffer), so the cut-off is MaxHeaderBytes+4096.
	MaxHeaderBytes int
}

// productionLimits are the limits of `verdict run`'s server. Decisions are
// small requests from a neighbour on localhost answered in microseconds, so
// these are generous; they exist to bound misbehaving clients, not to shape
// traffic. Changing one is deliberate: TestProductionServerLimits pins them.
var productionLimits = serverLimits{
	ReadHeader:     5 * time.Second,
	Read:           10 * time.Second,
	Write:          10 * time.Second,
	Idle:           2 * time.Minute,
	MaxHeaderBytes: 64 << 10,
}

// newHTTPServer returns the server `verdict run` serves handler with, under
// productionLimits.
func newHTTPServer(handler http.Handler) *http.Server {
	return newHTTPServerWith(handler, productionLimits)
}

// newHTTPServerWith returns a server for handler under the given limits.
func newHTTPServerWith(handler http.Handler, l serverLimits) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
